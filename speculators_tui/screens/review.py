"""Wizard step 4: the whole configuration next to the exact shell commands; save, export, launch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Header, Static

from speculators_core import RunConfig, dumps_config, plan_run
from speculators_tui.dialogs.confirm import ConfirmDialog
from speculators_tui.dialogs.prompt import PromptDialog
from speculators_tui.screens.wizard import step_bar
from speculators_tui.widgets.app_footer import AppFooter
from speculators_tui.widgets.doctor_panel import DoctorPanel


class ReviewScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="review.back"),  # first: the footer never cuts it
        Binding("ctrl+s", "save_preset", "Save", id="review.save"),
        Binding("ctrl+e", "export", "Export", id="review.export"),
        Binding("ctrl+y", "copy", "Copy", id="review.copy"),
        Binding("ctrl+r", "launch", "Launch", id="review.launch"),
        Binding("ctrl+d", "doctor", "Pre-flight", id="review.doctor"),
        Binding("ctrl+l", "loss_mask", "Mask", id="review.mask"),
    ]

    class Launched(Message):
        def __init__(self, run_dir: Optional[Path], error: Optional[str]) -> None:
            super().__init__()
            self.run_dir, self.error = run_dir, error

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(step_bar(3), id="step-bar")
        with Horizontal(id="review-panes"):
            with VerticalScroll(id="config-pane"):
                yield Static(id="config-text")
            with VerticalScroll(id="script-pane"):
                yield Static(id="script-text")
        yield Static("", id="problems")
        yield DoctorPanel(id="doctor")
        yield Static("", id="summary")
        with Horizontal(id="nav"):
            yield Button("‹ Back", id="back", compact=True)
            yield Button("Save preset", id="save", compact=True)
            yield Button("Export", id="export", compact=True)
            yield Button("Copy", id="copy", compact=True)
            yield Static("", id="nav-note")
            yield Button("Launch ▶", id="launch", variant="success", compact=True)
        yield AppFooter()

    @property
    def cfg(self) -> RunConfig:
        return self.app.config  # type: ignore[attr-defined]

    def on_mount(self) -> None:
        self.sub_title = "step 4 of 4: Review"
        self.query_one("#config-pane").border_title = "run configuration (TOML)"
        self.query_one("#script-pane").border_title = "equivalent shell script"
        self.refresh_view()

    def on_screen_resume(self) -> None:
        self.refresh_view()

    def on_resize(self) -> None:
        self.query_one("#review-panes").set_class(self.size.width < 110, "stacked")

    def refresh_view(self) -> None:
        target = self.app.target  # type: ignore[attr-defined]
        self.query_one("#config-text", Static).update(
            Syntax(dumps_config(self.cfg, include_defaults=True), "toml", theme="ansi_dark", word_wrap=True))
        from speculators_core import gpu_memory_map

        self.plan = plan_run(self.cfg, target, source=self.app.config_source, load_target=False,  # type: ignore[attr-defined]
                             gpu_memory=gpu_memory_map(self.cfg, getattr(self.app, "gpu_result", None)))
        self.script = self.plan.script
        self.slurm = self.cfg.cluster.multi_node
        if self.slurm:  # several nodes: the sbatch script (what `export --format slurm` writes; it needs no
            # rendezvous endpoint, which launching here does)
            from speculators_core import render_slurm

            try:
                self.script = render_slurm(self.cfg, target, self.app.config_source)  # type: ignore[attr-defined]
            except (ValueError, ArithmeticError) as exc:  # validate's problems say why
                self.script, self.plan.error = None, self.plan.error or exc
        self.query_one("#script-pane").border_title = ("equivalent sbatch script (Slurm, "
                                                       f"{self.cfg.cluster.nodes} nodes)" if self.slurm
                                                       else "equivalent shell script")
        self.query_one("#script-text", Static).update(
            Syntax(self.script, "bash", theme="ansi_dark", word_wrap=True) if self.script
            else Text(f"cannot build the commands: {self.plan.error}", style="red"))
        self.errors = self.plan.errors
        warnings = self.plan.warnings
        text = Text()
        for p in self.errors + warnings:
            if len(text):
                text.append("\n")
            text.append(("✗ " if p.severity == "error" else "⚠ ") + str(p),
                        style="red" if p.severity == "error" else "yellow")
        problems = self.query_one("#problems", Static)
        problems.update(text)
        problems.display = bool(text.plain)
        self.query_one("#summary", Static).update(self.summary())
        blocked = bool(self.errors) or self.script is None or self.plan.script is None  # launch: this machine's
        self.query_one("#launch", Button).disabled = blocked
        self.query_one("#export", Button).disabled = self.script is None
        self.query_one("#copy", Button).disabled = self.script is None
        only_local = bool(self.errors) and all(p.local for p in self.errors)
        note = ("missing on this machine: Launch is off, Export works" if only_local else
                f"{len(self.errors)} error(s): go back to fix them" if self.errors else "")
        if not note and self.slurm and self.script is not None and self.plan.script is None:
            note = "a cluster run: export the sbatch script (Launch is for this machine)"
        self.query_one("#nav-note", Static).update(Text(note, style="red" if self.errors else "yellow"))
        self.refresh_bindings()

    def summary(self) -> Text:
        stages = self.plan.stages
        if stages is None:
            return Text("")
        names = " → ".join(s.name for s in stages)
        text = Text(f"→ {names}; run directory {os.path.join(self.cfg.run.dir, self.cfg.run.name)}-<time>/ "
                    f"(launch starts it in the background: leaving the app does not stop it)")
        for line in self._memory_lines():
            text.append(f"\n{line}", style="bold red" if "DOES NOT FIT" in line else "dim")
        return text

    def _memory_lines(self) -> list[str]:
        """The predicted memory per GPU (memory_fit) beside each assigned GPU's memory."""
        from speculators_core import gpu_memory_map, run_memory

        target = self.app.target  # type: ignore[attr-defined]
        gpu_memory = gpu_memory_map(self.cfg, getattr(self.app, "gpu_result", None))
        if target is None or not gpu_memory:
            return []
        rm = run_memory(self.cfg, target, gpu_memory)
        return ["memory: " + line for line in rm.lines()] if rm is not None and rm.fits else []

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "launch" and (getattr(self, "errors", None) or getattr(self, "script", None) is None
                                   or getattr(getattr(self, "plan", None), "script", None) is None):
            return None
        if action in ("export", "copy") and getattr(self, "script", None) is None:
            return None
        return True

    # -- actions -----------------------------------------------------------------------------------
    def action_doctor(self) -> None:
        """The pre-flight check (speculators-tui doctor) of this configuration, in the panel."""
        self.query_one(DoctorPanel).run(dumps_config(self.cfg, include_defaults=True))

    def action_loss_mask(self) -> None:
        self.app.open_mask_view(Path(os.path.expanduser(self.cfg.data.output)))  # type: ignore[attr-defined]

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_save_preset(self) -> None:
        def check(name: str) -> Optional[str]:
            if "/" in name or name.startswith(".") or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
                return "use letters, digits, '-', '_' and '.'"
            return None

        def save(name: str) -> None:
            from speculators_core import save_user_preset

            from speculators_tui.data.fields import get_value
            from speculators_tui.data.portable import absolute_paths, describe_changes

            # The preset is opened from anywhere later: its relative paths are resolved against
            # the directory they refer to now (the working directory).
            portable, changed = absolute_paths(self.cfg, Path.cwd())
            try:
                path = save_user_preset(portable, name)
            except (OSError, ValueError) as exc:
                self.notify(f"Could not save the preset: {exc}", severity="error")
                return
            self.app.config_source = str(path)  # type: ignore[attr-defined]
            note = (f"\nRelative paths saved as absolute ones (the preset works from any directory): "
                    f"{describe_changes(changed, self.cfg, portable, get_value)}" if changed else "")
            self.notify(f"Saved preset {name!r} to {path}{note}", timeout=10 if changed else 5)

        def done(name: Optional[str]) -> None:
            if not name:
                return
            from speculators_core import list_presets

            same = [p for p in list_presets() if p.name == name]
            mine = next((p for p in same if not p.builtin), None)
            question = None
            if any(p.builtin for p in same):
                question = (f"[b]{name}[/b] is a built-in preset. Saving under this name makes your "
                            f"configuration shadow it: `speculators-tui run {name}` (and opening "
                            f"{name} by name) will use yours, until you delete or rename it. The built-in "
                            "stays listed.\n\nSave and shadow the built-in?")
            elif mine is not None:
                question = f"You already have a preset named [b]{name}[/b]. Replace it ({mine.path})?"
            if question is None:
                save(name)
                return
            self.app.push_screen(ConfirmDialog(question, yes="Save", no="Cancel"),
                                 lambda yes: save(name) if yes else None)

        self.app.push_screen(PromptDialog("Save this configuration as a user preset named:",
                                          self.cfg.run.name, ok="Save", check=check), done)

    def action_export(self) -> None:
        if self.script is None:
            return

        def check(path: str) -> Optional[str]:
            p = Path(os.path.expanduser(path))
            if p.is_dir():
                return f"{p} is a directory; give a file name"
            if not p.parent.exists():
                return f"the directory {p.parent} does not exist"
            return None

        def done(path: Optional[str]) -> None:
            if not path:
                return
            from speculators_core import atomic_write_text

            try:
                out = atomic_write_text(Path(os.path.expanduser(path)), self.script)
                out.chmod(0o755)
            except OSError as exc:
                self.notify(f"Could not write the script: {exc}", severity="error")
                return
            self.notify(f"Wrote {out}")

        self.app.push_screen(PromptDialog("Export the shell script to the file:",
                                          f"./{self.cfg.run.name}.{'sbatch' if self.slurm else 'sh'}",
                                          ok="Export", check=check), done)

    def action_copy(self) -> None:
        if self.script is None:
            return
        self.app.copy_to_clipboard(self.script)
        self.notify("Script sent to the clipboard (OSC 52; works where the terminal allows it).")

    def action_launch(self) -> None:
        if self.errors or self.script is None or self.plan.script is None:
            self.notify("Fix the errors first.", severity="warning")
            return
        self.query_one("#launch", Button).disabled = True
        self.notify("Launching the run…")
        self.launch(self.cfg.copy(), self.app.config_source)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group="launch")
    def launch(self, cfg: RunConfig, source: str) -> None:
        try:
            run_dir = self.app.start_run(cfg, source)  # type: ignore[attr-defined]
        except Exception as exc:  # shown to the user; the run did not start
            self.post_message(self.Launched(None, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(self.Launched(Path(run_dir), None))

    def on_review_screen_launched(self, event: "ReviewScreen.Launched") -> None:
        if event.error or event.run_dir is None:
            self.notify(f"Launch failed: {event.error}", severity="error", timeout=15)
            self.refresh_view()
            return
        self.app.open_dashboard(event.run_dir, replace_wizard=True)  # type: ignore[attr-defined]

    def on_button_pressed(self, event: Button.Pressed) -> None:
        action = {"back": self.action_back, "save": self.action_save_preset, "export": self.action_export,
                  "copy": self.action_copy, "launch": self.action_launch}.get(event.button.id or "")
        if action:
            event.stop()
            action()
