"""A braille line chart with a y axis, an x axis and a legend.

Cheap to keep on screen: the chart is drawn once per change of its data, view or size, straight
into strips (the line API), and every later repaint (a layout pass, another widget changing)
reuses them.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

from rich.text import Text
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

Series = tuple[str, Sequence[tuple[float, float]], str]  # (label, points, colour)

# Braille dot bits by [row 0..3][column 0..1] inside one character cell.
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
Y_LABEL_WIDTH = 7


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e5:
        return f"{v / 1e3:.0f}k" if a < 1e6 else f"{v / 1e6:.1f}M"
    if a >= 1000:
        return f"{v / 1e3:.1f}k"
    if a >= 10:
        return f"{v:.0f}" if a >= 100 else f"{v:.1f}"
    return f"{v:.2f}" if a >= 0.01 else f"{v:.0e}"


def _fmt_x(v: float) -> str:
    return f"{int(v):,}" if float(v).is_integer() else _fmt(v)


def _ema(points: Sequence[tuple[float, float]], alpha: float) -> list[tuple[float, float]]:
    out, acc = [], points[0][1]
    for x, y in points:
        acc = alpha * acc + (1 - alpha) * y
        out.append((x, acc))
    return out


def _buckets(points: Sequence[tuple[float, float]], x0: float, x1: float, width: int) -> list[tuple[float, float]]:
    """Average points per pixel column when there are many more points than columns."""
    if len(points) <= 2 * width or x1 <= x0:
        return list(points)
    sums: dict[int, list[float]] = {}
    for x, y in points:
        col = int((x - x0) / (x1 - x0) * (width - 1))
        acc = sums.setdefault(col, [0.0, 0.0, 0])
        acc[0] += x
        acc[1] += y
        acc[2] += 1
    return [(s[0] / s[2], s[1] / s[2]) for _, s in sorted(sums.items())]


def _value_at(points: Sequence[tuple[float, float]], x: float) -> Optional[tuple[float, float]]:
    """The last point at or before `x` (the value a step-wise curve has there)."""
    best = None
    for p in points:
        if p[0] <= x:
            best = p
        else:
            break
    return best


class LineChart(Widget):
    """A braille chart of one or more series against steps.

    Reading aids, all set by the owning screen (no timers here): `smooth` (EMA weight of the past,
    like wandb's slider), `log_y` (log10 y axis, positive values only), `last_n` (show the last N
    steps only) and `cursor_x` (a vertical cursor; the values under it go into the legend). Moving
    the mouse over the plot posts `LineChart.Hovered` with the step under the pointer.
    """

    DEFAULT_CSS = """
    LineChart { height: 1fr; min-height: 5; border: round $panel; padding: 0 1; border-subtitle-align: left; border-subtitle-color: $text; }
    """

    class Hovered(Message):
        def __init__(self, chart: "LineChart", x: Optional[float]) -> None:
            super().__init__()
            self.chart, self.x = chart, x

    def __init__(self, title: str, x_label: str = "step", y_range: Optional[tuple[float, float]] = None,
                 y_format: Callable[[float], str] = _fmt, smooth: float = 0.0, **kwargs) -> None:
        """smooth: exponential moving average weight of the past (0 = raw values, 0.8 = smooth)."""
        super().__init__(**kwargs)
        self.smooth = smooth
        self.log_y = False
        self.last_n: Optional[int] = None
        self.cursor_x: Optional[float] = None
        self.title = title
        self.x_label = x_label
        self.y_range = y_range
        self.y_format = y_format
        self.series: list[Series] = []
        self.border_title = title
        #: (x0, x1, plot columns) of the last render: maps a column to a step for the mouse.
        self._x_axis: Optional[tuple[float, float, int]] = None
        #: Bumped on every change of data or view; the strips are redrawn only when it moved.
        self._version = 0
        self._strips: list[Strip] = []
        self._strips_key: Optional[tuple] = None

    def set_series(self, series: list[Series]) -> None:
        self.series = series
        self._changed()

    def set_view(self, smooth: Optional[float] = None, log_y: Optional[bool] = None, last_n: Optional[int] = -1,
                 cursor_x: Optional[float] = -1.0) -> None:
        """Change how the series are drawn (-1 = leave as is for last_n and cursor_x)."""
        if smooth is not None:
            self.smooth = smooth
        if log_y is not None:
            self.log_y = log_y
        if last_n != -1:
            self.last_n = last_n
        if cursor_x != -1.0:
            self.cursor_x = cursor_x
        self._changed()

    def _changed(self) -> None:
        self._version += 1
        self.border_subtitle = self.legend()
        self.refresh()

    def drawn(self) -> list[Series]:
        """The series as drawn: finite (and positive on a log axis), smoothed over their whole
        length (as wandb does), then cut to the last N steps."""
        out = []
        x_max = max((p[0] for _, pts, _ in self.series for p in pts), default=None)
        for label, pts, colour in self.series:
            pts = [p for p in pts if math.isfinite(p[1]) and (not self.log_y or p[1] > 0)]
            if self.smooth and len(pts) > 2:
                pts = _ema(pts, self.smooth)
            if self.last_n and x_max is not None:
                pts = [p for p in pts if p[0] > x_max - self.last_n]
            out.append((label, pts, colour))
        return out

    def values_at(self, x: float) -> list[tuple[str, Optional[float], str]]:
        """(label, value at step x as drawn, colour) per series."""
        out = []
        for label, pts, colour in self.drawn():
            p = _value_at(pts, x)
            out.append((label, p[1] if p else None, colour))
        return out

    def legend(self) -> str:
        """Colour key in the bottom border (content markup), so the plot keeps every row; with a
        cursor, the value of each series under it."""
        if self.cursor_x is None:
            return "  ".join(f"[{colour}]■[/] {label}" for label, pts, colour in self.series if pts)
        parts = [f"[{colour}]■[/] {label} {self.y_format(v) if v is not None else '—'}"
                 for label, v, colour in self.values_at(self.cursor_x)]
        return f"[b]{_fmt_x(self.cursor_x)}[/b] " + "  ".join(parts)

    def x_at_column(self, col: int) -> Optional[float]:
        """The step under plot column `col` of the last render (None outside the plot)."""
        if self._x_axis is None:
            return None
        x0, x1, plot_w = self._x_axis
        if not 0 <= col < plot_w:
            return None
        return x0 + (x1 - x0) * col / max(1, plot_w - 1)

    def on_mouse_move(self, event) -> None:
        offset = event.get_content_offset(self)
        x = None if offset is None else self.x_at_column(offset.x - Y_LABEL_WIDTH - 1)
        if x is not None:
            x = float(round(x))
        self.post_message(self.Hovered(self, x))

    def render_lines_text(self, width: int, height: int) -> list[Text]:
        """The chart as `height` lines of text (pure; used by render_line and tests)."""
        lines: list[Text] = []
        plot_h = max(1, height - 1)
        plot_w = max(2, width - Y_LABEL_WIDTH - 1)
        drawn = self.drawn()
        pts_all = [p for _, pts, _ in drawn for p in pts]
        if not pts_all:
            self._x_axis = None
            lines.append(Text("waiting for data…" if not any(pts for _, pts, _ in self.series)
                              else "no positive values for a log scale" if self.log_y else "no data in range",
                              style="dim"))
            while len(lines) < height:
                lines.append(Text(""))
            return lines[:height]
        fy = (lambda v: math.log10(v)) if self.log_y else (lambda v: v)
        xs = [p[0] for p in pts_all]
        ys = [fy(p[1]) for p in pts_all]
        x0, x1 = min(xs), max(xs)
        if self.y_range and not self.log_y:
            y0, y1 = self.y_range
        else:
            y0, y1 = min(ys), max(ys)
            pad = (y1 - y0) * 0.05 or abs(y1) * 0.05 or 1.0
            y0, y1 = y0 - pad, y1 + pad
        if x1 == x0:
            x1 = x0 + 1
        self._x_axis = (x0, x1, plot_w)
        W, H = plot_w * 2, plot_h * 4
        cells: dict[tuple[int, int], list] = {}

        def dot(px: int, py: int, colour: str) -> None:
            if 0 <= px < W and 0 <= py < H:
                key = (py // 4, px // 2)
                cell = cells.setdefault(key, [0, colour])
                cell[0] |= _DOTS[py % 4][px % 2]
                cell[1] = colour

        def to_px(x: float, y: float) -> tuple[float, float]:
            y = min(max(y, y0), y1)
            return (x - x0) / (x1 - x0) * (W - 1), (y1 - y) / (y1 - y0) * (H - 1)

        for _, pts, colour in drawn:
            pts = _buckets([(x, fy(y)) for x, y in pts], x0, x1, W)
            prev = None
            for x, y in pts:
                cur = to_px(x, y)
                if prev is None:
                    dot(round(cur[0]), round(cur[1]), colour)
                else:
                    n = int(max(abs(cur[0] - prev[0]), abs(cur[1] - prev[1]), 1))
                    for i in range(1, n + 1):
                        t = i / n
                        dot(round(prev[0] + (cur[0] - prev[0]) * t), round(prev[1] + (cur[1] - prev[1]) * t), colour)
                prev = cur
        cursor_col = None
        if self.cursor_x is not None and x0 <= self.cursor_x <= x1:
            cursor_col = int(round((self.cursor_x - x0) / (x1 - x0) * (plot_w - 1)))
        label_rows = {0: y1, plot_h - 1: y0}
        if plot_h >= 5:
            label_rows[(plot_h - 1) // 2] = (y0 + y1) / 2
        for row in range(plot_h):
            line = Text()
            label = ""
            if row in label_rows:
                label = self.y_format(10 ** label_rows[row] if self.log_y else label_rows[row])
            line.append(f"{label:>{Y_LABEL_WIDTH - 1}} ┤" if label else " " * (Y_LABEL_WIDTH - 1) + " │", style="dim")
            # Runs of cells in one style become one append (a few per row instead of one per cell).
            run, run_style = [], ""
            for col in range(plot_w):
                cell = cells.get((row, col))
                if col == cursor_col:
                    char, style = (chr(0x2800 + cell[0]), cell[1] + " reverse") if cell else ("│", "bold")
                elif cell is None:
                    char, style = " ", ""
                else:
                    char, style = chr(0x2800 + cell[0]), cell[1]
                if style != run_style and run:
                    line.append("".join(run), style=run_style)
                    run = []
                run.append(char)
                run_style = style
            if run:
                line.append("".join(run), style=run_style)
            lines.append(line)
        # The x axis carries its own labels: "└1──────────126 step" (and "log" on a log axis).
        left, right = _fmt_x(x0), f"{_fmt_x(x1)} {self.x_label}" + (" · log y" if self.log_y else "")
        fill = max(1, plot_w - len(left) - len(right))
        lines.append(Text(" " * (Y_LABEL_WIDTH - 1) + " └" + left + "─" * fill + right, style="dim"))
        return lines[:height]

    def render(self) -> Text:
        """The whole chart as one Text (for tests and export; the screen uses render_line)."""
        width, height = self.content_size
        text = Text("\n").join(self.render_lines_text(width, height))
        text.no_wrap = True
        text.overflow = "crop"
        return text

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        base = self.visual_style.rich_style
        key = (width, height, self._version, base)
        if key != self._strips_key:
            console = self.app.console
            strips = []
            for line in self.render_lines_text(width, height):
                strip = Strip(list(line.render(console)), line.cell_len)  # the spans' styles
                if line.style:  # the line's own style (Text.render leaves it to the caller)
                    strip = strip.apply_style(console.get_style(line.style))
                strips.append(strip.crop_extend(0, width, None).apply_style(base))
            self._strips, self._strips_key = strips, key
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width, base)
