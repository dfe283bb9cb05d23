"""Static text that a screen rewrites every second, at the cost of a repaint and no more.

`Static.update` asks for a layout pass by default, and a layout pass re-arranges the whole screen
and repaints every widget whose place it touches. The dashboard rewrites its timeline, pace line,
stats, banner and GPU rows on every poll, mostly to tick a clock: a repaint of the one widget is
all that needs. `QuietStatic.set_content` skips content equal to what is shown and asks for a
layout pass only when the widget's size may follow the text: a width set by the text, or a
height set by the text whose number of rows for the current width changed.
"""

from __future__ import annotations

from typing import Optional, Union

from rich.text import Text
from textual.widgets import Static

Content = Union[str, Text]


def _key(content: Content) -> tuple:
    if isinstance(content, Text):  # Text's own == ignores its base style and wrapping
        return ("text", content.plain, tuple(content.spans), str(content.style), content.no_wrap,
                content.overflow, content.justify)
    return ("str", content)


class QuietStatic(Static):
    _shown_key: Optional[tuple] = None
    _shown_rows: Optional[tuple[int, int]] = None  # (content width, rows) at the last update

    def _rows(self, content: Content) -> Optional[tuple[int, int]]:
        """(width, rows) the content takes; None when that cannot be known here."""
        width = self.content_size.width
        if width <= 0 or not self.is_mounted:
            return None
        if not isinstance(content, Text):
            content = Text(content)  # markup only shortens lines: at worst one layout too many
        return width, len(content.wrap(self.app.console, width, no_wrap=content.no_wrap))

    def _needs_layout(self, content: Content) -> bool:
        styles = self.styles
        if styles.width is not None and styles.width.is_auto:
            return True  # sized by its text: any change may move its neighbours
        if styles.height is not None and not styles.height.is_auto:
            return False  # a fixed or fractional height never depends on the text
        if not self.display:
            return False  # showing it again is a layout pass of its own
        rows = self._rows(content)
        changed = rows is None or rows != self._shown_rows
        self._shown_rows = rows
        return changed

    def set_content(self, content: Content) -> None:
        """Show `content`; nothing happens when it is what is shown already."""
        key = _key(content)
        if key == self._shown_key:
            return
        self._shown_key = key
        super().update(content, layout=self._needs_layout(content))

    def update(self, content: Content = "", *, layout: bool = True) -> None:
        """A plain update (from outside set_content) is always shown and forgets what was shown."""
        self._shown_key = self._shown_rows = None
        super().update(content, layout=layout)
