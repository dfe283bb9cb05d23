"""The typed run configuration, its TOML form and its validation.

One `RunConfig` describes a whole pipeline run (prepare -> hidden-states server -> train). It is
grouped the way a user thinks of it: `[model]`, `[data]`, `[hidden_states]`, `[training]`, `[run]`.
This module imports neither torch nor transformers, so the app can use it on its start path.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union, get_args, get_origin

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

import tomli_w
from speculators_core.errors import SpeculatorsError

ENGINES = ("vllm", "hf")
MODES = ("online", "hybrid", "offline")
SCHEDULERS = ("linear", "cosine", "constant")
LOGGERS = ("none", "tensorboard", "wandb", "trackio")
CONNECTORS = ("auto", "stock", "cpu")
DEVICES = ("auto", "cpu", "cuda")

#: What each training mode means in the reference tutorial's flags.
MODE_FLAGS = {
    "online": ("generate", "delete"),
    "hybrid": ("generate", "cache"),
    "offline": ("raise", "cache"),
}
MODE_HELP = {
    "online": "hidden states are generated on demand and deleted after use (least disk, server busy every epoch)",
    "hybrid": "generated on demand in epoch 1 and cached; later epochs read the cache (server idle after epoch 1)",
    "offline": "all hidden states are generated before training and cached; training reads only the cache",
}


class ConfigError(SpeculatorsError, ValueError):
    """A configuration that cannot be read. The message names the key, file and line, and the fix."""


@dataclass
class ModelSection:
    #: HF model id, a local directory, or `builtin:tiny-qwen3` (the embedded demo target).
    target: str = ""
    trust_remote_code: bool = False


@dataclass
class DataSection:
    #: `sharegpt`, `ultrachat`, `builtin:demo-chat`, or local .json/.jsonl files or directories.
    sources: list[str] = field(default_factory=lambda: ["sharegpt"])
    output: str = "./output"
    max_samples: Optional[int] = None
    seq_length: int = 8192
    minimum_valid_tokens: Optional[int] = None
    num_preprocessing_workers: int = 8
    seed: int = 0


@dataclass
class HiddenStatesSection:
    engine: Literal["vllm", "hf"] = "vllm"
    #: Interpreter of the venv that has vLLM ("" = the interpreter running speculators-tui).
    python: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    #: GPU indices for the server; empty = run it on the CPU.
    gpus: list[int] = field(default_factory=lambda: [0])
    data_parallel_size: int = 1
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: Optional[int] = None
    #: Layer ids to extract; the last must be L. None = [2, L//2, L-3, L] from the target config.
    target_layer_ids: Optional[list[int]] = None
    #: Where the server writes hidden-states files ("" = <data.output>/hs_scratch).
    storage_dir: str = ""
    #: vLLM hidden-states connector: auto (cpu when gpus is empty), stock, or cpu.
    connector: Literal["auto", "stock", "cpu"] = "auto"
    #: Device of the built-in hf engine.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    #: The hf engine's model dtype: auto = bf16 on GPUs and CPUs with native bf16, else fp32.
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    #: Extra arguments appended to the server command line (vLLM flags for the vllm engine).
    extra_args: list[str] = field(default_factory=list)
    #: Extra environment variables for the server process.
    env: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait for /health before declaring the start failed.
    start_timeout: float = 900.0


@dataclass
class TrainingSection:
    #: GPU indices for training (torchrun nproc = their count); empty = train on the CPU.
    gpus: list[int] = field(default_factory=lambda: [1])
    #: Processes when training on the CPU (gloo); 1 = plain `python -m`.
    cpu_processes: int = 1
    #: Compute dtype: auto = bf16 on GPUs and on CPUs with native bf16 (AVX512_BF16/AMX), fp32 on
    #: other CPUs (bf16 is emulated there and several times slower). Checkpoints are bf16 either way.
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    mode: Literal["online", "hybrid", "offline"] = "online"
    #: Hidden-states cache for hybrid/offline ("" = <data.output>/hidden_states).
    hidden_states_cache: str = ""
    draft_vocab_size: int = 32000
    epochs: int = 5
    lr: float = 1e-4
    total_seq_len: int = 8192
    num_layers: int = 1
    ttt_steps: int = 3
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    warmup_ratio: float = 0.01
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    val_split: float = 0.1
    noise: float = 0.05
    checkpoint_dir: str = "./output/checkpoints"
    save_best: bool = True
    from_pretrained: str = ""
    #: Continue from the latest checkpoint in checkpoint_dir when there is one.
    resume: bool = True
    logger: Literal["none", "tensorboard", "wandb", "trackio"] = "none"
    seed: int = 0
    #: Hidden-states requests in flight per training process.
    max_in_flight: int = 8
    #: Hidden-states files allowed on disk at once per training process.
    max_files_on_disk: int = 16


@dataclass
class RunSection:
    name: str = "eagle3"
    #: Parent directory of run directories (<dir>/<name>-<timestamp>/).
    dir: str = "./runs"
    #: Allow the server and training to share a GPU (normally an error).
    allow_gpu_sharing: bool = False


@dataclass
class RunConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    hidden_states: HiddenStatesSection = field(default_factory=HiddenStatesSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    run: RunSection = field(default_factory=RunSection)

    # Derived paths -----------------------------------------------------------------------------
    @property
    def storage_dir(self) -> str:
        return self.hidden_states.storage_dir or os.path.join(self.data.output, "hs_scratch")

    @property
    def hidden_states_cache(self) -> str:
        return self.training.hidden_states_cache or os.path.join(self.data.output, "hidden_states")

    def copy(self) -> "RunConfig":
        return from_dict(to_dict(self, include_defaults=True))


SECTIONS: dict[str, type] = {f.name: f.type for f in dataclasses.fields(RunConfig)}  # type: ignore[misc]
_HINTS_CACHE: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS_CACHE:
        _HINTS_CACHE[cls] = typing.get_type_hints(cls)
    return _HINTS_CACHE[cls]


def section_class(name: str) -> type:
    return _hints(RunConfig)[name]


# -------------------------------------------------------------------------------------------------
# Converting between dicts and the dataclasses, with type checks that name the key.
# -------------------------------------------------------------------------------------------------
def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return _type_name(args[0]) if len(args) == 1 else " or ".join(_type_name(a) for a in args)
    if origin is list:
        return f"a list of {_type_name(get_args(tp)[0])}s"
    if origin is dict:
        return "a table of strings"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return `value` as type `tp`, or raise ConfigError naming `key`."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{key}: {value!r} is not allowed; use {_type_name(tp)}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
        (item_tp,) = get_args(tp)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__}")
        return {str(k): _coerce(v, str, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover


def from_dict(data: dict[str, Any]) -> RunConfig:
    """Build a RunConfig from a (TOML) dict; unknown sections/keys and wrong types raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError("configuration must be a table")
    kwargs: dict[str, Any] = {}
    for sec_name, sec_value in data.items():
        if sec_name not in SECTIONS:
            raise ConfigError(
                f"[{sec_name}]: unknown section; the sections are " + ", ".join(f"[{s}]" for s in SECTIONS)
            )
        if not isinstance(sec_value, dict):
            raise ConfigError(f"{sec_name}: expected a [{sec_name}] table, got {sec_value!r}")
        cls = section_class(sec_name)
        hints = _hints(cls)
        values: dict[str, Any] = {}
        for key, value in sec_value.items():
            if key not in hints:
                close = _closest(key, list(hints))
                hint = f"; did you mean {close!r}?" if close else f"; known keys: {', '.join(hints)}"
                raise ConfigError(f"{sec_name}.{key}: unknown key{hint}")
            values[key] = _coerce(value, hints[key], f"{sec_name}.{key}")
        kwargs[sec_name] = cls(**values)
    return RunConfig(**kwargs)


