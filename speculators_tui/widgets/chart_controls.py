"""How the dashboard's charts are read: smoothing, log-scale loss, zoom and a cursor (one state for
all charts), and the one-line key guide above them. Pure state: no timers, nothing polled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from rich.text import Text

#: EMA weights of the past offered by `m` (0 = raw values), as wandb's smoothing slider.
SMOOTHING = (0.0, 0.6, 0.8, 0.9, 0.95, 0.99)
#: Zoom levels offered by `z`: the last N steps (None = every step).
ZOOM = (None, 1000, 500, 200, 100, 50, 20)


@dataclass
class ChartView:
    smooth: float = 0.6
    log_loss: bool = False
    last_n: Optional[int] = None
    cursor_x: Optional[float] = None

    def next_smoothing(self) -> float:
        i = SMOOTHING.index(self.smooth) if self.smooth in SMOOTHING else 0
        self.smooth = SMOOTHING[(i + 1) % len(SMOOTHING)]
        return self.smooth

    def next_zoom(self, steps: Optional[float]) -> Optional[int]:
        """The next zoom level that shows fewer steps than the run has (`steps`: its last step)."""
        i = ZOOM.index(self.last_n) if self.last_n in ZOOM else 0
        for j in range(1, len(ZOOM) + 1):
            n = ZOOM[(i + j) % len(ZOOM)]
            if n is None or steps is None or n < steps:
                self.last_n = n
                return n
        return self.last_n  # pragma: no cover - None is always in ZOOM

    def guide(self, width: int) -> Text:
        """ "m smoothing 0.6 · g loss scale linear · z steps all · , . cursor" (shorter when narrow)."""
        items = [("m", "smoothing", f"{self.smooth:g}" if self.smooth else "off"),
                 ("g", "loss", "log" if self.log_loss else "linear"),
                 ("z", "steps", f"last {self.last_n:,}" if self.last_n else "all"),
                 (", .", "cursor", f"step {self.cursor_x:,.0f}" if self.cursor_x is not None else "off")]
        out = Text()
        for i, (key, what, value) in enumerate(items):
            if i:
                out.append(" · ", style="dim")
            out.append(key, style="bold")
            out.append(f" {what} " if width >= 70 else " ", style="dim")
            out.append(value)
        if self.cursor_x is not None and width >= 90:
            out.append("  (c: cursor off)", style="dim")
        return out
