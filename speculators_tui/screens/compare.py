"""Compare runs: pick two or more from the run history, then see their loss, accuracy and
acceptance curves overlaid and the difference of their configurations (`runs.compare`, the same
data `speculators-tui compare` prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, SelectionList, Static
from textual.widgets.selection_list import Selection

from speculators_tui.widgets.line_chart import LineChart

RUN_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_white", "bright_green")


def tag(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else str(i)


class ComparePicker(Screen):
    """Check two or more runs of the run history, then Enter (or c) compares them."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="pick.back"),
        Binding("c", "compare", "Compare", id="pick.compare"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text("Pick the runs to compare (space checks a run; c or enter compares)", style="bold"),
                     id="pick-intro")
        yield SelectionList[str](id="pick-runs")
        yield Static("", id="pick-note")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "compare runs"
        from speculators_tui.screens.start import run_label

        sl = self.query_one(SelectionList)
        entries = self.app.recent_entries()  # type: ignore[attr-defined]
        for e in entries[:50]:
            sl.add_option(Selection(run_label(e), e.dir))
        if not entries:
            self.query_one("#pick-note", Static).update(Text("No runs in the run history yet.", style="dim"))
        sl.focus()

    def on_key(self, event) -> None:
        if event.key == "enter" and len(self.query_one(SelectionList).selected) >= 2:
            event.stop()
            self.action_compare()

    def action_compare(self) -> None:
        chosen = list(self.query_one(SelectionList).selected)
        if len(chosen) < 2:
            self.notify("Check two or more runs (space) to compare them.", severity="warning")
            return
        self.app.push_screen(CompareScreen([Path(d) for d in chosen]))


class CompareScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="compare.back")]

    class Loaded(Message):
        def __init__(self, runs: list, error: Optional[str]) -> None:
            super().__init__()
            self.runs, self.error = runs, error

    def __init__(self, run_dirs: list[Path]) -> None:
        super().__init__()
        self.run_dirs = [Path(d) for d in run_dirs]
        self.runs: list = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Grid(id="compare-charts"):
            yield LineChart("train loss (smoothed)", smooth=0.8, id="cmp-loss")
            yield LineChart("val loss", id="cmp-val")
            yield LineChart("accuracy, TTT step 0 (train smoothed; val ●)", y_range=(0.0, 1.0), smooth=0.8, id="cmp-acc")
            yield LineChart("acceptance length (val estimate; measured)", id="cmp-accept")
        with Vertical(id="compare-tables"):
            yield DataTable(id="cmp-runs", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="cmp-diff", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "compare " + " · ".join(d.name for d in self.run_dirs)
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-load")
    def load(self) -> None:
        from speculators_core import load_run_curves

        try:
            runs = [load_run_curves(d) for d in self.run_dirs]
        except Exception as exc:  # a run's files unreadable: say so, keep the app
            self.post_message(self.Loaded([], f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(self.Loaded(runs, None))

    def on_compare_screen_loaded(self, event: "CompareScreen.Loaded") -> None:
        if event.error:
            self.notify(f"Could not read the runs: {event.error}", severity="error", timeout=15)
            return
        self.runs = event.runs
        self.show()

    def show(self) -> None:
        from speculators_core import config_diff

        runs = self.runs
        col = lambda i: RUN_COLOURS[i % len(RUN_COLOURS)]  # noqa: E731
        self.query_one("#cmp-loss", LineChart).set_series([(tag(i), r.train_loss, col(i)) for i, r in enumerate(runs)])
        self.query_one("#cmp-val", LineChart).set_series([(tag(i), r.val_loss, col(i)) for i, r in enumerate(runs)])
        acc = [(tag(i), r.train_acc0, col(i)) for i, r in enumerate(runs)]
        acc += [(f"{tag(i)} val", r.val_acc0, col(i)) for i, r in enumerate(runs) if r.val_acc0]
        self.query_one("#cmp-acc", LineChart).set_series(acc)
        accept = [(f"{tag(i)} est.", r.val_acceptance, col(i)) for i, r in enumerate(runs)]
        accept += [(f"{tag(i)} measured", r.eval_acceptance, col(i)) for i, r in enumerate(runs) if r.eval_acceptance]
        self.query_one("#cmp-accept", LineChart).set_series(accept)

        table = self.query_one("#cmp-runs", DataTable)
        table.clear(columns=True)
        table.add_columns("", "run", "status", "steps", "best val loss", "accept (measured)", "accept (val est.)")
        for i, r in enumerate(runs):
            table.add_row(Text(tag(i), style=f"bold {col(i)}"), r.name, r.status, str(r.steps or "-"),
                          "-" if r.best_val_loss is None else f"{r.best_val_loss:.4f}",
                          "-" if r.measured_acceptance is None else f"{r.measured_acceptance:.2f}",
                          "-" if r.final_acceptance is None else f"{r.final_acceptance:.2f}")
        diff = self.query_one("#cmp-diff", DataTable)
        diff.clear(columns=True)
        rows = config_diff(runs)
        diff.add_columns("config difference", *(tag(i) for i in range(len(runs))))
        if not rows:
            diff.add_row(Text("the configurations are the same", style="dim"), *("" for _ in runs))
        for key, vals in rows:
            diff.add_row(key, *vals)
