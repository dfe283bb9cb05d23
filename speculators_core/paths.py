"""Where things live: the user's config and cache directories, built-in assets, `builtin:` names."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Optional

from speculators_core.errors import ExitCode, SpeculatorsError

PACKAGE_DIR = Path(__file__).resolve().parent
BUILTIN_PRESETS_DIR = PACKAGE_DIR / "presets"
ASSETS_DIR = PACKAGE_DIR / "builtin" / "assets"

#: `builtin:` names for models and data that ship with (or are built by) the package.
BUILTIN_MODELS = {"tiny-qwen3"}
BUILTIN_DATA = {"demo-chat": "demo_chat.jsonl"}


def config_home() -> Path:
    """User config dir (XDG): user presets live in <this>/presets."""
    base = os.environ.get("SPECULATORS_TUI_CONFIG") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "speculators-tui"
    )
    return Path(base)


def cache_home() -> Path:
    """User cache dir (XDG): the built demo model lives here."""
    base = os.environ.get("SPECULATORS_TUI_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "speculators-tui"
    )
    return Path(base)


def user_presets_dir() -> Path:
    return config_home() / "presets"


def is_builtin(spec: str) -> bool:
    return spec.startswith("builtin:")


def builtin_model_dir(name: str) -> Path:
    if name not in BUILTIN_MODELS:
        raise ValueError(f"unknown built-in model 'builtin:{name}'; known: " + ", ".join(sorted(BUILTIN_MODELS)))
    return cache_home() / "models" / name


def resolve_model(spec: str) -> str:
    """A model spec as the stages receive it: `builtin:NAME` becomes its cache directory."""
    if is_builtin(spec):
        return str(builtin_model_dir(spec.split(":", 1)[1]))
    return os.path.expanduser(spec) if spec.startswith("~") else spec


def resolve_data_source(spec: str) -> str:
    if is_builtin(spec):
        name = spec.split(":", 1)[1]
        if name not in BUILTIN_DATA:
            raise ValueError(f"unknown built-in data '{spec}'; known: " + ", ".join(f"builtin:{n}" for n in BUILTIN_DATA))
        return str(ASSETS_DIR / BUILTIN_DATA[name])
    return os.path.expanduser(spec) if spec.startswith("~") else spec



class UnsafeDirectory(SpeculatorsError, PermissionError):
    """A directory other users could read, replace or fill: refused before anything is written to it."""

    exit_code = ExitCode.USAGE


def default_hidden_states_dir() -> str:
    """The default directory a hidden-states server writes to: per user, in memory when /dev/shm
    exists (`/dev/shm/speculators-hidden-states-<uid>`), else under $XDG_RUNTIME_DIR or the temp dir.
    A shared, predictable name would let another user pre-create it (and read or swap the files)."""
    uid = os.getuid()
    if os.path.isdir("/dev/shm"):
        return f"/dev/shm/speculators-hidden-states-{uid}"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "speculators-hidden-states")
    import tempfile

    return os.path.join(tempfile.gettempdir(), f"speculators-hidden-states-{uid}")


def ensure_private_dir(path, uid: Optional[int] = None) -> Path:
    """Create `path` (mode 0700, parents as usual) or check the existing one: a real directory (not
    a symlink), owned by `uid` (default: this user) and not writable by group or others. Raises
    UnsafeDirectory naming the fix otherwise."""
    p = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    uid = os.getuid() if uid is None else uid
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        p.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(p)
    fix = "remove it (if it is not yours, ask its owner) or choose another directory with --hidden-states-path"
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeDirectory(f"{p}: is a symlink (to {os.readlink(p)}); refusing to write hidden states through "
                              f"it. Fix: {fix}")
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeDirectory(f"{p}: exists and is not a directory. Fix: {fix}")
    if st.st_uid != uid:
        raise UnsafeDirectory(f"{p}: owned by uid {st.st_uid}, not by you (uid {uid}); another user could read or "
                              f"replace the hidden-states files. Fix: {fix}")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeDirectory(f"{p}: writable by other users (mode {stat.S_IMODE(st.st_mode):04o}). "
                              f"Fix: chmod 700 {p}, or {fix}")
    return p
