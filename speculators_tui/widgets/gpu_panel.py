"""One row per GPU of a run: role, utilisation and memory bars with a short history."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from speculators_tui.data.run_watch import GpuView

ROLE_STYLE = {"server": "bold magenta", "training": "bold cyan", "shared": "bold yellow", "idle": "dim"}
SPARK = " ▁▂▃▄▅▆▇█"


def bar(frac: float, width: int) -> Text:
    frac = min(max(frac, 0.0), 1.0)
    full = int(round(frac * width))
    style = "green" if frac < 0.7 else ("yellow" if frac < 0.9 else "red")
    return Text("█" * full, style=style) + Text("░" * (width - full), style="dim")


def spark(values, width: int) -> Text:
    vals = list(values)[-width:]
    return Text("".join(SPARK[min(8, max(0, int(round(v / 100 * 8))))] for v in vals).rjust(width), style="blue")


def gpu_rows(gpus: list[GpuView], width: int) -> Text:
    if not gpus:
        return Text("No GPU samples (the run uses the CPU, or gpu.jsonl is empty).", style="dim")
    out = Text()
    # name(14) role(9) 'util '+bar+' 100%' 'mem '+bar+' 80.0/80G' hist
    avail = max(20, width - 14 - 9 - 11 - 16)
    bw = max(4, min(20, avail // 3))
    hw = max(0, min(30, avail - 2 * bw - 2))
    for i, g in enumerate(gpus):
        if i:
            out.append("\n")
        out.append(f"GPU{g.index} {g.name[:8]:<8} "[:14].ljust(14))
        out.append(f"{g.role:<9}", style=ROLE_STYLE.get(g.role, ""))
        out.append("util ")
        out.append_text(bar(g.util / 100, bw))
        out.append(f" {g.util:3.0f}% ")
        if hw:
            out.append_text(spark(g.util_hist, hw // 2))
            out.append(" ")
        out.append("mem ")
        frac = g.mem_used_mb / g.mem_total_mb if g.mem_total_mb else 0.0
        out.append_text(bar(frac, bw))
        out.append(f" {g.mem_used_mb / 1024:4.1f}/{g.mem_total_mb / 1024:.0f}G ")
        if hw:
            out.append_text(spark(g.mem_hist, hw - hw // 2))
    return out


class GpuPanel(Static):
    DEFAULT_CSS = "GpuPanel { height: auto; padding: 0 1; }"

    def show(self, gpus: list[GpuView]) -> None:
        self._gpus = gpus
        self.update(gpu_rows(gpus, self.content_size.width or 78))

    def on_resize(self) -> None:
        if hasattr(self, "_gpus"):
            self.update(gpu_rows(self._gpus, self.content_size.width))
