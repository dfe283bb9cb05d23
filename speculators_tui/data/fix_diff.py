"""What applying a bottleneck warning's `fix_config` changes, as people read it (no textual)."""

from __future__ import annotations

from typing import Any

from speculators_core import RunConfig


def show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or value == "":
        return "(default)"
    return str(value)


def changes(before: RunConfig, after: RunConfig, keys: list[str]) -> list[str]:
    """ "training.mode: online -> hybrid" for each of `keys` whose value differs."""
    from speculators_tui.data.fields import get_value

    out = []
    for dotted in keys:
        old, new = get_value(before, dotted), get_value(after, dotted)
        if old != new:
            out.append(f"{dotted}: {show(old)} -> {show(new)}")
    return out
