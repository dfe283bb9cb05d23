"""A per-tokenizer cache of what stage 1 builds before it processes a row: the loaded tokenizer and
the word encoder (with its probe results), pickled under `<cache_home>/prepare/tokenizers/`.

Why: loading a tokenizer through `AutoTokenizer` imports most of transformers and torch (2-3 s on
a 2-core machine, before any row is read), `from_pretrained` of a 129k-vocabulary tokenizer takes
about a second more, and the word encoder's ASCII probe another half second. Unpickling the same
tokenizer needs only its own class's module (no torch) and a `tokenizers` deserialisation.

An entry is used only for exactly the tokenizer it was built from: the key hashes the tokenizer
files' contents (the manifest's own file hashes: tokenizer.json, tokenizer_config.json, the chat
template...), the versions of transformers, tokenizers and regex, the Python version, and the
source of the modules whose output is cached (this one and `word_encoder`). Any change to one of
those is a new key, so a stale entry is never read. Tokenizers with remote code are never cached
(their classes live outside transformers). A missing, unreadable or corrupt entry is a miss: the
tokenizer is loaded as usual and the entry rewritten. `SPECULATORS_PREPARE_CACHE=0` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
from pathlib import Path
from typing import Any

FORMAT = 1
_SOURCES = ("tokenizer_cache.py", "word_encoder.py", "light_tokenizer.py")


def enabled() -> bool:
    return os.environ.get("SPECULATORS_PREPARE_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def cache_dir() -> Path:
    from speculators_core.paths import cache_home

    return cache_home() / "prepare" / "tokenizers"


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return ""


def cache_key(tokenizer_files: dict[str, str], model_dir: str | Path | None, exact_tokenizer: bool) -> str:
    """The entry name for a tokenizer given its file hashes (`manifest.tokenizer_fingerprint`) and
    its directory (its config.json, when there is one, also steers `AutoTokenizer`'s class choice)."""
    from speculators_core.data.manifest import file_sha256
    from speculators_core.data.tokenizer_loading import light_tokenizer_enabled

    here = Path(__file__).resolve().parent
    sources = {name: hashlib.sha256((here / name).read_bytes()).hexdigest() for name in _SOURCES}
    config = Path(model_dir) / "config.json" if model_dir is not None else None
    blob = json.dumps({
        "format": FORMAT, "tokenizer": tokenizer_files, "exact_tokenizer": bool(exact_tokenizer),
        "light_loader": light_tokenizer_enabled(),  # SPECULATORS_PREPARE_LIGHT_TOKENIZER=0: an AutoTokenizer entry
        "config": file_sha256(config) if config is not None and config.is_file() else None,
        "python": list(sys.version_info[:2]), "sources": sources,
        "versions": {d: _version(d) for d in ("transformers", "tokenizers", "regex", "numpy")},
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def load(key: str) -> dict[str, Any] | None:
    """The cached bundle (`{"tokenizer", "word_encoder", "word_encoder_off"}`), or None on a miss."""
    path = cache_dir() / f"{key}.pkl"
    try:
        with open(path, "rb") as fh:
            bundle = pickle.load(fh)
    except FileNotFoundError:
        return None
    except Exception:  # a corrupt or incompatible entry: drop it, load the tokenizer as usual
        try:
            path.unlink()
        except OSError:
            pass
        return None
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT or bundle.get("key") != key:
        return None
    return bundle


def store(key: str, tokenizer: Any, word_encoder: Any, word_encoder_off: str) -> Path | None:
    """Write the bundle atomically; any failure (read-only home, unpicklable tokenizer) is ignored."""
    path = cache_dir() / f"{key}.pkl"
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        data = pickle.dumps({"format": FORMAT, "key": key, "tokenizer": tokenizer, "word_encoder": word_encoder,
                             "word_encoder_off": word_encoder_off}, protocol=pickle.HIGHEST_PROTOCOL)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        return path
    except Exception:
        try:
            tmp.unlink()
        except OSError:
            pass
        return None


def drop(key: str) -> None:
    """Remove an entry (the word encoder it holds disagreed with its tokenizer)."""
    try:
        (cache_dir() / f"{key}.pkl").unlink()
    except OSError:
        pass
