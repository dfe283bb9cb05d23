"""The wizard's common frame: step bar, form body, inline validation, summary line, Back/Next.

Each step owns some dotted config fields. Every edit updates the app's draft config and re-runs the
engine's `validate()`; problems of owned fields appear next to the field (or in the step's problem
list when no field shows them), and Next is disabled while an owned field has an error.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Header, Static

from speculators_core import Problem, RunConfig, problems_for_export, validate_config
from speculators_tui.data import fields
from speculators_tui.widgets.app_footer import AppFooter
from speculators_tui.widgets.field_input import FieldInput, field_id

STEPS = ("Model & data", "GPUs", "Training", "Review")


def step_bar(current: int) -> Text:
    out = Text()
    for i, name in enumerate(STEPS):
        if i:
            out.append("  ›  ", style="dim")
        style = "bold reverse" if i == current else ("" if i < current else "dim")
        out.append(f" {i + 1} {name} ", style=style)
    return out


class WizardStep(Screen):
    STEP = 0
    BINDINGS = [
        Binding("ctrl+n", "next", "Next", id="wizard.next"),
        Binding("escape", "back", "Back", id="wizard.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[Problem] = []

    # -- to override ---------------------------------------------------------------------------------
    def owns(self, dotted: str) -> bool:
        raise NotImplementedError

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError

    def summary(self) -> Text:
        return Text()

    def next_screen(self) -> Optional[Screen]:
        return None

    def extra_problems(self) -> list[Problem]:
        """Problems the app adds to the engine's (e.g. what stops the commands from being built)."""
        return []

    # -- frame ---------------------------------------------------------------------------------------
    @property
    def cfg(self) -> RunConfig:
        return self.app.config  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(step_bar(self.STEP), id="step-bar")
        with VerticalScroll(id="body", can_focus=False):
            yield from self.compose_body()
            yield Static("", id="problems")
        yield Static("", id="summary")
        with Horizontal(id="nav"):
            yield Button("‹ Back", id="back", compact=True)
            yield Static("", id="nav-note")
            yield Button("Next ›", id="next", variant="primary", compact=True)
        yield AppFooter()

    def field(self, dotted: str, label: str, hint: str = "", placeholder: str = "",
              choice_labels: Optional[dict[str, str]] = None) -> FieldInput:
        return FieldInput(dotted, label, fields.get_value(self.cfg, dotted), hint, placeholder, choice_labels)

    def on_mount(self) -> None:
        self.sub_title = f"step {self.STEP + 1} of {len(STEPS)}: {STEPS[self.STEP]}"
        self.revalidate()

    def on_screen_resume(self) -> None:
        # Another step (or a fix from the dashboard) may have changed the config meanwhile.
        for fi in self.query(FieldInput):
            if fi.parse_error is None:
                fi.set_value(fields.get_value(self.cfg, fi.dotted))
        self.revalidate()

    def on_field_input_edited(self, event: FieldInput.Edited) -> None:
        if event.error is None:
            old = fields.get_value(self.cfg, event.dotted)
            fields.set_value(self.cfg, event.dotted, event.value)
            for derived in fields.follow_derived(self.cfg, event.dotted, old):  # e.g. checkpoint dir
                shown = self.query(f"#{field_id(derived)}")
                if shown:
                    shown.first(FieldInput).set_value(fields.get_value(self.cfg, derived))
        self.config_changed(event.dotted)
        self.revalidate()

    def on_input_submitted(self, event) -> None:
        """Enter in a field moves to the next one (Tab does too)."""
        event.stop()
        self.focus_next()

    def config_changed(self, dotted: str) -> None:
        """Hook: a field changed (e.g. reload the target's facts)."""

    def parse_errors(self) -> dict[str, str]:
        return {fi.dotted: fi.parse_error for fi in self.query(FieldInput) if fi.parse_error}

    def blocking(self) -> list[str]:
        out = [f"{k}: {v}" for k, v in self.parse_errors().items()]
        out += [str(p) for p in self.problems if p.severity == "error" and self.owns(p.field)]
        return out

    def revalidate(self) -> None:
        # A path missing on this machine does not block the wizard (the run may be exported for a
        # cluster): it is a warning here; Launch on the review step still needs it.
        self.problems = problems_for_export(validate_config(self.cfg, self.app.target)) + self.extra_problems()  # type: ignore[attr-defined]
        shown: set[int] = set()
        for fi in self.query(FieldInput):
            if fi.parse_error:
                fi.show_problem(fi.parse_error)
                continue
            mine = fields.problems_for(self.problems, fi.dotted)
            mine.sort(key=lambda p: p.severity != "error")
            if mine:
                shown.update(id(p) for p in mine)
                p = mine[0]
                fi.show_problem(p.message + (f" — fix: {p.fix}" if p.fix else ""), p.severity)
            else:
                fi.show_problem("")
        rest = [p for p in self.problems if self.owns(p.field) and id(p) not in shown]
        text = Text()
        for p in rest:
            if len(text):
                text.append("\n")
            text.append("✗ " if p.severity == "error" else "⚠ ", style="red" if p.severity == "error" else "yellow")
            text.append(str(p))
        problems = self.query_one("#problems", Static)
        problems.update(text)
        problems.display = bool(text.plain)
        self.query_one("#summary", Static).update(self.summary())
        blocked = self.blocking()
        self.query_one("#next", Button).disabled = bool(blocked)
        note = f"{len(blocked)} problem{'s' if len(blocked) != 1 else ''} to fix" if blocked else ""
        self.query_one("#nav-note", Static).update(Text(note, style="red"))
        if bool(blocked) != getattr(self, "_was_blocked", None):  # the footer is rebuilt: only on change
            self._was_blocked = bool(blocked)
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next":
            return None if self.blocking() else True  # None: shown disabled in the footer
        return True

    def action_next(self) -> None:
        if self.blocking():
            self.notify("Fix the problems marked in red first.", severity="warning")
            return
        nxt = self.next_screen()
        if nxt is not None:
            self.app.push_screen(nxt)

    def action_back(self) -> None:
        if self.STEP == 0 and (self.parse_errors() or self.app.config_edited()):  # type: ignore[attr-defined]
            from speculators_tui.dialogs.confirm import ConfirmDialog

            self.app.push_screen(ConfirmDialog(
                "Discard this configuration? What you changed in the wizard is lost (save it as a preset "
                "on the Review step to keep it).", yes="Discard", no="Keep editing"),
                lambda yes: self.app.pop_screen() if yes else None)
            return
        self.app.pop_screen()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "next":
            event.stop()
            self.action_next()
        elif event.button.id == "back":
            event.stop()
            self.action_back()


def join(items: Iterable[Any]) -> str:
    return ",".join(str(i) for i in items)
