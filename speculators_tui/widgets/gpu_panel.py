"""One row per GPU of a run: role, utilisation and memory bars with a short history."""

from __future__ import annotations

from rich.text import Text

from speculators_tui.data.run_watch import GpuView
from speculators_tui.widgets.quiet_static import QuietStatic

ROLE_STYLE = {"server": "bold magenta", "training": "bold cyan", "shared": "bold yellow", "idle": "dim"}
SPARK = " ▁▂▃▄▅▆▇█"


def bar(frac: float, width: int) -> Text:
    frac = min(max(frac, 0.0), 1.0)
    full = int(round(frac * width))
    style = "green" if frac < 0.7 else ("yellow" if frac < 0.9 else "red")
    return Text("█" * full, style=style) + Text("░" * (width - full), style="dim")


def spark(values, width: int) -> Text:
    if width <= 0:
        return Text()
    vals = list(values)[-width:]
    return Text("".join(SPARK[min(8, max(0, int(round(v / 100 * 8))))] for v in vals).rjust(width), style="blue")


def gpu_rows(gpus: list[GpuView], width: int) -> Text:
    if not gpus:
        return Text("No GPU samples (the run uses the CPU, or gpu.jsonl is empty).", style="dim")
    out = Text()
    # name(14) role(9) 'util '+bar+' 100%' 'mem '+bar+' 80.0/80G' hist
    wide = width >= 140
    name_w = 22 if wide else 8
    avail = max(20, width - (name_w + 6) - 9 - 11 - 16 - (12 if wide else 0))
    bw = max(4, min(20, avail // 3))
    hw = max(0, min(30, avail - 2 * bw - 2))
    for i, g in enumerate(gpus):
        if i:
            out.append("\n")
        name = g.name.removeprefix("NVIDIA ")
        out.append(f"GPU{g.index} {name[:name_w]:<{name_w}} "[: name_w + 6].ljust(name_w + 6))
        out.append(f"{g.role:<9}", style=ROLE_STYLE.get(g.role, ""))
        if wide:  # temperature and power, as the GPUs tab shows them
            temp = f"{g.temp_c:.0f}°C" if g.temp_c is not None else ""
            out.append(f"{temp:>5}", style=_temp_style(g.temp_c) if g.temp_c is not None else "")
            out.append(f"{g.power_w:>5.0f}W " if g.power_w is not None else " " * 7)
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


STAGE_ROLE = {"server": "server", "train": "training"}


def _temp_style(t: float) -> str:
    return "bold red" if t >= 85 else "yellow" if t >= 75 else ""


def gpu_details(gpus: list[GpuView], width: int) -> Text:
    """nvitop-like: per GPU its full name, role, temperature and power, utilisation and memory bars
    with history, then the processes on it (the run's own marked with their stage)."""
    if not gpus:
        return Text("No GPU samples (the run uses the CPU, or gpu.jsonl is empty).", style="dim")
    width = max(40, width)
    out = Text()
    for i, g in enumerate(gpus):
        if i:
            out.append("\n\n")
        head = Text()
        head.append(f"GPU {g.index}  ", style="bold")
        head.append(g.name or "?", style="bold")
        tail = Text()
        tail.append(f"  {g.role}", style=ROLE_STYLE.get(g.role, ""))
        if g.temp_c is not None:
            tail.append(f"  {g.temp_c:.0f}°C", style=_temp_style(g.temp_c))
        if g.power_w is not None:
            tail.append(f"  {g.power_w:.0f} W")
        pad = width - head.cell_len - tail.cell_len
        out.append_text(head)
        out.append(" " * max(1, pad))
        out.append_text(tail)
        # "  util ██░░  93% ▁▂▃" | "  mem ██░░ 71.8/79.6 GiB ▁▂▃": each half of the width
        half = width // 2
        room = max(8, half - 13)
        bw = max(4, min(30, room * 2 // 3))
        out.append("\n  util ")
        out.append_text(bar(g.util / 100, bw))
        out.append(f" {g.util:3.0f}% ")
        out.append_text(spark(g.util_hist, max(0, room - bw)))
        frac = g.mem_used_mb / g.mem_total_mb if g.mem_total_mb else 0.0
        mem = f" {g.mem_used_mb / 1024:.1f}/{g.mem_total_mb / 1024:.1f} GiB "
        room = max(8, width - half - 6 - len(mem))
        mbw = max(4, min(30, room * 2 // 3))
        out.append("  mem ")
        out.append_text(bar(frac, mbw))
        out.append(mem)
        out.append_text(spark(g.mem_hist, max(0, room - mbw)))
        if g.processes is None:
            continue
        if not g.processes:
            out.append("\n  no processes", style="dim")
            continue
        name_w = max(10, width - 2 - 9 - 13 - 12)  # pid, name, memory, whose
        for p in sorted(g.processes, key=lambda p: (p.stage is None, -p.mem_mb)):
            out.append("\n  ")
            out.append(f"{p.pid:>8} ", style="dim")
            name = p.name if len(p.name) <= name_w else p.name[: name_w - 1] + "…"
            out.append(f"{name:<{name_w}}")
            out.append(f"{p.mem_mb / 1024:8.1f} GiB ")
            if p.stage:
                role = STAGE_ROLE.get(p.stage, p.stage)
                out.append(f"◆ {p.stage}", style=ROLE_STYLE.get(role, "bold"))
            else:
                out.append("not this run", style="yellow")
    return out


class GpuPanel(QuietStatic):
    """The GPU rows: compact (one line per GPU, under the charts) or detailed (the GPUs tab)."""

    DEFAULT_CSS = "GpuPanel { height: auto; padding: 0 1; }"

    def __init__(self, *args, detailed: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.detailed = detailed

    def _text(self, width: int) -> Text:
        return gpu_details(self._gpus, width) if self.detailed else gpu_rows(self._gpus, width)

    def show(self, gpus: list[GpuView]) -> None:
        self._gpus = gpus
        self.set_content(self._text(self.content_size.width or 78))

    def on_resize(self) -> None:
        if hasattr(self, "_gpus"):  # the bars fit the width: redraw (a no-op when the text is the same)
            self.set_content(self._text(self.content_size.width))
