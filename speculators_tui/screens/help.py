"""The help screen: every key of every screen, from the bindings themselves."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

GLOBAL_KEYS = (
    ("ctrl+p", "command palette (every action by name)"),
    ("? / f1", "this help"),
    ("ctrl+t", "dark/light theme"),
    ("tab / shift+tab", "next / previous field"),
    ("ctrl+q", "quit (runs keep going)"),
)


def _key(b: Binding) -> str:
    return b.key.replace("question_mark", "?").replace(",", " / ")


def keys_table() -> Table:
    from speculators_tui.screens.dashboard import DashboardScreen
    from speculators_tui.screens.review import ReviewScreen
    from speculators_tui.screens.start import StartScreen
    from speculators_tui.screens.step_gpus import GpuStep
    from speculators_tui.screens.wizard import WizardStep

    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0), expand=True)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    sections = [("Everywhere", GLOBAL_KEYS)]
    for title, cls in (("Start", StartScreen), ("Wizard steps", WizardStep), ("GPUs step", GpuStep),
                       ("Review", ReviewScreen), ("Dashboard", DashboardScreen)):
        own = cls.__dict__.get("BINDINGS", [])
        sections.append((title, [(_key(b), b.description) for b in own if isinstance(b, Binding)]))
    for title, rows in sections:
        table.add_row(Text(title, style="bold underline"), "")
        for key, desc in rows:
            if desc:
                table.add_row(key, desc)
        table.add_row("", "")
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 76; max-width: 100%; height: 90%; border: thick $accent; background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close", id="help.close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll() as vs:
            vs.border_title = "Keys"
            yield Static(keys_table())
            yield Static(Text("The app reads runs only from their directories: leaving a dashboard (detach) or "
                              "quitting never stops a run; 's' on the dashboard does, after a confirmation.",
                              style="dim"))

    def action_dismiss(self, result=None) -> None:  # type: ignore[override]
        self.dismiss(None)
