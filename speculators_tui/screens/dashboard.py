"""The dashboard of a running or finished run, read entirely from its run directory.

Closing it (detach) leaves the run going; only "stop" (with a confirmation) ends it, through the
supervisor. Files are polled by one thread worker; the next poll is scheduled only after the last
one was shown, so a slow disk never piles up work.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static, TabbedContent, TabPane

from speculators_tui.data.attention import Attention
from speculators_tui.data.run_watch import RunWatcher
from speculators_tui.dialogs.confirm import ConfirmDialog
from speculators_tui.widgets.app_footer import AppFooter
from speculators_tui.widgets.chart_controls import ChartView
from speculators_tui.widgets.gpu_panel import GpuPanel
from speculators_tui.widgets.line_chart import LineChart
from speculators_tui.widgets.log_view import LogView
from speculators_tui.widgets.pace_line import PaceLine
from speculators_tui.widgets.quiet_static import QuietStatic
from speculators_tui.widgets.stage_timeline import StageTimeline, duration, timeline

ACC_COLOURS = ("green", "cyan", "magenta", "yellow", "blue", "red", "white", "bright_green")
POLL_S = 1.0
#: The charts are redrawn at most this often while a run goes on (the text lines tick every poll);
#: they are the dashboard's largest repaint, and a curve gains little from a redraw per second.
CHART_S = 2.0
POLL_FINISHED_S = 5.0
LOG_TABS = (("trainer", "Trainer"), ("server", "Server"), ("prepare", "Prepare"), ("generate", "Generate"),
            ("events", "Events"), ("supervisor", "Supervisor"))


def _num(v, fmt: str = "{:.4g}") -> str:
    return "—" if v is None else fmt.format(v)


class DashboardScreen(Screen):
    BINDINGS = [
        Binding("s", "stop", "Stop run", id="dash.stop"),
        Binding("d", "detach", "Detach", id="dash.detach"),
        Binding("f", "apply_fix", "Apply fix", id="dash.fix"),
        Binding("1", "tab('metrics')", "Metrics", show=False, id="dash.tab.metrics"),
        Binding("2", "tab('gpus')", "GPUs", show=False, id="dash.tab.gpus"),
        Binding("3", "tab('logs')", "Logs", show=False, id="dash.tab.logs"),
        Binding("4", "tab('checkpoints')", "Checkpoints", show=False, id="dash.tab.checkpoints"),
        Binding("e", "expand_banner", "Full warning", id="dash.banner"),
        Binding("m", "smoothing", "Smoothing", show=False, id="dash.chart.smooth"),
        Binding("g", "log_loss", "Log-scale loss", show=False, id="dash.chart.log"),
        Binding("z", "zoom", "Zoom to the last N steps", show=False, id="dash.chart.zoom"),
        Binding("comma", "cursor(-1)", "Cursor left", show=False, id="dash.chart.left"),
        Binding("full_stop", "cursor(1)", "Cursor right", show=False, id="dash.chart.right"),
        Binding("c", "cursor_off", "Cursor off", show=False, id="dash.chart.off"),
        Binding("left_square_bracket", "log_tab(-1)", "Prev log", id="dash.log.prev"),
        Binding("right_square_bracket", "log_tab(1)", "Next log", id="dash.log.next"),
        Binding("y", "copy_serve", "Copy serve cmd", id="dash.copy_serve"),
    ]

    class Polled(Message):
        def __init__(self, changed: bool, log_name: Optional[str], log_text: str, error: Optional[str] = None) -> None:
            super().__init__()
            self.changed, self.log_name, self.log_text, self.error = changed, log_name, log_text, error

    class Stopped(Message):
        def __init__(self, error: Optional[str]) -> None:
            super().__init__()
            self.error = error

    class FixReady(Message):
        def __init__(self, cfg, target, why, changes: list[str], step: int, error: Optional[str]) -> None:
            super().__init__()
            self.cfg, self.target, self.why, self.changes, self.step, self.error = cfg, target, why, changes, step, error

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.watcher = RunWatcher(self.run_dir)
        self.checkpoint_dir: Optional[str] = None
        self._shown_checkpoints = 0
        self._shown_evals = 0
        self._stopping = False
        self._timer = None
        #: One poll at a time, one chain of polls: a poll asked for while one is reading (a tab
        #: switch) runs right after it instead of beside it, and replaces the timer that was due.
        self._in_flight = False
        self._poll_again = False
        self._detached = False
        self._last_error: Optional[str] = None
        self._binding_state: tuple = ()
        self.chart_view = ChartView()
        self.banner_expanded = False
        #: "applying…" while the fix is being applied, then the keys it changed.
        self.fix_note: Optional[str] = None
        self.attention = Attention(self.run_dir.name)
        self._polled = False  # a poll of the run's files has completed
        self._charts_at = 0.0  # when the charts were last given the watcher's series
        self._charts_stale = True  # the watcher read something the charts have not shown yet
        self.watcher.pace_tracker.stall_factor = self.attention.settings.stall_factor

    def compose(self) -> ComposeResult:
        yield Header()
        yield StageTimeline("", id="timeline")
        yield PaceLine("", id="pace")
        yield QuietStatic("", id="banner")
        with TabbedContent(id="tabs", initial="metrics"):
            with TabPane("Metrics", id="metrics"):
                yield Static("", id="chart-controls")
                with Grid(id="charts"):
                    yield LineChart("loss", smooth=self.chart_view.smooth, id="chart-loss")
                    yield LineChart("accuracy per TTT step (full)", y_range=(0.0, 1.0), smooth=self.chart_view.smooth,
                                    id="chart-acc")
                    yield LineChart("tokens/s", smooth=self.chart_view.smooth, id="chart-tps")
                    yield QuietStatic("", id="stats")
                yield GpuPanel(id="metrics-gpus")
            with TabPane("GPUs", id="gpus"):
                with VerticalScroll(id="gpu-scroll"):
                    yield GpuPanel(id="gpu-panel", detailed=True)
            with TabPane("Logs", id="logs"):
                with TabbedContent(id="log-tabs"):
                    for name, title in LOG_TABS:
                        with TabPane(title, id=f"log-{name}"):
                            yield LogView(id=f"log-view-{name}", max_lines=5000, auto_scroll=True)
            with TabPane("Checkpoints", id="checkpoints"):
                with Vertical():
                    yield DataTable(id="ckpt-table", cursor_type="row")
                    yield Static("", id="serve")
        yield AppFooter()

    def on_mount(self) -> None:
        self.title = "speculators-tui"
        self.sub_title = self.run_dir.name
        self.query_one("#ckpt-table", DataTable).add_columns("epoch", "step", "val loss", "est. accept", "measured",
                                                           "best", "path")
        self.query_one("#banner").display = False
        try:
            from speculators_core import load_run_config as load_config

            self.checkpoint_dir = load_config(self.run_dir).training.checkpoint_dir
        except Exception:  # no or unreadable run.toml: fall back to the checkpoint records' paths
            self.checkpoint_dir = None
        self._schedule(0)

    def on_resize(self) -> None:
        # Tall terminals show the GPU rows under the charts too (80x24 keeps them on their own tab).
        self.query_one("#metrics-gpus").display = self.size.height >= 40
        self._show_chart_controls()
        self._update_banner()

    # -- chart reading aids (state in ChartView; applied to every chart at once) ---------------------
    def _charts(self) -> list[LineChart]:
        return list(self.query(LineChart))

    def _show_chart_controls(self) -> None:
        self.query_one("#chart-controls", Static).update(self.chart_view.guide(self.size.width))

    def _apply_chart_view(self) -> None:
        v = self.chart_view
        for chart in self._charts():
            chart.set_view(smooth=v.smooth, log_y=v.log_loss and chart.id == "chart-loss", last_n=v.last_n,
                           cursor_x=v.cursor_x)
        self._show_chart_controls()

    def action_smoothing(self) -> None:
        self.chart_view.next_smoothing()
        self._apply_chart_view()

    def action_log_loss(self) -> None:
        self.chart_view.log_loss = not self.chart_view.log_loss
        self._apply_chart_view()

    def action_zoom(self) -> None:
        last = self.watcher.train_loss[-1][0] if self.watcher.train_loss else None
        self.chart_view.next_zoom(last)
        self._apply_chart_view()

    def action_cursor(self, direction: int) -> None:
        chart = self.query_one("#chart-loss", LineChart)
        axis = chart._x_axis
        if axis is None:
            return
        x0, x1, cols = axis
        step = max(1.0, round((x1 - x0) / max(1, cols - 1)))
        cur = self.chart_view.cursor_x
        if cur is None:
            cur = x1 if direction < 0 else x0
        else:
            cur = cur + direction * step
        self.chart_view.cursor_x = float(round(min(max(cur, x0), x1)))
        self._apply_chart_view()

    def action_cursor_off(self) -> None:
        self.chart_view.cursor_x = None
        self._apply_chart_view()

    def on_line_chart_hovered(self, event: LineChart.Hovered) -> None:
        if event.x is not None and event.x != self.chart_view.cursor_x:
            self.chart_view.cursor_x = event.x
            self._apply_chart_view()

    def action_expand_banner(self) -> None:
        self.banner_expanded = not self.banner_expanded
        self._update_banner()

    def on_click(self, event) -> None:
        widget = getattr(event, "widget", None)
        if widget is not None and widget.id == "banner":
            self.action_expand_banner()

    def action_log_tab(self, direction: int) -> None:
        tabs = self.query_one("#log-tabs", TabbedContent)
        ids = [f"log-{name}" for name, _ in LOG_TABS]
        i = ids.index(tabs.active) if tabs.active in ids else 0
        tabs.active = ids[(i + direction) % len(ids)]

    def action_copy_serve(self) -> None:
        serve = self.watcher.serve_command(self.checkpoint_dir)
        if not serve:
            self.notify("There is no serve command yet: it needs a finished run with a checkpoint.",
                        severity="warning")
            return
        self.app.copy_to_clipboard(serve)
        self.notify(f"Copied to the clipboard (OSC 52, where the terminal allows it):\n{serve}")

    # -- polling -----------------------------------------------------------------------------------
    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _schedule(self, delay: float) -> None:
        self._stop_timer()
        if delay <= 0:
            self._poll()
        else:
            self._timer = self.set_timer(delay, self._poll)

    def _active_log(self) -> Optional[str]:
        if self.query_one("#tabs", TabbedContent).active != "logs":
            return None
        active = self.query_one("#log-tabs", TabbedContent).active or "log-trainer"
        return active.removeprefix("log-")

    def _poll(self) -> None:
        if self._detached:
            return
        self._stop_timer()  # a poll now replaces the one that was due
        if self._in_flight:
            self._poll_again = True
            return
        self._in_flight = True
        self.poll_files(self._active_log())

    @work(thread=True, exit_on_error=False, group="dashboard-poll")
    def poll_files(self, log_name: Optional[str]) -> None:
        try:
            changed = self.watcher.poll()
            text = self.watcher.read_log(log_name) if log_name else ""
        except Exception as exc:  # keep polling: a bad read now may be fine next time
            self.post_message(self.Polled(False, None, "", f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(self.Polled(changed, log_name, text))

    def on_dashboard_screen_polled(self, event: "DashboardScreen.Polled") -> None:
        if event.error and event.error != self._last_error:
            self.notify(f"Reading {self.run_dir}: {event.error}", severity="warning", timeout=10)
        self._last_error = event.error
        if event.log_name and event.log_text:
            self.query_one(f"#log-view-{event.log_name}", LogView).write(event.log_text)
        self._polled = self._polled or not event.error
        self.update_view(full=event.changed, charts_now=False)
        self._in_flight = False
        if self._poll_again:
            self._poll_again = False
            self._poll()
        else:
            self._schedule(POLL_FINISHED_S if self.watcher.finished else POLL_S)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()  # the footer shows the keys of the tab in view
        if self._active_log() is not None:
            self._poll()  # show the log now, not at the next tick
        else:
            self.update_view(full=True)  # hidden tabs are not kept up to date: catch up now

    # -- view --------------------------------------------------------------------------------------
    def update_view(self, full: bool = True, charts_now: bool = True) -> None:
        """Show what the watcher read. `full`: something besides the clocks changed. `charts_now`:
        redraw the charts even if they were drawn less than CHART_S ago (a tab switch, a key)."""
        w = self.watcher
        now = time.time()
        ready = None
        srv = next((s for s in w.stages() if s.name == "server"), None)
        if srv and srv.started and w.server_healthy_at:
            ready = w.server_healthy_at - srv.started
        self.query_one("#timeline", StageTimeline).set_content(timeline(w.stages(), w.status, now, ready,
                                                                   getattr(w, "regenerate", None)))
        pace = w.pace(now)
        self.query_one("#pace", PaceLine).show(pace, w.status)
        if self._polled:  # alerts compare with the run as first read, never with the empty watcher
            self.attention.check(self.app, w.status, w.warning, pace)
        # The footer is rebuilt on refresh_bindings (costly): only when what it shows changes.
        keys = (w.finished, self._stopping, bool(w.warning and w.warning.get("fix_config")),
                bool(self.watcher.checkpoints))
        if keys != self._binding_state:
            self._binding_state = keys
            self.refresh_bindings()
        # Only the visible tab is updated (the others catch up when shown): cheap while watching logs.
        tab = self.query_one("#tabs", TabbedContent).active
        if tab == "metrics":
            self.query_one("#stats", QuietStatic).set_content(self.stats_text(now))  # the clock ticks
        if full:
            self._charts_stale = True
            self._update_banner()
            gpus = [w.gpus[i] for i in sorted(w.gpus)]
            if tab == "checkpoints":
                self._update_checkpoints()
            if tab == "gpus":
                self.query_one("#gpu-panel", GpuPanel).show(gpus)
            if tab == "metrics" and self.query_one("#metrics-gpus").display:
                self.query_one("#metrics-gpus", GpuPanel).show(gpus)
        if tab != "metrics" or not self._charts_stale:
            return
        if not charts_now and not w.finished and now - self._charts_at < CHART_S:
            return  # drawn a moment ago: a poll CHART_S after that shows the new points
        self._charts_at, self._charts_stale = now, False
        loss_series = [("train", w.train_loss, "cyan"), ("val", w.val_loss, "magenta")]
        self.query_one("#chart-loss", LineChart).set_series(loss_series)
        acc = [(f"step {k}", pts, ACC_COLOURS[k % len(ACC_COLOURS)]) for k, pts in sorted(w.acc.items())]
        self.query_one("#chart-acc", LineChart).set_series(acc)
        self.query_one("#chart-tps", LineChart).set_series([("tokens/s", w.tokens_per_s, "green")])

    def stats_text(self, now: float) -> Text:
        w = self.watcher
        t = w.last_train or {}
        total = (w.start or {}).get("total_steps")
        epochs = (w.start or {}).get("epochs")
        out = Text()
        status_style = {"running": "bold yellow", "completed": "bold green", "failed": "bold red",
                        "stopped": "bold"}.get(w.status, "")
        out.append(w.status, style=status_style)
        el = w.elapsed(now)
        if el is not None:
            out.append(f"  {duration(el)}", style="dim")
        out.append("\n")
        if t:
            out.append(f"step {t.get('step')}" + (f"/{total}" if total else ""))
            out.append(f"  epoch {int(t.get('epoch', 0)) + 1}" + (f"/{epochs}" if epochs else ""))
            prog = t.get("epoch_progress")
            if prog is not None:
                out.append(f" ({100 * float(prog):.0f}%)")
            out.append("\n")
        out.append("loss ").append(_num(t.get("loss")), style="cyan")
        out.append("  val ").append(_num((w.last_val or {}).get("loss")), style="magenta").append("\n")
        al = w.acceptance_length()
        est = (w.last_val or {}).get("acceptance_length_estimate")
        if est is None:  # runs before the validation replay: the figure is the old estimate
            out.append("est. acceptance length ").append(_num(al, "{:.2f}"), style="bold green").append("\n")
        else:
            out.append("acceptance length ").append(_num(al, "{:.2f}"), style="bold green")
            out.append(f" (val replay; estimate {_num(est, '{:.2f}')})\n", style="dim")
        if w.evals:
            out.append(w.measured_text() + "\n", style="bold")
        # The last step's own figure (the trainer's); the pace line above has the recent median
        # over wall-clock time, pauses included: the two differ, and say which is which.
        out.append(f"last step {_num(t.get('tokens_per_s'), '{:,.0f}')} tokens/s  lr {_num(t.get('lr'), '{:.2e}')}\n")
        st, wait = t.get("step_time_s"), t.get("data_wait_s")
        if st and wait is not None:
            share = min(1.0, float(wait) / float(st)) if st else 0.0
            out.append("waiting for hidden states ")
            out.append(f"{100 * share:.0f}%", style="red" if share > 0.3 else "green")
            out.append(" of step time\n")
        if t.get("hs_latency_s") is not None:
            out.append(f"hidden-states latency {float(t['hs_latency_s']):.2f}s\n", style="dim")
        if w.end and w.end.get("message"):
            out.append(str(w.end["message"]), style="red" if w.end.get("status") == "failed" else "dim")
        return out

    def _update_banner(self) -> None:
        banner = self.query_one("#banner", QuietStatic)
        warn, fail = self.watcher.warning, self.watcher.failure
        text = Text()
        if fail:
            stage = fail.get("stage")
            log = {"server": "3 → Server", "train": "3 → Trainer", "prepare": "3 → Prepare",
                   "generate": "3 → Generate"}.get(str(stage), "")
            text.append("✗ " + (f"{stage} failed: " if stage else "run failed: "), style="bold")
            text.append(str(fail.get("message", "")))
            if log:
                text.append(f"  (log: {log})", style="dim")
        if warn and not self.watcher.finished or warn and warn.get("fix_config"):
            if text.plain:
                text.append("\n")
            text.append_text(Text.assemble(("⚠ ", "bold"), (str(warn.get("kind", "warning")) + ": ", "bold"),
                                           str(warn.get("message", ""))))
            fix = Text()
            if warn.get("fix_config"):
                fix.append("[f]", style="bold reverse").append(" apply to the next run  ")
            if warn.get("fix"):
                fix.append(f"fix: {warn['fix']}")
            if fix.plain:
                text.append("\n").append_text(fix)
        if self.fix_note:
            if text.plain:
                text.append("\n")
            text.append(self.fix_note, style="bold")
        # One line per item (cropped with …) so the charts keep their rows; `e` (or a click) shows
        # the full text, wrapped; the tooltip has it too.
        # (the footer's "e Full warning" says how; no extra row for it at 80x24)
        full = text.plain
        text.no_wrap = not self.banner_expanded
        text.overflow = "fold" if self.banner_expanded else "ellipsis"
        banner.tooltip = full or None
        banner.set_content(text)
        if banner.display != bool(text.plain):
            banner.display = bool(text.plain)
            self.refresh_bindings()  # "e Full warning" is offered only with a banner
        banner.set_class(bool(fail), "error")
        banner.set_class(self.banner_expanded, "expanded")

    def _update_checkpoints(self) -> None:
        w = self.watcher
        table = self.query_one("#ckpt-table", DataTable)
        best_changed = any(c.get("best") for c in w.checkpoints[self._shown_checkpoints:])
        if len(w.checkpoints) != self._shown_checkpoints or best_changed or len(w.evals) != self._shown_evals:
            table.clear()
            for c in w.checkpoints:
                epoch = c.get("epoch")
                m = w.measured_acceptance(epoch)
                table.add_row(str(int(epoch) + 1 if isinstance(epoch, (int, float)) else "?"), str(c.get("step", "")),
                              _num(c.get("val_loss")), _num(w.estimated_acceptance(epoch), "{:.2f}"),
                              f"{m[0]:.2f} (K={m[1]})" if m else "—",
                              Text("★ best", style="bold green") if c.get("best") else "",
                              str(c.get("path", "")))
            self._shown_checkpoints = len(w.checkpoints)
            self._shown_evals = len(w.evals)
        serve = w.serve_command(self.checkpoint_dir)
        if serve:
            shown = Text.assemble(("Serve the best drafter:\n  ", "bold"), (serve, "bold green"), "\n\n",
                                  ("y", "bold reverse"), (" copy it to the clipboard", "dim"))
        elif self._stopping:
            shown = Text("Stopping the run…", style="dim")
        elif w.finished:
            shown = Text(f"The run {w.status or 'ended'} before it saved a checkpoint: there is nothing to serve.",
                         style="yellow")
        else:
            shown = Text("The command to serve the best checkpoint appears here when the run ends.", style="dim")
        self.query_one("#serve", Static).update(shown)

    # -- actions -----------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop" and (self.watcher.finished or self._stopping):
            return False
        if not self.is_mounted:
            return True
        tab = self.query_one("#tabs", TabbedContent).active
        if action == "log_tab" and tab != "logs":
            return False  # shown in the footer on the Logs tab only
        if action == "copy_serve" and (tab != "checkpoints" or not self.watcher.finished
                                       or not self.watcher.checkpoints):
            return False
        if action == "expand_banner" and not self.query_one("#banner").display:
            return False
        if action == "apply_fix" and not (self.watcher.warning and self.watcher.warning.get("fix_config")):
            return False
        return True

    def action_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab

    def action_stop(self) -> None:
        if self.watcher.finished:
            self.notify("The run has already ended.")
            return

        def answer(yes: Optional[bool]) -> None:
            if yes:
                self._stopping = True
                self.refresh_bindings()
                self.notify("Stopping the run…")
                self.stop_run()

        self.app.push_screen(ConfirmDialog(f"Stop the run {self.run_dir.name}?\n\nThe server and the trainer "
                                           "are terminated; checkpoints already saved are kept.",
                                           yes="Stop the run", no="Keep running"), answer)

    @work(thread=True, exclusive=True, exit_on_error=False, group="dashboard-stop")
    def stop_run(self) -> None:
        try:
            self.app.stop_run(self.run_dir)  # type: ignore[attr-defined]
        except Exception as exc:
            self.post_message(self.Stopped(f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(self.Stopped(None))

    def on_dashboard_screen_stopped(self, event: "DashboardScreen.Stopped") -> None:
        self._stopping = False
        if event.error:
            self.notify(f"Could not stop the run: {event.error}", severity="error", timeout=15)
        else:
            self.notify("Run stopped.")
        self.refresh_bindings()
        self._schedule(0)

    def action_detach(self) -> None:
        self._stop_timer()
        self._detached = True  # a poll still in flight schedules nothing more
        self.workers.cancel_group(self, "dashboard-poll")
        self.app.detach_dashboard()  # type: ignore[attr-defined]

    def action_apply_fix(self) -> None:
        warn = self.watcher.warning or {}
        fix = warn.get("fix_config")
        if not fix or (self.fix_note or "").startswith("⏳"):
            return  # one at a time
        self.fix_note = "⏳ applying the fix: reading run.toml and the target's config…"
        self._update_banner()
        self.apply_fix(dict(fix))

    @work(thread=True, exclusive=True, exit_on_error=False, group="dashboard-fix")
    def apply_fix(self, fix: dict) -> None:
        from speculators_core import ConfigError, try_load_target
        from speculators_core import load_run_config as load_config
        from speculators_tui.data.fields import apply_values
        from speculators_tui.data.fix_diff import changes

        keys = list(fix)
        step = 1 if any(k.startswith(("hidden_states.", "training.gpus", "run.allow")) for k in keys) else 2
        try:
            before = load_config(self.run_dir)
            cfg = apply_values(before, fix)
        except (ConfigError, OSError) as exc:
            self.post_message(self.FixReady(None, None, None, [], step, str(exc)))
            return
        target, why = try_load_target(cfg.model.target) if cfg.model.target else (None, None)
        self.post_message(self.FixReady(cfg, target, why, changes(before, cfg, keys), step, None))

    def on_dashboard_screen_fix_ready(self, event: "DashboardScreen.FixReady") -> None:
        if event.error or event.cfg is None:
            self.fix_note = None
            self._update_banner()
            self.notify(f"Cannot apply the fix: {event.error}", severity="error", timeout=15)
            return
        changed = event.changes or ["nothing: the run's configuration already has these values"]
        self.fix_note = "✔ fix applied to a new configuration: " + "; ".join(changed)
        self._update_banner()
        self.app.open_wizard(event.cfg, str(self.run_dir / "run.toml"), step=event.step,  # type: ignore[attr-defined]
                             target=(event.target, event.why))
        self.app.notify("\n".join(changed), title="Fix applied to a new configuration", timeout=12)