def _closest(key: str, options: list[str]) -> Optional[str]:
    import difflib

    found = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
    return found[0] if found else None


def to_dict(cfg: RunConfig, include_defaults: bool = False) -> dict[str, Any]:
    """The TOML-ready dict of `cfg`. Values equal to their defaults are left out unless asked for."""
    out: dict[str, Any] = {}
    for sec in dataclasses.fields(cfg):
        obj = getattr(cfg, sec.name)
        default = type(obj)()
        table: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if not include_defaults and value == getattr(default, f.name):
                continue
            if value is None:  # TOML has no null: absent means None
                continue
            table[f.name] = value
        if table or include_defaults:
            out[sec.name] = table
    return out


def loads(text: str, source: str = "<string>") -> RunConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return from_dict(data)
    except ConfigError as exc:
        line = _find_line(text, str(exc).split(":", 1)[0])
        where = f"{source}:{line}" if line else source
        raise ConfigError(f"{where}: {exc}") from None


def load(path: Union[str, os.PathLike]) -> RunConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the configuration: {exc.strerror}") from None
    return loads(text, str(p))


def dumps(cfg: RunConfig, include_defaults: bool = False) -> str:
    return tomli_w.dumps(to_dict(cfg, include_defaults=include_defaults))


def save(cfg: RunConfig, path: Union[str, os.PathLike], include_defaults: bool = False) -> Path:
    """Write `cfg` as TOML atomically (temp file + rename)."""
    from speculators_core.fsutil import atomic_write_text

    return atomic_write_text(Path(path), dumps(cfg, include_defaults=include_defaults))


