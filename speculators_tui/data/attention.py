"""Notifications while the app watches a run: the terminal bell and an OSC 9/777 desktop notice
(`speculators_core.runs.alerts`) plus a toast in the app, for a run that ends, fails, gets a
bottleneck warning or stalls. Settings: `$SPECULATORS_TUI_NOTIFY` / `<config>/notify.toml`, or the
palette's "Notifications: on/off"."""

from __future__ import annotations

from typing import Optional

from speculators_core import AlertWatch, load_notify_settings, terminal_sequences

SEVERITY = {"failed": "error", "stalled": "error", "warning": "warning"}


class Attention:
    def __init__(self, run_name: str) -> None:
        self.watch = AlertWatch(run_name)
        self.settings = load_notify_settings()

    def check(self, app, status: str, warning: Optional[dict], pace) -> list:
        """Alerts since the last call; each is shown as a toast and, where enabled, rung in the terminal."""
        alerts = self.watch.check(status, warning, pace)
        for a in alerts:
            app.notify(a.message, title=a.title, severity=SEVERITY.get(a.kind, "information"), timeout=10)
            seq = terminal_sequences(a, self.settings)
            driver = getattr(app, "_driver", None)  # how App.bell and App.copy_to_clipboard write
            if seq and driver is not None and not app.is_headless:
                driver.write(seq)
        return alerts
