"""What a hidden-states cache was made for: `<cache>/cache_manifest.json` records the fingerprint of
the prepared dataset (`prepare_manifest.json`'s "fingerprint") whose rows its `hs_<row>.safetensors`
files hold. Row ids only mean something for that dataset: after a re-prepare (other data, options or
tokenizer) the old files would be used for the new rows. So the writers (`generate`, hybrid
training) record the fingerprint when they first fill the cache, and every user checks it once,
before any cached file is read; a mismatch, or files without a manifest (an older version made them),
is `CacheMismatch`. A dataset without a prepare manifest (not made by `prepare`) cannot be checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Union

from speculators_core.errors import ExitCode, SpeculatorsError

CACHE_MANIFEST = "cache_manifest.json"
_PREPARE_MANIFEST = "prepare_manifest.json"  # speculators_core.data.manifest.MANIFEST (no import chain)


class CacheMismatch(SpeculatorsError, ValueError):
    """The hidden-states cache holds files made for another prepared dataset (or by an older version)."""

    exit_code = ExitCode.USAGE


def _read_json(path: Path) -> Optional[dict]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def dataset_fingerprint(data_dir: Union[str, Path]) -> Optional[str]:
    fp = (_read_json(Path(data_dir) / _PREPARE_MANIFEST) or {}).get("fingerprint")
    return fp if isinstance(fp, str) and fp else None


def _has_rows(cache: Path) -> bool:
    try:
        return any(p.name.startswith("hs_") and p.name.endswith(".safetensors") for p in cache.iterdir())
    except OSError:
        return False


def check_cache(cache_dir: Union[str, Path], data_dir: Union[str, Path], *, claim: bool) -> None:
    """Raise `CacheMismatch` unless `cache_dir` is (or may become) the cache of `data_dir`'s dataset.
    `claim`: the caller will write into the cache; an empty (or missing) cache is created and
    marked as this dataset's."""
    cache, fp = Path(cache_dir), dataset_fingerprint(data_dir)
    if fp is None:
        return
    fix = (f"delete {cache} (its files are of no use for this dataset) or point "
           f"training.hidden_states_cache (--hidden-states-path) elsewhere")
    path = cache / CACHE_MANIFEST
    if path.exists():
        got = (_read_json(path) or {}).get("dataset_fingerprint")
        if got != fp:
            raise CacheMismatch(
                f"hidden-states cache {cache} was filled for another prepared dataset (fingerprint "
                f"{got or 'unreadable'}), not for {data_dir} (fingerprint {fp}); its files would be "
                f"used for the wrong rows", fix=fix)
        return
    if _has_rows(cache):
        raise CacheMismatch(
            f"hidden-states cache {cache} holds files but no {CACHE_MANIFEST} (made by an older version): "
            f"nothing says they were made for {data_dir}; using them could train on the wrong rows", fix=fix)
    if claim:
        from speculators_core.fsutil import atomic_write_json

        cache.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {"dataset_fingerprint": fp, "data_dir": str(Path(data_dir).resolve())})
