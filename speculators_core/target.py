"""Facts about a target model read from its config.json, without importing transformers.

The config is found in a local directory, in the built-in demo cache (`builtin:` names), or in the
Hugging Face hub cache (HF_HUB_CACHE / HF_HOME / ~/.cache/huggingface/hub). Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from speculators_core.errors import SpeculatorsError
from speculators_core.paths import is_builtin, resolve_model

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float8_e4m3fn": 1, "int8": 1}


class TargetNotFound(SpeculatorsError, LookupError):
    """The target's config.json is not reachable offline; the message says where we looked."""


@dataclass
class TargetInfo:
    name: str
    path: Optional[Path]  # directory holding config.json (local dir or hub snapshot)
    config: dict[str, Any] = field(repr=False)

    @property
    def text_config(self) -> dict[str, Any]:
        return self.config.get("text_config") or self.config

    def _get(self, key: str, default: Any = None) -> Any:
        tc = self.text_config
        return tc.get(key, self.config.get(key, default))

    @property
    def num_hidden_layers(self) -> int:
        return int(self._get("num_hidden_layers"))

    @property
    def hidden_size(self) -> int:
        return int(self._get("hidden_size"))

    @property
    def vocab_size(self) -> int:
        return int(self._get("vocab_size"))

    @property
    def intermediate_size(self) -> Optional[int]:
        v = self._get("intermediate_size")
        return int(v) if v is not None else None

    @property
    def num_attention_heads(self) -> int:
        return int(self._get("num_attention_heads"))

    @property
    def num_key_value_heads(self) -> int:
        return int(self._get("num_key_value_heads") or self.num_attention_heads)

    @property
    def head_dim(self) -> int:
        v = self._get("head_dim")
        return int(v) if v else self.hidden_size // self.num_attention_heads

    @property
    def architectures(self) -> list[str]:
        return list(self.config.get("architectures") or [])

    @property
    def model_type(self) -> str:
        return str(self._get("model_type", ""))

    @property
    def dtype(self) -> str:
        return str(self.config.get("torch_dtype") or self.config.get("dtype") or self._get("torch_dtype") or "bfloat16")

    @property
    def tie_word_embeddings(self) -> bool:
        return bool(self.config.get("tie_word_embeddings", self._get("tie_word_embeddings", False)))

    def num_parameters(self) -> int:
        """From the safetensors index/header when local, else estimated from the config."""
        if self.path is not None:
            index = self.path / "model.safetensors.index.json"
            if index.exists():
                meta = json.loads(index.read_text()).get("metadata", {})
                total = meta.get("total_parameters") or 0
                if total:
                    return int(total)
                size = meta.get("total_size")
                if size:
                    return int(size) // DTYPE_BYTES.get(self.dtype, 2)
            single = self.path / "model.safetensors"
            if single.exists():
                n = _safetensors_numel(single)
                if n:
                    return n
        H, L, V = self.hidden_size, self.num_hidden_layers, self.vocab_size
        I = self.intermediate_size or 4 * H
        kv = self.num_key_value_heads * self.head_dim
        q = self.num_attention_heads * self.head_dim
        per_layer = H * q + 2 * H * kv + q * H + 3 * H * I + 2 * H
        emb = V * H * (1 if self.tie_word_embeddings else 2)
        return L * per_layer + emb + H

    def weight_bytes(self) -> int:
        return self.num_parameters() * DTYPE_BYTES.get(self.dtype, 2)

    def summary(self) -> str:
        params = self.num_parameters()
        return (f"{self.model_type or '?'}: {self.num_hidden_layers} layers, hidden {self.hidden_size}, "
                f"vocab {self.vocab_size}, {human_count(params)} params ({self.dtype})")


def human_count(n: float) -> str:
    """1234567 -> '1.23M' (parameters, tokens)."""
    for unit in ("", "K", "M", "B", "T"):
        if abs(n) < 1000:
            return f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g}P"


def _safetensors_numel(path: Path) -> int:
    import struct

    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    total = 0
    for k, v in header.items():
        if k == "__metadata__":
            continue
        numel = 1
        for s in v["shape"]:
            numel *= s
        total += numel
    return total


def hub_cache_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("HF_HUB_CACHE"):
        dirs.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        dirs.append(Path(os.environ["HF_HOME"]) / "hub")
    dirs.append(Path(os.path.expanduser("~/.cache/huggingface/hub")))
    return dirs


def find_config(spec: str) -> Path:
    """Path of the config.json for a model spec, or TargetNotFound naming every place looked at."""
    resolved = resolve_model(spec)
    local = Path(resolved)
    looked: list[str] = []
    if local.is_dir():
        cfg = local / "config.json"
        if cfg.exists():
            return cfg
        raise TargetNotFound(f"{spec}: the directory {local} has no config.json")
    if is_builtin(spec):
        raise TargetNotFound(f"{spec}: the built-in model is not built yet "
                             f"(run `python -m speculators_core.demo` or any stage, which builds it)")
    looked.append(str(local))
    if "/" in spec and not spec.startswith((".", "/")):
        repo = "models--" + spec.replace("/", "--")
        for cache in hub_cache_dirs():
            snaps = cache / repo / "snapshots"
            looked.append(str(snaps))
            if snaps.is_dir():
                ref = cache / repo / "refs" / "main"
                candidates = []
                if ref.exists():
                    candidates.append(snaps / ref.read_text().strip())
                candidates += sorted(snaps.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
                for snap in candidates:
                    if (snap / "config.json").exists():
                        return snap / "config.json"
    raise TargetNotFound(
        f"{spec}: config.json not found offline (looked in: {', '.join(looked)}). "
        f"Download it first (`huggingface-cli download {spec} config.json`) or give a local directory."
    )


def load_target(spec: str) -> TargetInfo:
    if is_builtin(spec) and not (Path(resolve_model(spec)) / "config.json").exists():
        from speculators_core.builtin.spec import TINY_QWEN3_CONFIG  # described before it is built

        return TargetInfo(name=spec, path=None, config=dict(TINY_QWEN3_CONFIG))
    cfg_path = find_config(spec)
    try:
        config = json.loads(cfg_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TargetNotFound(f"{spec}: cannot read {cfg_path}: {exc}") from None
    return TargetInfo(name=spec, path=cfg_path.parent, config=config)


def try_load_target(spec: str) -> tuple[Optional[TargetInfo], Optional[str]]:
    try:
        return load_target(spec), None
    except (TargetNotFound, ValueError, KeyError, TypeError) as exc:
        return None, str(exc)
