"""Where things live: the user's config and cache directories, built-in assets, `builtin:` names."""

from __future__ import annotations

import os
from pathlib import Path

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

