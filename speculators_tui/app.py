"""The Textual app: start screen -> wizard -> review -> dashboard (a thin client of speculators_core).

Nothing here imports torch, transformers or datasets: the engine's heavy parts run in the
processes the supervisor starts, and the app reads their files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

from textual import on
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from speculators_core import ConfigError, RunConfig
from speculators_tui.commands import ActionsProvider
from speculators_tui.screens.start import StartScreen


def default_gpu_probe():
    from speculators_core import probe_gpus

    return probe_gpus()


def default_start_run(cfg: RunConfig, source: str) -> Path:
    from speculators_core import start_detached

    return Path(start_detached(cfg, source or None, None))


def default_stop_run(run_dir: Path) -> None:
    from speculators_core import stop_run

    stop_run(run_dir)


class SpeculatorsApp(App[int]):
    CSS_PATH = Path(__file__).resolve().parent / "app.tcss"  # absolute: subclasses live elsewhere
    TITLE = "speculators-tui"
    COMMANDS = App.COMMANDS | {ActionsProvider}
    BINDINGS = [
        Binding("question_mark,f1", "help", "Help", id="app.help"),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False, id="app.theme"),
    ]

    def __init__(
        self,
        run_dir: Optional[Path] = None,
        config_path: Optional[Path] = None,
        gpu_probe: Optional[Callable[[], object]] = None,
        runs_dirs: Optional[list[Path]] = None,
        start_run: Optional[Callable[[RunConfig, str], Path]] = None,
        stop_run: Optional[Callable[[Path], None]] = None,
    ) -> None:
        super().__init__()
        self.initial_run_dir = Path(run_dir) if run_dir else None
        self.initial_config = Path(config_path) if config_path else None
        #: Returns a `speculators_core.gpu.GpuProbe` (tests pass made-up GPU lists).
        self.gpu_probe = gpu_probe or default_gpu_probe
        self.gpu_result = None
        self.runs_dirs = [Path(p) for p in runs_dirs] if runs_dirs is not None else None
        self._start_run = start_run or default_start_run
        self._stop_run = stop_run or default_stop_run
        self.config = RunConfig()
        self.config_source = ""
        self.target = None
        self.target_why: Optional[str] = None
        self.dashboard_only = False

    def on_mount(self) -> None:
        if any(isinstance(s, StartScreen) for s in self.screen_stack):
            return  # mounted once already (a subclass's on_mount calling super())
        from speculators_tui.data.settings import load_settings

        theme = load_settings().get("theme")
        if isinstance(theme, str) and theme in self.available_themes:
            self.theme = theme
        self._saved_theme = self.theme
        # ctrl+t and the palette's "Change theme" both land here: the choice is kept for next time.
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.push_screen(StartScreen())
        if self.initial_run_dir is not None:
            self.dashboard_only = True
            self.open_dashboard(self.initial_run_dir)
        elif self.initial_config is not None:
            from speculators_core import find_preset

            try:
                self.open_preset(find_preset(str(self.initial_config)))
            except (FileNotFoundError, ConfigError) as exc:
                self.notify(str(exc), severity="error", timeout=20)

    # -- runs --------------------------------------------------------------------------------------
    def config_edited(self) -> bool:
        """True when the wizard's config differs from what it was opened with."""
        from speculators_core import config_to_dict

        return config_to_dict(self.config) != getattr(self, "opened_config", None)

    def start_run(self, cfg: RunConfig, source: str) -> Path:
        """Called from a worker thread: start the run detached, return its directory."""
        return self._start_run(cfg, source)

    def stop_run(self, run_dir: Path) -> None:
        self._stop_run(run_dir)

    def run_parents(self) -> list[Path]:
        if self.runs_dirs is not None:
            return self.runs_dirs
        from speculators_core import list_presets

        parents = [Path("runs"), Path(self.config.run.dir)]
        for p in list_presets():
            try:
                parents.append(Path(p.load().run.dir))
            except ConfigError:
                continue
        return parents

    def recent_runs(self) -> list[Path]:
        return [Path(e.dir) for e in self.recent_entries()]

    def recent_entries(self) -> list:
        """Runs of the run history (runs/index.py: any working directory), plus runs found under the
        run parents that are not in it yet (they are registered now): `RunEntry`s, newest first."""
        from speculators_core import list_run_history, list_runs, register_run, summarize_run

        seen = {Path(e.dir).resolve(): e for e in list_run_history()}
        for parent in self.run_parents():
            for rd in list_runs(Path(os.path.expanduser(str(parent)))):
                key = rd.resolve()
                if key not in seen:
                    register_run(rd)
                    seen[key] = summarize_run(rd)
        return sorted(seen.values(), key=lambda e: (e.started or 0.0, e.name), reverse=True)

    def open_compare(self, run_dirs: Optional[list[Path]] = None) -> None:
        """The compare screen of `run_dirs`, or the picker of runs from the run history."""
        from speculators_tui.screens.compare import ComparePicker, CompareScreen

        self.push_screen(CompareScreen(run_dirs) if run_dirs else ComparePicker())

    def open_mask_view(self, data_dir: Optional[Path] = None) -> None:
        """The loss-mask view of prepared data (`data_dir`; else ask, defaulting to data.output)."""
        from speculators_tui.screens.mask_view import MaskViewScreen

        def prepared(p: Path) -> Optional[str]:
            if not (p / "state.json").exists():
                return (f"{p} holds no prepared data yet: launch the run (prepare comes first) or run "
                        f"python -m speculators_core.prepare; the pre-flight check (ctrl+d on the review "
                        f"screen) already checks the mask of one chat")
            return None

        if data_dir is not None:
            why = prepared(Path(data_dir))
            if why:
                self.notify(why, severity="warning", timeout=12)
                return
            self.push_screen(MaskViewScreen(Path(data_dir)))
            return
        from speculators_tui.dialogs.prompt import PromptDialog

        def done(text: Optional[str]) -> None:
            if text:
                self.push_screen(MaskViewScreen(Path(os.path.expanduser(text))))

        self.push_screen(PromptDialog("Prepared data directory (data.output):", self.config.data.output, ok="Show",
                                      check=lambda t: prepared(Path(os.path.expanduser(t)))), done)

    def toggle_notifications(self) -> None:
        """Turn the bell and desktop notifications on or off (saved in <config>/notify.toml)."""
        import os as _os

        from speculators_core import NotifySettings, load_notify_settings, save_notify_settings

        cur = load_notify_settings(environ={})  # the file's setting (the environment may override it)
        new = NotifySettings(bell=not cur.enabled, desktop=not cur.enabled, stall_factor=cur.stall_factor)
        path = save_notify_settings(new)
        env = _os.environ.get("SPECULATORS_TUI_NOTIFY")
        note = f" (but SPECULATORS_TUI_NOTIFY={env} overrides it in this session)" if env is not None else ""
        self.notify(f"Notifications {'on' if new.enabled else 'off'}: saved in {path}{note}")
        from speculators_tui.screens.dashboard import DashboardScreen

        for screen in self.screen_stack:
            if isinstance(screen, DashboardScreen):
                screen.attention.settings = load_notify_settings()

    def open_run_directory(self) -> None:
        """Ask for a run directory (any path) and open its dashboard; it joins the run history."""
        from speculators_tui.dialogs.prompt import PromptDialog

        def check(text: str) -> Optional[str]:
            p = Path(os.path.expanduser(text))
            if not p.is_dir():
                return f"{p} is not a directory"
            if not (p / "state.json").exists():
                return f"{p} is not a run directory (no state.json): give a <run.dir>/<name>-<time> directory"
            return None

        def done(text: Optional[str]) -> None:
            if text:
                from speculators_core import register_run

                rd = Path(os.path.expanduser(text)).resolve()
                register_run(rd)
                self.open_dashboard(rd)

        self.push_screen(PromptDialog("Open the run directory:", str(Path.cwd()) + os.sep, ok="Open", check=check), done)

    # -- navigation --------------------------------------------------------------------------------
    def _pop_to_start(self) -> None:
        while len(self.screen_stack) > 2 and not isinstance(self.screen, StartScreen):
            self.pop_screen()

    def open_preset(self, preset) -> None:
        try:
            cfg = preset.load()
        except ConfigError as exc:
            self.notify(str(exc), severity="error", timeout=20)
            return
        self.open_wizard(cfg, str(preset.path))

    def open_wizard(self, cfg: RunConfig, source: str, step: int = 0, target: Optional[tuple] = None) -> None:
        """`target`: (TargetInfo or None, why) when the caller has loaded it already (in a worker)."""
        from speculators_core import try_load_target
        from speculators_tui.screens.review import ReviewScreen
        from speculators_tui.screens.step_gpus import GpuStep
        from speculators_tui.screens.step_model import ModelStep
        from speculators_tui.screens.step_training import TrainingStep

        self._pop_to_start()
        self.config, self.config_source = cfg, source
        from speculators_core import config_to_dict

        #: What the wizard opened with: "Back" on its first step asks before discarding a change.
        self.opened_config = config_to_dict(cfg)
        if target is not None:
            self.target, self.target_why = target
        else:
            self.target, self.target_why = try_load_target(cfg.model.target) if cfg.model.target else (None, None)
        self.dashboard_only = False
        for cls in (ModelStep, GpuStep, TrainingStep, ReviewScreen)[: step + 1]:
            self.push_screen(cls())

    def open_dashboard(self, run_dir: Path, replace_wizard: bool = False) -> None:
        from speculators_tui.screens.dashboard import DashboardScreen

        if replace_wizard or not self.dashboard_only:
            self._pop_to_start()
        self.push_screen(DashboardScreen(Path(run_dir)))

    def detach_dashboard(self) -> None:
        if self.dashboard_only:
            self.exit(0)
        else:
            self._pop_to_start()

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        """Every worker runs with exit_on_error=False: an error becomes a visible notice, not a crash."""
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            self.notify(f"{event.worker.group or event.worker.name}: {type(err).__name__}: {err}",
                        title="Background task failed", severity="error", timeout=20)

    # -- actions -----------------------------------------------------------------------------------
    def action_new_config(self) -> None:
        self.open_wizard(RunConfig(), "")

    def action_help(self) -> None:
        from speculators_tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def _remember_theme(self, theme) -> None:
        if theme.name == getattr(self, "_saved_theme", None):
            return
        from speculators_tui.data.settings import save_setting

        try:
            save_setting("theme", theme.name)
            self._saved_theme = theme.name
        except OSError as exc:
            self.notify(f"Could not remember the theme: {exc}", severity="warning")


def run_app(run_dir: Optional[Path] = None, config_path: Optional[Path] = None) -> int:
    """Open the app (on the dashboard of `run_dir`, or the wizard for `config_path`); exit status."""
    app = SpeculatorsApp(run_dir=run_dir, config_path=config_path)
    result = app.run()
    return int(result or 0) if app.return_code in (None, 0) else int(app.return_code or 1)