def _find_line(text: str, dotted: str) -> Optional[int]:
    """Line number (1-based) of `section.key` in TOML text, or of `[section]` for a section error."""
    dotted = re.sub(r"\[\d+\]$", "", dotted.strip("[]"))
    parts = dotted.split(".")
    section, key = parts[0], (parts[1] if len(parts) > 1 else None)
    current = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        m = re.match(r"^\[([^\[\]]+)\]", line)
        if m:
            current = m.group(1).strip()
            if key is None and current == section:
                return lineno
            continue
        m = re.match(r"^([A-Za-z0-9_\-\.\"]+)\s*=", line)
        if not m or key is None:
            continue
        name = m.group(1).strip('"')
        if current == section and name == key:
            return lineno
        if current is None and name == f"{section}.{key}":
            return lineno
    return None


# -------------------------------------------------------------------------------------------------
# Validation
# -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration: the dotted field, what is wrong, and how to fix it."""

    field: str
    message: str
    fix: str = ""
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        text = f"{self.field}: {self.message}"
        return f"{text} (fix: {self.fix})" if self.fix else text


def default_layer_ids(num_layers: int) -> list[int]:
    """The EAGLE-3 default: three auxiliary layers [2, L//2, L-3] plus L (the verifier's last)."""
    return [2, num_layers // 2, num_layers - 3, num_layers]


def suggest_layer_ids(num_layers: int) -> list[int]:
    """Unique, in-range ids close to the default formula (for fix messages on small models)."""
    L = num_layers
    if L < 4:
        return list(range(1, L + 1))
    ids = sorted({max(1, min(i, L - 1)) for i in (2, L // 2, L - 3)})
    candidate = 1
    while len(ids) < 3:
        if candidate not in ids and candidate < L:
            ids.append(candidate)
        candidate += 1
    return sorted(ids) + [L]


def layer_id_problems(ids: list[int], num_layers: Optional[int], fld: str) -> list[Problem]:
    probs: list[Problem] = []
    if len(ids) < 2:
        probs.append(Problem(fld, f"needs at least 2 ids (auxiliary layers + the last layer), got {ids}",
                             "list the auxiliary layer ids followed by L, e.g. [2, 16, 33, 36]"))
        return probs
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        fix = f"use unique ids, e.g. {suggest_layer_ids(num_layers)}" if num_layers else "use unique ids"
        probs.append(Problem(fld, f"duplicated layer id(s) {dupes} in {ids}; vLLM crashes on duplicates", fix))
    if ids != sorted(ids) and not dupes:
        probs.append(Problem(fld, f"ids must be ascending, got {ids}", f"use {sorted(ids)}"))
    if num_layers is not None:
        bad = [i for i in ids if not (0 < i <= num_layers)]
        if bad:
            probs.append(Problem(fld, f"id(s) {bad} out of range: the target has {num_layers} layers (1..{num_layers})",
                                 f"use ids in 1..{num_layers}, e.g. {suggest_layer_ids(num_layers)}"))
        elif ids[-1] != num_layers:
            probs.append(Problem(fld, f"the last id must be the target's last layer {num_layers}, got {ids[-1]}",
                                 f"end the list with {num_layers}"))
    else:
        bad = [i for i in ids if i <= 0]
        if bad:
            probs.append(Problem(fld, f"id(s) {bad} must be positive", "use ids in 1..L"))
    return probs


def _executable(path: str) -> bool:
    import shutil

    if os.sep in path:
        return os.path.isfile(path) and os.access(path, os.X_OK)
    return shutil.which(path) is not None


@functools.lru_cache(maxsize=None)
def _vllm_importable_here() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("vllm") is not None  # a path search: vLLM is not imported
    except (ImportError, ValueError):
        return False


def server_python_problems(hs: HiddenStatesSection) -> list[Problem]:
    """Warnings (not errors: an exported script may run on another machine) when the server's Python
    cannot work here: a `hidden_states.python` that is not an executable, or the vLLM engine with no
    `python` set while this interpreter has no vllm package."""
    if hs.python:
        if not _executable(hs.python):
            return [Problem("hidden_states.python", f"{hs.python!r} is not an executable on this machine",
                            "give the python of the environment that has vLLM, e.g. /path/to/venv/bin/python",
                            "warning")]
        return []
    if hs.engine == "vllm" and not _vllm_importable_here():
        return [Problem("hidden_states.python", "empty, and this Python has no vllm for the server",
                        "the python of a vLLM environment, or pip install vllm", "warning")]
    return []


def resolved_layer_ids(cfg: RunConfig, num_layers: Optional[int]) -> Optional[list[int]]:
    if cfg.hidden_states.target_layer_ids:
        return list(cfg.hidden_states.target_layer_ids)
    if num_layers is None:
        return None
    return default_layer_ids(num_layers)


def validate(cfg: RunConfig, target: Optional["TargetInfo"] = None) -> list[Problem]:
    """All problems of `cfg`. Checks that need the target's config.json use `target` when given."""
    P: list[Problem] = []
    m, d, hs, t, r = cfg.model, cfg.data, cfg.hidden_states, cfg.training, cfg.run

    if not m.target.strip():
        P.append(Problem("model.target", "no target model given", "set a HF model id or a local directory"))

    if not d.sources:
        P.append(Problem("data.sources", "no data source given", "add 'sharegpt', 'ultrachat' or a .jsonl path"))
    for i, src in enumerate(d.sources):
        if src in ("sharegpt", "ultrachat") or src.startswith("builtin:"):
            continue
        if src.startswith(("hf:", "http")):
            continue
        if not os.path.exists(os.path.expanduser(src)):
            P.append(Problem(f"data.sources[{i}]", f"{src!r} is neither a built-in source nor an existing file",
                             "use 'sharegpt', 'ultrachat', or the path of a .json/.jsonl file or directory"))
    if not d.output.strip():
        P.append(Problem("data.output", "empty output directory", "set a directory, e.g. './output'"))

    def positive(fld: str, value: Any, allow_none: bool = False) -> None:
        if value is None and allow_none:
            return
        if value is None or value <= 0:
            P.append(Problem(fld, f"must be positive, got {value}", "use a number greater than 0"))

    positive("data.max_samples", d.max_samples, allow_none=True)
    positive("data.seq_length", d.seq_length)
    positive("data.minimum_valid_tokens", d.minimum_valid_tokens, allow_none=True)
    positive("data.num_preprocessing_workers", d.num_preprocessing_workers)
    positive("hidden_states.port", hs.port)
    if hs.port > 65535:
        P.append(Problem("hidden_states.port", f"{hs.port} is not a TCP port", "use 1024..65535"))
    positive("hidden_states.data_parallel_size", hs.data_parallel_size)
    positive("hidden_states.tensor_parallel_size", hs.tensor_parallel_size)
    positive("hidden_states.max_model_len", hs.max_model_len, allow_none=True)
    positive("hidden_states.start_timeout", hs.start_timeout)
    if not (0 < hs.gpu_memory_utilization <= 1):
        P.append(Problem("hidden_states.gpu_memory_utilization", f"must be in (0, 1], got {hs.gpu_memory_utilization}",
                         "use e.g. 0.9"))
    for fld in ("cpu_processes", "draft_vocab_size", "epochs", "lr", "total_seq_len", "num_layers", "ttt_steps",
                "max_in_flight", "max_files_on_disk"):
        positive(f"training.{fld}", getattr(t, fld))
    if not (0 <= t.val_split < 1):
        P.append(Problem("training.val_split", f"must be in [0, 1), got {t.val_split}", "use e.g. 0.1"))
    if not (0 <= t.warmup_ratio < 1):
        P.append(Problem("training.warmup_ratio", f"must be in [0, 1), got {t.warmup_ratio}", "use e.g. 0.01"))
    for fld in ("weight_decay", "grad_clip", "noise"):
        if getattr(t, fld) < 0:
            P.append(Problem(f"training.{fld}", f"must not be negative, got {getattr(t, fld)}", "use 0 or more"))
    if t.mode not in MODES:
        P.append(Problem("training.mode", f"unknown mode {t.mode!r}", "use online, hybrid or offline"))
    if hs.engine not in ENGINES:
        P.append(Problem("hidden_states.engine", f"unknown engine {hs.engine!r}", "use vllm or hf"))
    P.extend(server_python_problems(hs))
    if not r.name or not re.fullmatch(r"[A-Za-z0-9._-]+", r.name):
        P.append(Problem("run.name", f"{r.name!r} is not a usable directory name", "use letters, digits, '.', '_', '-'"))

    # GPUs.
    for fld, gpus in (("hidden_states.gpus", hs.gpus), ("training.gpus", t.gpus)):
        if len(set(gpus)) != len(gpus):
            P.append(Problem(fld, f"GPU listed twice in {gpus}", f"use {sorted(set(gpus))}"))
        if any(g < 0 for g in gpus):
            P.append(Problem(fld, f"GPU indices must be >= 0, got {gpus}", "use indices from `speculators-tui gpus`"))
    shared = sorted(set(hs.gpus) & set(t.gpus))
    if shared and not r.allow_gpu_sharing:
        P.append(Problem("training.gpus",
                         f"GPU(s) {shared} are assigned to both the hidden-states server and training",
                         "give each GPU one role, or set run.allow_gpu_sharing = true"))
    if hs.engine == "vllm" and hs.gpus:
        if hs.data_parallel_size * hs.tensor_parallel_size != len(hs.gpus):
            P.append(Problem("hidden_states.data_parallel_size",
                             f"data parallel {hs.data_parallel_size} x tensor parallel {hs.tensor_parallel_size} = "
                             f"{hs.data_parallel_size * hs.tensor_parallel_size}, but {len(hs.gpus)} server GPU(s) "
                             f"are assigned ({hs.gpus})",
                             f"set data_parallel_size = {max(1, len(hs.gpus) // hs.tensor_parallel_size)} or assign "
                             f"{hs.data_parallel_size * hs.tensor_parallel_size} GPUs"))
    if hs.engine == "hf" and len(hs.gpus) > 1:
        P.append(Problem("hidden_states.gpus", "the built-in hf engine uses at most one GPU",
                         "assign one GPU, or use engine = 'vllm' for several"))
    if t.mode in ("hybrid", "offline") and not cfg.hidden_states_cache:
        P.append(Problem("training.hidden_states_cache", f"mode {t.mode} needs a cache directory", "set a directory"))

    # Checks that need the target's config.json.
    num_layers = target.num_hidden_layers if target else None
    ids = resolved_layer_ids(cfg, num_layers)
    if hs.target_layer_ids is not None or ids is not None:
        P.extend(layer_id_problems(ids or [], num_layers, "hidden_states.target_layer_ids"))
    if target is not None:
        if target.vocab_size and t.draft_vocab_size > target.vocab_size:
            P.append(Problem("training.draft_vocab_size",
                             f"{t.draft_vocab_size} is larger than the target's vocabulary ({target.vocab_size})",
                             f"use at most {target.vocab_size}"))
        if hs.max_model_len and hs.max_model_len < d.seq_length:
            P.append(Problem("hidden_states.max_model_len",
                             f"{hs.max_model_len} is shorter than data.seq_length {d.seq_length}; long samples would be rejected",
                             f"set max_model_len >= {d.seq_length}", "warning"))
    if t.total_seq_len < d.seq_length:
        P.append(Problem("training.total_seq_len",
                         f"{t.total_seq_len} is shorter than data.seq_length {d.seq_length}; longer samples are cut",
                         f"set total_seq_len >= {d.seq_length}", "warning"))
    return P


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


if typing.TYPE_CHECKING:  # pragma: no cover
    from speculators_core.target_info import TargetInfo
