"""The help screen: every key of every screen, from the bindings themselves."""

from __future__ import annotations

from typing import Optional

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


KEY_NAMES = {"question_mark": "?", "comma": ",", "full_stop": ".", "left_square_bracket": "[",
             "right_square_bracket": "]"}


def _key(b: Binding) -> str:
    return " / ".join(KEY_NAMES.get(k, k) for k in b.key.split(","))


SCREEN_TITLES = (("Start", "StartScreen"), ("Wizard steps", "WizardStep"), ("GPUs step", "GpuStep"),
                 ("Review", "ReviewScreen"), ("Dashboard", "DashboardScreen"))


def _screen_classes() -> dict[str, type]:
    from speculators_tui.screens.dashboard import DashboardScreen
    from speculators_tui.screens.review import ReviewScreen
    from speculators_tui.screens.start import StartScreen
    from speculators_tui.screens.step_gpus import GpuStep
    from speculators_tui.screens.wizard import WizardStep

    return {c.__name__: c for c in (StartScreen, WizardStep, GpuStep, ReviewScreen, DashboardScreen)}


def _rows(cls: type) -> list[tuple[str, str]]:
    own = cls.__dict__.get("BINDINGS", [])
    return [(_key(b), b.description) for b in own if isinstance(b, Binding)]


def keys_table(current: Optional[object] = None) -> Table:
    """Every key; those of the screen `current` (the one help was opened from) first."""
    classes = _screen_classes()
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0), expand=True)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    here: list[tuple[str, list]] = []
    others: list[tuple[str, list]] = []
    for title, name in SCREEN_TITLES:
        cls = classes[name]
        mine = current is not None and isinstance(current, cls)
        (here if mine else others).append((title, _rows(cls)))
    extra = list(getattr(current, "HELP_EXTRA", ()))  # keys a screen handles outside BINDINGS
    sections = [(f"This screen: {t}", rows) for t, rows in here]
    if extra:
        sections.append(("This screen: more", extra))
    sections.append(("Everywhere", list(GLOBAL_KEYS)))
    sections += [(t, rows) for t, rows in others]
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

    def __init__(self, current: Optional[object] = None) -> None:
        super().__init__()
        #: The screen help was opened from: its keys come first.
        self.current = current

    def compose(self) -> ComposeResult:
        with VerticalScroll() as vs:
            vs.border_title = "Keys"
            vs.border_subtitle = "esc: close"
            yield Static(Text.assemble(("esc", "bold cyan"), " (or ", ("q", "bold cyan"), ", ", ("?", "bold cyan"),
                                       ") closes this help; ", ("↑ ↓", "bold cyan"), " scroll."), id="help-close")
            yield Static(keys_table(self.current))
            yield Static(Text("The app reads runs only from their directories: leaving a dashboard (detach) or "
                              "quitting never stops a run; 's' on the dashboard does, after a confirmation.",
                              style="dim"))

    def action_dismiss(self, result=None) -> None:  # type: ignore[override]
        self.dismiss(None)
