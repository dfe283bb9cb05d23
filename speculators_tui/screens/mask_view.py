"""The loss-mask view of prepared data: a row's tokens with the trained ones highlighted and the
share of trained tokens (`speculators_core.data.mask_view`, the same as `speculators-tui data show`).
Reading a row needs pyarrow and the `tokenizers` library only (no torch/transformers), in a worker."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

TRAINED = "bold black on green"


def mask_text(view, tokens: bool = False) -> Text:
    out = Text()
    if tokens:
        for i, (t, m) in enumerate(view.tokens):
            shade = ("on green" if i % 2 else "on dark_green") if m else ("on grey23" if i % 2 else "on grey15")
            out.append(t, style=("bold black " if m else "") + shade)
    else:
        for t, m in view.segments():
            out.append(t, style=TRAINED if m else "dim")
    return out


class MaskViewScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="mask.back"),
        Binding("n,right", "row(1)", "Next row", id="mask.next"),
        Binding("p,left", "row(-1)", "Previous row", id="mask.prev"),
        Binding("t", "toggle_tokens", "Token boundaries", id="mask.tokens"),
    ]

    class Loaded(Message):
        def __init__(self, view, error: Optional[str]) -> None:
            super().__init__()
            self.view, self.error = view, error

    def __init__(self, data_dir: Path, row: int = 0) -> None:
        super().__init__()
        self.data_dir, self.row = Path(data_dir), row
        self.view = None
        self.tokens = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="mask-summary")
        with VerticalScroll(id="mask-pane"):
            yield Static("", id="mask-text")
        yield Footer()

    def on_mount(self) -> None:
        parts = self.data_dir.parts
        self.sub_title = "loss mask · " + (str(self.data_dir) if len(parts) <= 3 else "…/" + "/".join(parts[-2:]))
        self.query_one("#mask-pane").border_title = "trained tokens highlighted"
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="mask-load")
    def load(self) -> None:
        from speculators_core import MaskViewError, row_view

        try:
            view = row_view(self.data_dir, self.row)
        except MaskViewError as exc:
            self.post_message(self.Loaded(None, exc.message + (f" (fix: {exc.fix})" if exc.fix else "")))
            return
        self.post_message(self.Loaded(view, None))

    def on_mask_view_screen_loaded(self, event: "MaskViewScreen.Loaded") -> None:
        summary = self.query_one("#mask-summary", Static)
        if event.error:
            summary.update(Text(event.error, style="red"))
            return
        self.view = event.view
        self.row = event.view.row
        summary.update(Text.assemble((event.view.summary(), "bold"), "   ", ("trained", TRAINED),
                                     ("  n/p: next/previous row · t: token boundaries", "dim")))
        self.show()

    def show(self) -> None:
        if self.view is not None:
            self.query_one("#mask-text", Static).update(mask_text(self.view, self.tokens))

    def action_row(self, step: int) -> None:
        if self.view is None:
            return
        self.row = (self.row + step) % self.view.rows
        self.load()

    def action_toggle_tokens(self) -> None:
        self.tokens = not self.tokens
        self.show()
