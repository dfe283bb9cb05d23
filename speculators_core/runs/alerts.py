"""Attention: the moments a person watching a run wants to hear about, and how to tell them.

`AlertWatch.check` turns what a viewer reads (the run's status, its latest warning event, its
`Pace`) into `Alert`s once per moment: the run ended, failed, got a bottleneck warning, or stalled
(no step for N x the median step time, `runs.eta`). The first check only takes note of what
already happened (attaching to an old run rings nothing). `terminal_sequences` renders an alert
as the terminal bell and an OSC 9 / OSC 777 desktop notification (wrapped for tmux), as
`NotifySettings` say: `$SPECULATORS_TUI_NOTIFY` ("off", "bell", "desktop", "bell,desktop") over
`<config>/notify.toml` (`bell = true`, `desktop = true`, `stall_factor = 10`). The test suite sets
SPECULATORS_TUI_NOTIFY=off. Nothing here imports torch or the app.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from speculators_core.runs.eta import STALL_FACTOR, Pace

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

NOTIFY_ENV = "SPECULATORS_TUI_NOTIFY"
NOTIFY_FILE = "notify.toml"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Alert:
    kind: str  # "finished", "failed", "stopped", "warning", "stalled"
    title: str
    message: str


@dataclass(frozen=True)
class NotifySettings:
    bell: bool = True
    desktop: bool = True
    stall_factor: float = STALL_FACTOR

    @property
    def enabled(self) -> bool:
        return self.bell or self.desktop


def settings_path() -> Path:
    from speculators_core.paths import config_home

    return config_home() / NOTIFY_FILE


def load_settings(environ: Optional[Mapping[str, str]] = None, path: Optional[Path] = None) -> NotifySettings:
    """The notification settings: the environment variable wins over the file; bad values are ignored
    (a notification setting never stops a run from being watched)."""
    environ = os.environ if environ is None else environ
    bell, desktop, factor = True, True, STALL_FACTOR
    try:
        data = tomllib.loads((path or settings_path()).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        data = {}
    if isinstance(data.get("bell"), bool):
        bell = data["bell"]
    if isinstance(data.get("desktop"), bool):
        desktop = data["desktop"]
    if isinstance(data.get("stall_factor"), (int, float)) and data["stall_factor"] > 1:
        factor = float(data["stall_factor"])
    env = environ.get(NOTIFY_ENV)
    if env is not None:
        words = {w.strip().lower() for w in env.split(",") if w.strip()}
        bell, desktop = "bell" in words or "on" in words, "desktop" in words or "on" in words
    return NotifySettings(bell=bell, desktop=desktop, stall_factor=factor)


def save_settings(settings: NotifySettings, path: Optional[Path] = None) -> Path:
    from speculators_core.fsutil import atomic_write_text

    p = path or settings_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    text = (f"# speculators-tui notifications (terminal bell, OSC 9/777 desktop notification)\n"
            f"bell = {str(settings.bell).lower()}\ndesktop = {str(settings.desktop).lower()}\n"
            f"stall_factor = {settings.stall_factor:g}\n")
    return atomic_write_text(p, text)


def _clean(text: str, limit: int = 200) -> str:
    return _CONTROL.sub(" ", text)[:limit]


def terminal_sequences(alert: Alert, settings: NotifySettings, environ: Optional[Mapping[str, str]] = None) -> str:
    """What to write to the terminal for `alert`: BEL, and OSC 9 (iTerm2, WezTerm, Windows Terminal,
    kitty) plus OSC 777 (foot, Konsole, VTE terminals) for a desktop notification; inside tmux the OSCs
    go through its passthrough. '' when both are off."""
    environ = os.environ if environ is None else environ
    out = "\a" if settings.bell else ""
    if settings.desktop:
        title = _clean(alert.title, 60).replace(";", ",")
        body = _clean(alert.message)
        oscs = [f"\x1b]9;{title}: {body}\x07", f"\x1b]777;notify;{title};{body.replace(';', ',')}\x07"]
        if environ.get("TMUX"):
            oscs = ["\x1bPtmux;" + s.replace("\x1b", "\x1b\x1b") + "\x1b\\" for s in oscs]
        out += "".join(oscs)
    return out


class AlertWatch:
    """Alerts for one run, each moment once. `check` is called after each poll of the run's files."""

    def __init__(self, run_name: str) -> None:
        self.run_name = run_name
        self._primed = False
        self._status: Optional[str] = None
        self._warning_key: object = None
        self._stalled = False

    def check(self, status: str, warning: Optional[dict], pace: Optional[Pace]) -> list[Alert]:
        out: list[Alert] = []
        key = (warning.get("time"), warning.get("kind"), warning.get("message")) if warning else None
        stalled = bool(pace is not None and pace.stalled_s is not None)
        if not self._primed:
            self._primed = True
            self._status, self._warning_key, self._stalled = status, key, stalled
            return out
        name = self.run_name
        if status != self._status:
            if status == "completed":
                out.append(Alert("finished", f"{name} finished", "the run completed"))
            elif status == "failed":
                out.append(Alert("failed", f"{name} failed", "the run failed: see its dashboard or logs"))
            elif status == "stopped":
                out.append(Alert("stopped", f"{name} stopped", "the run was stopped"))
            self._status = status
        if key is not None and key != self._warning_key:
            msg = str(warning.get("message") or "")  # type: ignore[union-attr]
            fix = warning.get("fix")  # type: ignore[union-attr]
            out.append(Alert("warning", f"{name}: {warning.get('kind') or 'warning'}",  # type: ignore[union-attr]
                             msg + (f" (fix: {fix})" if fix else "")))
        self._warning_key = key
        if stalled and not self._stalled:
            out.append(Alert("stalled", f"{name} stalled", pace.text() if pace else "no training step for a while"))
        self._stalled = stalled
        return out
