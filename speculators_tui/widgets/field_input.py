"""One form field bound to a dotted config key: label, editor, inline error/warning and hint."""

from __future__ import annotations

from typing import Any, Optional

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Checkbox, Input, Label, Select, Static

from speculators_tui.data import fields


class TickBox(Checkbox):
    """A checkbox that is empty when off and ticked when on (Textual's shows an X either way,
    told apart only by colour, which reads as "checked" to most people)."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]
        return "✔" if self.value else " "


def field_id(dotted: str) -> str:
    return "f-" + dotted.replace(".", "--")


class FieldInput(Vertical):
    """Edits `dotted`; posts `FieldInput.Edited(dotted, value, error)` on every change."""

    DEFAULT_CSS = """
    FieldInput { height: auto; margin: 0 0 1 0; }
    FieldInput > Horizontal { height: auto; }
    FieldInput .field-label { width: 22; padding: 0 1 0 0; text-align: right; color: $text-muted; }
    FieldInput Input { width: 1fr; height: 1; border: none; padding: 0 1; background: $boost; }
    FieldInput Input:focus { border: none; background: $primary 30%; }
    FieldInput Select { width: 1fr; height: auto; }
    FieldInput Select > SelectCurrent { background: $boost; }
    FieldInput Select:focus > SelectCurrent { background: $primary 30%; }
    FieldInput Checkbox { width: 1fr; background: $boost; }
    FieldInput Checkbox:focus { background: $primary 30%; }
    FieldInput .field-error { height: auto; padding: 0 0 0 22; color: $error; display: none; }
    FieldInput .field-error.warning { color: $warning; }
    FieldInput .field-error.shown { display: block; }
    FieldInput.invalid Input { background: $error 25%; }
    """

    class Edited(Message):
        def __init__(self, field_input: "FieldInput", dotted: str, value: Any, error: Optional[str]) -> None:
            super().__init__()
            self.field_input = field_input
            self.dotted = dotted
            self.value = value
            self.error = error

    def __init__(self, dotted: str, label: str, value: Any, hint: str = "", placeholder: str = "",
                 choice_labels: Optional[dict[str, str]] = None) -> None:
        super().__init__(id=field_id(dotted))
        self.dotted = dotted
        self.label = label
        self.value = value
        self.hint = hint
        self.placeholder = placeholder
        self.parse_error: Optional[str] = None
        self._choices = fields.choices(dotted)
        self._choice_labels = choice_labels or {}
        self._is_bool = fields.field_type(dotted) is bool

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.label, classes="field-label")
            if self._is_bool:
                yield TickBox(self.hint or "on", value=bool(self.value), compact=True)
            elif self._choices:
                yield Select([(self._choice_labels.get(c, c), c) for c in self._choices], value=self.value,
                             allow_blank=False, compact=True)
            else:
                yield Input(fields.format_value(self.value), placeholder=self.placeholder or self.hint,
                            tooltip=self.hint or None)
        yield Static("", classes="field-error")

    def editor(self):
        return self.query_one("Input, Select, Checkbox")

    def set_value(self, value: Any) -> None:
        """Show `value` (set by code, e.g. a suggested split) without echoing an edit."""
        self.value = value
        ed = self.editor()
        with ed.prevent(Input.Changed, Select.Changed, Checkbox.Changed):
            if isinstance(ed, Input):
                ed.value = fields.format_value(value)
            else:
                ed.value = value
        self.parse_error = None

    def _edited(self, raw: Any) -> None:
        try:
            self.value = fields.parse_text(self.dotted, raw) if isinstance(raw, str) else raw
            self.parse_error = None
        except ValueError as exc:
            self.parse_error = str(exc)
        self.post_message(self.Edited(self, self.dotted, self.value, self.parse_error))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._edited(event.value)

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is not Select.BLANK:
            self._edited(event.value)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self._edited(event.value)

    def show_problem(self, message: str, severity: str = "error") -> None:
        err = self.query_one(".field-error", Static)
        err.update(("⚠ " if severity == "warning" else "✗ ") + message if message else "")
        err.set_class(bool(message), "shown")
        err.set_class(severity == "warning", "warning")
        self.set_class(bool(message) and severity == "error", "invalid")
