"""The dashboard header's pace line: steps/s, tokens/s, the epoch's and the run's ETA (`runs.eta`)."""

from __future__ import annotations

from rich.text import Text

from speculators_tui.widgets.quiet_static import QuietStatic


class PaceLine(QuietStatic):
    """One line under the stage timeline; red when the run has stalled."""

    _shown: tuple = ()

    def show(self, pace, status: str) -> None:
        text = pace.text() if pace is not None else ""
        if not text:
            text = ("waiting for the first training steps" if status in ("starting", "running") else "")
        stalled = pace is not None and pace.stalled_s is not None
        if (text, stalled) == self._shown:
            return  # polled every second: repaint only on a change
        self._shown = (text, stalled)
        self.set_class(stalled, "stalled")
        out = Text()
        for i, part in enumerate(text.split(" · ")):
            if i:
                out.append(" · ", style="dim")
            out.append(part, style="bold red" if part.startswith("STALLED") else "bold" if "ETA" in part else "")
        self.set_content(out)
