"""The run's stages in order with status and duration: ✔ prepare 0:12 ─ ● server 1:05 ─ ◌ train."""

from __future__ import annotations

from typing import Optional

from rich.text import Text

from speculators_tui.data.run_watch import StageView
from speculators_tui.widgets.quiet_static import QuietStatic

ICON = {"pending": ("◌", "dim"), "running": ("●", "bold yellow"), "done": ("✔", "green"),
        "skipped": ("↷", "dim"), "failed": ("✗", "bold red")}
LABEL = {"assets": "assets", "regenerate": "regenerate", "prepare": "prepare", "server": "server", "generate": "generate", "train": "training"}
FINAL = {"completed": ("✔", "green", "done"), "failed": ("✗", "bold red", "failed"),
         "stopped": ("■", "yellow", "stopped")}


def duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def regenerate_rate(record: Optional[dict]) -> str:
    """ "37/96 rows · 1.2 rows/s · 410 tok/s" from the regenerate stage's progress record."""
    if not record:
        return ""
    out = f"{record.get('rows_done', 0)}/{record.get('rows_total', 0)} rows"
    if record.get("rows_per_s") is not None:
        out += f" · {float(record['rows_per_s']):.1f} rows/s"
    if record.get("tokens_per_s") is not None:
        out += f" · {float(record['tokens_per_s']):.0f} tok/s"
    if record.get("failed"):
        out += f" · {record['failed']} failed"
    return out


def timeline(stages: list[StageView], status: str, now: float, server_ready_s: Optional[float] = None,
             regenerate: Optional[dict] = None) -> Text:
    out = Text()
    for i, st in enumerate(stages):
        if i:
            out.append(" ─ ", style="dim")
        icon, style = ICON.get(st.status, ("?", ""))
        if status == "stopped" and st.status in ("failed", "running"):
            icon, style = "■", "yellow"  # ended by the user's stop, not by an error
        out.append(f"{icon} ", style=style)
        out.append(LABEL.get(st.name, st.name), style=style if st.status == "running" else "")
        d = st.duration(now)
        if st.name == "server" and server_ready_s is not None:
            out.append(f" up in {duration(server_ready_s)}", style="dim")
        elif d is not None:
            out.append(f" {duration(d)}", style="dim")
        if st.name == "regenerate" and regenerate and st.status in ("running", "done"):
            out.append(f" ({regenerate_rate(regenerate)})", style="dim")
        if st.restarts:
            out.append(f" ({st.restarts} restart{'s' if st.restarts > 1 else ''})", style="yellow")
    if stages:
        out.append(" ─ ", style="dim")
    icon, style, label = FINAL.get(status, ("◌", "dim", "done"))
    out.append(f"{icon} {label}", style=style)
    return out


class StageTimeline(QuietStatic):
    DEFAULT_CSS = "StageTimeline { height: auto; padding: 0 1; }"
