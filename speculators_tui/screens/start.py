"""The first screen: start a new configuration, from a preset, or re-attach to a recent run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Header, OptionList, Static
from textual.widgets.option_list import Option

from speculators_tui.widgets.app_footer import AppFooter

STATUS_STYLE = {"running": "bold yellow", "starting": "yellow", "completed": "green", "failed": "red",
                "stopped": "dim", "interrupted": "bold red"}


def _ago(t) -> str:
    if not isinstance(t, (int, float)):
        return ""
    d = max(0, time.time() - t)
    if d < 3600:
        return f"{int(d // 60)} min ago"
    if d < 86400:
        return f"{d / 3600:.0f} h ago"
    return time.strftime("%Y-%m-%d", time.localtime(t))


def run_label(e) -> Text:
    """A run-history entry: name, status, best val loss, acceptance (measured, else estimated), where, when."""
    status = e.status
    text = Text.assemble(("  " + e.name, "bold"), "  ", (status, STATUS_STYLE.get(status, "")))
    if e.best_val_loss is not None:
        text.append(f"  val {e.best_val_loss:.4g}")
    if e.acceptance_length is not None:
        text.append(f"  accept {e.acceptance_length:.2f}", style="green")
    elif e.val_acceptance_length is not None:
        text.append(f"  accept≈{e.val_acceptance_length:.2f}", style="dim green")
    text.append(f"  {_ago(e.started)}", style="dim")
    text.append(f"  {short_dir(Path(e.dir).parent)}", style="dim")
    return text


def short_dir(p: Path) -> str:
    """`…/<parent>/<dir>` (the highlighted run's help line shows the whole path)."""
    parts = p.parts
    return str(p) if len(parts) <= 3 else "…/" + "/".join(parts[-2:])


class StartScreen(Screen):
    BINDINGS = [
        Binding("n", "new", "New config", id="start.new"),
        Binding("r", "reload", "Refresh", id="start.reload"),
        Binding("c", "compare", "Compare runs", id="start.compare"),
        Binding("d", "delete_preset", "Delete preset", id="start.delete"),
        Binding("m", "rename_preset", "Rename preset", id="start.rename"),
        Binding("q", "app.quit", "Quit", id="start.quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text.assemble(("speculators-tui", "bold"), ": train an EAGLE-3 drafter for vLLM. "
                                   "Pick a preset, a recent run, or start from scratch."), id="intro")
        yield OptionList(id="choices")
        yield Static("", id="choice-help")
        yield AppFooter()

    def on_mount(self) -> None:
        self.sub_title = "start"
        self.fill()
        self.query_one(OptionList).focus()

    def on_screen_resume(self) -> None:
        self.fill()

    def fill(self) -> None:
        from speculators_core import list_presets

        ol = self.query_one("#choices", OptionList)
        highlighted = ol.highlighted
        ol.clear_options()
        ol.add_option(Option(Text.assemble(("＋ ", "bold green"), "New configuration")))
        self.targets_list: list[tuple[str, object]] = [("new", None)]
        presets = list_presets()
        for kind, title in ((True, "Built-in presets"), (False, "Your presets")):
            group = [p for p in presets if p.builtin is kind]
            if not group:
                continue
            ol.add_option(Option(Text(title, style="bold underline"), disabled=True))
            self.targets_list.append(("", None))
            for p in group:
                note = ("  (yours: shadows the built-in of this name)", "yellow") if p.shadows else ""
                ol.add_option(Option(Text.assemble(("  " + p.name, "bold"), note, "  ", (p.description(), "dim"))))
                self.targets_list.append(("preset", p))
        runs = self.app.recent_entries()  # type: ignore[attr-defined]  # the run history: any directory
        ol.add_option(Option(Text("Recent runs (re-attach)", style="bold underline"), disabled=True))
        self.targets_list.append(("", None))
        if not runs:
            ol.add_option(Option(Text("  none yet", style="dim"), disabled=True))
            self.targets_list.append(("", None))
        for e in runs[:12]:
            ol.add_option(Option(run_label(e)))
            self.targets_list.append(("run", Path(e.dir)))
        if highlighted is not None and highlighted < ol.option_count:
            ol.highlighted = highlighted
        else:
            ol.highlighted = 0  # "New configuration": Enter on a fresh start screen starts the wizard

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        kind, obj = self.targets_list[event.option_index] if event.option_index < len(self.targets_list) else ("", None)
        help_text = {
            "new": "Start from the defaults and fill every step of the wizard.",
            "preset": f"Open the wizard with this preset ({getattr(obj, 'path', '')})."
                      + ("" if getattr(obj, "builtin", True) else "  d delete · m rename"),
            "run": f"Open the dashboard of {obj} (the run keeps going when you leave).",
        }.get(kind, "")
        self.query_one("#choice-help", Static).update(Text(help_text, style="dim"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        kind, obj = self.targets_list[event.option_index]
        if kind == "new":
            self.action_new()
        elif kind == "preset":
            from speculators_core import ConfigError

            try:
                cfg = obj.load()  # type: ignore[union-attr]
            except ConfigError as exc:
                self.notify(str(exc), severity="error", timeout=15)
                return
            self.app.open_wizard(cfg, str(obj.path))  # type: ignore[attr-defined,union-attr]
        elif kind == "run":
            self.app.open_dashboard(Path(obj))  # type: ignore[attr-defined,arg-type]

    def action_new(self) -> None:
        from speculators_core import RunConfig

        self.app.open_wizard(RunConfig(), "")  # type: ignore[attr-defined]

    def action_compare(self) -> None:
        self.app.open_compare()  # type: ignore[attr-defined]

    def action_reload(self) -> None:
        self.fill()

    # -- user presets ------------------------------------------------------------------------------
    def _highlighted_user_preset(self, verb: str):
        """The highlighted preset if it is the user's; else a notice why not, and None."""
        ol = self.query_one("#choices", OptionList)
        i = ol.highlighted
        kind, obj = self.targets_list[i] if i is not None and i < len(self.targets_list) else ("", None)
        if kind != "preset":
            self.notify(f"Highlight one of your presets to {verb} it.", severity="warning")
            return None
        if obj.builtin:  # type: ignore[union-attr]
            self.notify(f"{obj.name} is a built-in preset: it cannot be {verb}d. Open it and save a copy "  # type: ignore[union-attr]
                        "under another name to change it.", severity="warning", timeout=8)
            return None
        return obj

    def action_delete_preset(self) -> None:
        preset = self._highlighted_user_preset("delete")
        if preset is None:
            return
        from speculators_tui.dialogs.confirm import ConfirmDialog

        after = (f" The built-in {preset.name} is used again by name." if preset.shadows else "")

        def done(yes: Optional[bool]) -> None:
            if not yes:
                return
            try:
                preset.delete()
            except (OSError, ValueError) as exc:
                self.notify(f"Could not delete the preset: {exc}", severity="error")
                return
            self.notify(f"Deleted preset {preset.name!r}")
            self.fill()

        self.app.push_screen(ConfirmDialog(f"Delete your preset [b]{preset.name}[/b]? Its file "
                                           f"({preset.path.name}, in your presets directory) is removed; runs started from it are not affected.{after}",
                                           yes="Delete", no="Keep"), done)

    def action_rename_preset(self) -> None:
        preset = self._highlighted_user_preset("rename")
        if preset is None:
            return
        from speculators_tui.dialogs.prompt import PromptDialog

        def done(name: Optional[str]) -> None:
            if not name or name == preset.name:
                return
            try:
                new = preset.rename(name)
            except (OSError, ValueError) as exc:
                self.notify(f"Could not rename the preset: {exc}", severity="error")
                return
            self.notify(f"Renamed {preset.name!r} to {new.name!r}")
            self.fill()

        self.app.push_screen(PromptDialog(f"Rename your preset {preset.name} to:", preset.name, ok="Rename",
                                          check=lambda n: None if n == preset.name else preset.rename_problem(n)),
                             done)
