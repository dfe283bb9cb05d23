"""The inputs of a preparation and their fingerprint, recorded in `<output>/prepare_manifest.json`.

Same fingerprint = same tokenizer files, same data file contents, same options (the number of
workers does not change the output and is not part of it), so the stage can be skipped. Computing
it needs no tokenizer load: only file hashes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

from speculators_core.data.errors import PrepareError
from speculators_core.data.sources import expand_spec

MANIFEST = "prepare_manifest.json"
FORMAT_VERSION = 1
#: Files that define a tokenizer and its chat template (whichever exist are hashed).
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt", "tokenizer.model",
    "vocab.txt",
)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tokenizer_dir(model: str) -> Path | None:
    """The local directory holding the model's tokenizer files (a path, or the HF cache snapshot)."""
    p = Path(model).expanduser()
    if p.is_dir():
        return p
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return None
    for name in ("tokenizer_config.json", "tokenizer.json"):
        try:
            hit = try_to_load_from_cache(model, name)
        except Exception:
            hit = None
        if isinstance(hit, str):
            return Path(hit).parent
    return None


def tokenizer_fingerprint(model: str) -> dict[str, str] | None:
    d = tokenizer_dir(model)
    if d is None:
        return None
    files = {name: file_sha256(d / name) for name in TOKENIZER_FILES if (d / name).is_file()}
    return files or None


def _file_record(path: str, known: dict[str, dict[str, Any]]) -> dict[str, Any]:
    st = Path(path).stat()
    old = known.get(path)
    if old and old.get("size") == st.st_size and old.get("mtime_ns") == st.st_mtime_ns and old.get("sha256"):
        sha = old["sha256"]  # unchanged since it was hashed (same size and mtime): skip re-reading it
    else:
        sha = file_sha256(path)
    return {"path": path, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha}


def data_fingerprint(specs: Sequence[str], known: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Per `--data` value: its files with size and content hash, or the HF dataset id and split.

    `known`: file records of a previous manifest, by path; a file whose size and mtime are unchanged
    keeps its recorded hash (so `is_prepared` on a large corpus does not re-read it).
    """
    known = known or {}
    out: list[dict[str, Any]] = []
    for spec in specs:
        target = expand_spec(spec)
        if isinstance(target, tuple):
            out.append({"spec": spec, "hf_dataset": target[0], "split": target[1]})
        else:
            out.append({"spec": spec, "files": [_file_record(f, known) for f in target]})
    return out


def known_files(manifest: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    known: dict[str, dict[str, Any]] = {}
    for entry in ((manifest or {}).get("inputs") or {}).get("data") or []:
        for rec in entry.get("files") or []:
            if isinstance(rec, dict) and "path" in rec:
                known[rec["path"]] = rec
    return known


def describe_inputs(model: str, data: Sequence[str], options: dict[str, Any],
                    known: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    tok = tokenizer_fingerprint(model)
    if tok is None:
        raise PrepareError(
            f"--model {model}: no tokenizer files found (not a local directory and not in the HF "
            f"cache); fix: pass the local model directory, or download it first with "
            f"`huggingface-cli download {model}` (this machine may be offline)"
        )
    return {"format": FORMAT_VERSION, "model": model, "tokenizer": tok,
            "data": data_fingerprint(data, known), "options": dict(sorted(options.items()))}


def fingerprint(inputs: dict[str, Any]) -> str:
    """Hash over contents only: paths and spellings of the same files do not matter."""
    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k not in ("path", "spec", "model", "mtime_ns")}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    return hashlib.sha256(json.dumps(strip(inputs), sort_keys=True).encode()).hexdigest()


def read_manifest(output: str | Path) -> dict[str, Any] | None:
    path = Path(output) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_complete(output: str | Path, manifest: dict[str, Any] | None = None) -> bool:
    out = Path(output)
    manifest = manifest if manifest is not None else read_manifest(out)
    return bool(manifest) and (out / "token_freq.pt").is_file() and (out / "dataset_info.json").is_file()


__all__ = ["MANIFEST", "describe_inputs", "fingerprint", "read_manifest", "is_complete", "known_files"]
