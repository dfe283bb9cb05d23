"""The review screen's pre-flight panel: `python -m speculators_core.doctor - --json` run on the
wizard's configuration in a subprocess (the checks load tokenizers and probe the server's Python:
the app itself never imports transformers), shown as pass / warn / fail lines with their fixes."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Optional

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

ICON = {"pass": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "bold red"), "skip": ("-", "dim")}
TIMEOUT_S = 180.0


def doctor_command() -> list[str]:
    return [sys.executable, "-m", "speculators_core.doctor", "-", "--json"]


def render_checks(checks: list[dict]) -> Text:
    text = Text()
    for c in checks:
        icon, style = ICON.get(str(c.get("status")), ("?", ""))
        if text.plain:
            text.append("\n")
        text.append(f"{icon} {c.get('name', '?'):<12}", style=style)
        text.append(str(c.get("detail", "")))
        if c.get("fix"):
            text.append(f"\n  {'':<12}fix: {c['fix']}", style="italic")
    return text


class DoctorPanel(VerticalScroll):
    """Idle until `run(toml_text)`; then 'checking…', then the results (scrolls when long)."""

    class Done(Message):
        def __init__(self, checks: Optional[list[dict]], error: Optional[str]) -> None:
            super().__init__()
            self.checks, self.error = checks, error

    IDLE = Text.assemble(("Pre-flight check ", "bold"), ("(ctrl+d): target, layer ids, the server's vLLM, chat "
                         "template and loss mask, cache disk; before any GPU time", "dim"))

    def compose(self) -> ComposeResult:
        yield Static(self.IDLE, id="doctor-text")

    def on_mount(self) -> None:
        self.border_title = "pre-flight check"
        self.checks: Optional[list[dict]] = None

    def update(self, text: Text) -> None:
        self.query_one("#doctor-text", Static).update(text)

    @property
    def text(self) -> str:
        return str(self.query_one("#doctor-text", Static).render())

    def run(self, toml_text: str) -> None:
        self.update(Text("checking… (target, layer ids, vLLM, chat template, disk)", style="dim"))
        self.set_class(False, "failed")
        self._check(toml_text)

    @work(thread=True, exclusive=True, exit_on_error=False, group="doctor")
    def _check(self, toml_text: str) -> None:
        try:
            out = subprocess.run(doctor_command(), input=toml_text, capture_output=True, text=True,
                                 timeout=TIMEOUT_S, start_new_session=True)
            checks = json.loads(out.stdout) if out.stdout.strip() else None
            error = None if checks is not None else (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1]
        except (subprocess.TimeoutExpired, OSError, ValueError) as exc:
            checks, error = None, f"{type(exc).__name__}: {exc}"
        self.post_message(self.Done(checks, error))

    def on_doctor_panel_done(self, event: "DoctorPanel.Done") -> None:
        self.checks = event.checks
        if event.error:
            self.update(Text(f"the pre-flight check could not run: {event.error}", style="red"))
            return
        self.update(render_checks(event.checks or []))
        self.set_class(any(c.get("status") == "fail" for c in event.checks or []), "failed")
