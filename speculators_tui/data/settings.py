"""The app's own small settings (the theme), kept in `<config dir>/settings.json` (no textual imports).

The config dir is the engine's `config_home()`: $SPECULATORS_TUI_CONFIG, else
$XDG_CONFIG_HOME/speculators-tui (~/.config/speculators-tui). A missing or broken file means the
defaults: settings never stop the app from starting.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FILE = "settings.json"
KNOWN = ("theme",)


def settings_path() -> Path:
    from speculators_core import config_home

    return config_home() / FILE


def load_settings() -> dict[str, Any]:
    try:
        data = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if k in KNOWN} if isinstance(data, dict) else {}


def save_setting(key: str, value: Any) -> Path:
    """Set one setting (keeping the others); raises OSError when the file cannot be written."""
    from speculators_core import atomic_write_text

    if key not in KNOWN:
        raise KeyError(key)
    data = load_settings()
    data[key] = value
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, json.dumps(data, indent=1) + "\n")
