"""Command palette entries for the app's main actions (shown with ctrl+p)."""

from __future__ import annotations

from typing import Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider


class ActionsProvider(Provider):
    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        from speculators_core import list_presets
        from speculators_tui.screens.dashboard import DashboardScreen
        from speculators_tui.screens.review import ReviewScreen
        from speculators_tui.screens.step_gpus import GpuStep

        app = self.app
        screen = self.screen
        out: list[tuple[str, Callable[[], object], str]] = []
        if isinstance(screen, ReviewScreen):
            out += [("Launch the run", screen.action_launch, "start it in the background and open its dashboard"),
                    ("Save as preset", screen.action_save_preset, "a TOML file in your presets directory"),
                    ("Export script", screen.action_export, "the equivalent bash script"),
                    ("Copy script to clipboard", screen.action_copy, "OSC 52, where the terminal allows"),
                    ("Pre-flight check (doctor)", screen.action_doctor, "target, layer ids, vLLM, chat template, disk")]
        if isinstance(screen, GpuStep):
            out += [("Apply suggested GPU split", screen.action_suggest, "the engine's server/training split"),
                    ("Run on the CPU", screen.action_cpu, "no GPU: server and training on the CPU")]
        if isinstance(screen, DashboardScreen):
            if screen.check_action("stop", ()):  # not once the run has ended or is being stopped
                out.append(("Stop the run", screen.action_stop, "asks first"))
            out.append(("Detach from the run", screen.action_detach, "the run keeps going"))
            if screen.watcher.serve_command(screen.checkpoint_dir):
                out.append(("Copy the serve command", screen.action_copy_serve, "OSC 52, where the terminal allows"))
            if screen.watcher.warning and screen.watcher.warning.get("fix_config"):
                out.append(("Apply the suggested fix to the next run", screen.action_apply_fix, "opens the wizard"))
        out.append(("New configuration", app.action_new_config, "the wizard from the defaults"))  # type: ignore[attr-defined]
        for p in list_presets():
            mark = " (yours, shadows the built-in)" if p.shadows else ""
            out.append((f"Open preset: {p.name}{mark}", lambda p=p: app.open_preset(p),  # type: ignore[attr-defined]
                        p.description() or str(p.path)))
        out.append(("Show the loss mask of prepared data...", app.open_mask_view,  # type: ignore[attr-defined]
                    "a prepared row's tokens with the trained ones highlighted"))
        out.append(("Compare runs...", app.open_compare,  # type: ignore[attr-defined]
                    "overlaid loss/accuracy/acceptance curves and the config difference"))
        out.append(("Open run directory...", app.open_run_directory,  # type: ignore[attr-defined]
                    "the dashboard of any run directory (it joins the run history)"))
        for rd in app.recent_runs()[:10]:  # type: ignore[attr-defined]
            out.append((f"Attach to run: {rd.name}", lambda rd=rd: app.open_dashboard(rd), str(rd)))  # type: ignore[attr-defined]
        from speculators_core import load_notify_settings

        on = load_notify_settings().enabled
        out.append((f"Notifications: turn {'off' if on else 'on'}", app.toggle_notifications,  # type: ignore[attr-defined]
                    "terminal bell and desktop notice when a watched run ends, fails, warns or stalls"))
        out += [("Show keys (help)", app.action_help, "every key of every screen"),  # type: ignore[attr-defined]
                ("Toggle dark/light theme", app.action_toggle_theme, "")]  # type: ignore[attr-defined]
        return out

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
