"""The dashboard header's pace line: steps/s, tokens/s, the epoch's and the run's ETA (`runs.eta`)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class PaceLine(Static):
    """One line under the stage timeline; red when the run has stalled."""

    def show(self, pace, status: str) -> None:
        text = pace.text() if pace is not None else ""
        if not text:
            text = ("waiting for the first training steps" if status in ("starting", "running") else "")
        self.set_class(pace is not None and pace.stalled_s is not None, "stalled")
        self.update(Text(text, style="bold red" if pace is not None and pace.stalled_s is not None else ""))
