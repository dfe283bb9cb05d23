"""Ask for one line of text (a preset name, a file path): `ModalScreen[str | None]`."""

from __future__ import annotations

from typing import Callable, Optional

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class PromptDialog(ModalScreen[Optional[str]]):
    DEFAULT_CSS = """
    PromptDialog { align: center middle; }
    PromptDialog > Vertical { width: 70; max-width: 95%; height: auto; border: thick $accent; background: $surface; padding: 1 2; }
    PromptDialog #error { color: $error; height: auto; }
    PromptDialog Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    PromptDialog Button { margin-left: 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, question: str, value: str = "", ok: str = "OK",
                 check: Optional[Callable[[str], Optional[str]]] = None) -> None:
        super().__init__()
        self.question, self.value, self.ok = question, value, ok
        self.check = check

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question)
            yield Input(self.value, id="answer")
            yield Static("", id="error")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button(self.ok, id="ok", variant="primary")

    def _submit(self) -> None:
        text = self.query_one("#answer", Input).value.strip()
        problem = "a value is needed" if not text else (self.check(text) if self.check else None)
        if problem:
            self.query_one("#error", Static).update(f"✗ {problem}")
            return
        self.dismiss(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
