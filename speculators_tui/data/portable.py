"""Make a configuration's relative paths absolute before it is saved as a user preset (no textual).

A user preset lives in the user's config dir and is opened from any working directory; a path
like `./output` or `chats.jsonl` was meant relative to where the user was when saving it, so the
saved preset carries it resolved against that directory. Names that are not paths (`sharegpt`,
`builtin:...`, `hf:...`, hub ids) and empty values ("derived from the output dir") stay as they
are. Presets saved before keep working: nothing changes how a preset file is read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from speculators_core import RunConfig

#: (dotted key, when a relative value is a path): "always"; "sep" when it has a directory part
#: (a bare "python3" is looked up on PATH); "exists" when it exists here (else it is a hub id).
PATH_FIELDS = (
    ("data.output", "always"),
    ("training.checkpoint_dir", "always"),
    ("training.hidden_states_cache", "always"),
    ("hidden_states.storage_dir", "always"),
    ("run.dir", "always"),
    ("hidden_states.python", "sep"),
    ("model.target", "exists"),
    ("training.from_pretrained", "exists"),
)


def _is_named_source(src: str) -> bool:
    return src in ("sharegpt", "ultrachat") or src.startswith(("builtin:", "hf:", "http://", "https://"))


def _absolute(value: str, base: Path, rule: str) -> str:
    if not value or value.startswith("builtin:"):
        return value
    expanded = os.path.expanduser(value)
    if os.path.isabs(expanded):
        return value
    is_path = (rule == "always" or value.startswith(("./", "../")) or value in (".", "..")
               or (rule == "sep" and os.sep in value) or (rule == "exists" and (base / expanded).exists()))
    return os.path.normpath(str(base / expanded)) if is_path else value


def absolute_paths(cfg: RunConfig, base: Path) -> tuple[RunConfig, list[str]]:
    """A copy of `cfg` with relative paths resolved against `base`, and the keys that changed."""
    out = cfg.copy()
    changed: list[str] = []
    for dotted, rule in PATH_FIELDS:
        section, key = dotted.split(".", 1)
        obj = getattr(out, section)
        old = getattr(obj, key)
        new = _absolute(old, base, rule)
        if new != old:
            setattr(obj, key, new)
            changed.append(dotted)
    sources = []
    for i, src in enumerate(out.data.sources):
        new = src if _is_named_source(src) else _absolute(src, base, "always")
        if new != src:
            changed.append(f"data.sources[{i}]")
        sources.append(new)
    out.data.sources = sources
    return out, changed


def describe_changes(changed: list[str], before: RunConfig, after: RunConfig,
                     get: Callable[[RunConfig, str], object]) -> str:
    """ "data.output: ./output -> /home/me/proj/output; ..." for a notification."""
    parts = []
    for dotted in changed:
        if dotted.startswith("data.sources["):
            i = int(dotted[len("data.sources["):-1])
            parts.append(f"{dotted}: {before.data.sources[i]} -> {after.data.sources[i]}")
        else:
            parts.append(f"{dotted}: {get(before, dotted)} -> {get(after, dotted)}")
    return "; ".join(parts)
