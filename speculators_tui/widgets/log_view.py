"""The dashboard's log panes: Textual's Log, made cheap to feed every second, and polite to a
reader who scrolled up.

Each `Log.write` sets `virtual_size`, a layout reactive: a full layout pass of the screen and a
repaint of everything it touches, once a second while a run logs. A log's lines never move other
widgets, so `LogView.write` keeps the new size to itself (the scroll bar is updated in place; a
layout pass happens only when a scroll bar has to appear). It also computes
the widget's style once per repaint instead of once per line, follows the end only while the
reader is at the end (scrolling up to read an error stops the pane from jumping back down), and
sizes itself after dropping the lines past `max_lines` (Log sizes itself before, so a long run's
pane ended in blank rows).
"""

from __future__ import annotations

from typing import Optional

from rich.style import Style
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widgets import Log


class LogView(Log):
    _writing = False
    _frame_style: Optional[Style] = None

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> "LogView":
        if self._writing:
            layout = False  # the new size is applied in write(), without re-arranging the screen
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def refresh_lines(self, y_start: int, line_count: int = 1) -> None:
        if not self._writing:  # Log.write asks once per line; write() repaints once instead
            super().refresh_lines(y_start, line_count)

    def write(self, data: str, scroll_end: Optional[bool] = None) -> "LogView":
        """Append `data`; follow the end when asked, or (by default) when the reader is there."""
        follow = (self.auto_scroll and self.is_vertical_scroll_end) if scroll_end is None else scroll_end
        self._writing = True
        try:
            super().write(data, scroll_end=False)
            # Log sizes itself before dropping lines past max_lines: the end would be blank rows.
            self.virtual_size = Size(self.virtual_size.width, self.line_count)
        finally:
            self._writing = False
        if self.is_mounted:
            # Thumb sizes for the new length (and, under `overflow: auto`, showing a bar: that
            # reactive asks for its own layout pass).
            self._scroll_update(self.virtual_size)
            self.refresh()
        if follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        return self

    @property
    def rich_style(self) -> Style:
        # Log asks for it once per line; it cannot change in the middle of one repaint.
        return self._frame_style if self._frame_style is not None else super().rich_style

    def render_lines(self, crop: Region) -> list[Strip]:
        self._frame_style = super().rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._frame_style = None
