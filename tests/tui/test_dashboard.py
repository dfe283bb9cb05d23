"""The dashboard reads a run directory: charts, stages, GPUs, banner + fix, logs, checkpoints, stop."""

from __future__ import annotations

import json

from textual.widgets import DataTable, Log, Static

from speculators_tui.app import SpeculatorsApp
from speculators_tui.dialogs.confirm import ConfirmDialog
from speculators_tui.screens.dashboard import DashboardScreen
from speculators_tui.screens.step_gpus import GpuStep
from speculators_tui.widgets.line_chart import LineChart
from tui_fakes import four_gpus, write_run_dir


async def wait_polled(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_dashboard_shows_a_recorded_run(user_config, fabricated_run):
    app = SpeculatorsApp(run_dir=fabricated_run, gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_polled(pilot)
        scr = app.screen
        assert isinstance(scr, DashboardScreen)
        timeline = str(scr.query_one("#timeline", Static).render())
        assert "prepare 0:11" in timeline and "server up in 0:23" in timeline and "done" in timeline
        assert len(scr.query_one("#chart-loss", LineChart).series[0][1]) == 60
        assert len(scr.query_one("#chart-acc", LineChart).series) == 3
        stats = str(scr.query_one("#stats", Static).render())
        assert "step 60/60" in stats and "est. acceptance length 2.4" in stats and "completed" in stats
        banner = scr.query_one("#banner", Static)
        assert banner.display and "fix: give the server GPUs 0,1,3" in str(banner.render())
        await pilot.press("4")
        await pilot.pause()
        table = scr.query_one("#ckpt-table", DataTable)
        assert table.row_count == 3
        assert "★ best" in str(table.get_row_at(2)[5])
        assert [str(table.get_row_at(i)[4]) for i in range(3)] == ["—"] * 3  # no evaluation in this run
        assert f"vllm serve {fabricated_run / 'checkpoints' / 'checkpoint_best'}" in \
            str(scr.query_one("#serve", Static).render())
        await pilot.press("3")
        await wait_polled(pilot)
        log = scr.query_one("#log-view-trainer", Log)
        lines = [ln for ln in log.lines if ln]
        assert len(lines) == 60 and lines[-1].startswith("step 60 ")
        # The suggested fix opens the wizard with it applied, for a new run.
        await pilot.press("f")
        await wait_polled(pilot)
        assert isinstance(app.screen, GpuStep)
        assert app.config.hidden_states.gpus == [0, 1, 3]
        assert app.config.hidden_states.data_parallel_size == 3
        assert app.config.training.gpus == [2]


async def test_dashboard_follows_a_live_run_and_stops_it(user_config, tmp_path):
    run = write_run_dir(tmp_path / "live", steps=5, finished=False)
    stopped = []

    def fake_stop(run_dir):  # the real supervisor stop is exercised in test_launch_demo
        stopped.append(run_dir)
        st = json.loads((run_dir / "state.json").read_text())
        st["status"] = "stopped"
        (run_dir / "state.json").write_text(json.dumps(st))

    app = SpeculatorsApp(run_dir=run, gpu_probe=four_gpus, runs_dirs=[], stop_run=fake_stop)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_polled(pilot)
        scr = app.screen
        assert len(scr.watcher.train_loss) == 5
        with (run / "metrics.jsonl").open("a") as fh:
            for s in (6, 7):
                fh.write(json.dumps({"type": "train", "step": s, "epoch": 0, "loss": 1.5, "tokens_per_s": 1000.0,
                                     "full_acc_0": 0.5, "full_acc_1": 0.3, "full_acc_2": 0.1}) + "\n")
        scr._poll()  # the next timer tick, without waiting a second
        await wait_polled(pilot)
        assert [p[0] for p in scr.watcher.train_loss][-2:] == [6.0, 7.0]
        assert "step 7/60" in str(scr.query_one("#stats", Static).render())
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")  # keep running
        await pilot.pause()
        assert stopped == [] and app.screen is scr
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("y")
        await wait_polled(pilot)
        await wait_polled(pilot)
        assert stopped == [run]
        assert scr.watcher.status == "stopped"
        # Detach leaves the dashboard (here: the app, opened on the run) without stopping anything.
        await pilot.press("d")
        await pilot.pause()
    assert app.return_code == 0


async def test_failed_stage_is_shown_with_its_cause(user_config, tmp_path):
    run = write_run_dir(tmp_path / "failed", steps=0, finished=False)
    st = json.loads((run / "state.json").read_text())
    st["status"] = "failed"
    st["stages"]["server"]["status"] = "failed"
    (run / "state.json").write_text(json.dumps(st))
    with (run / "events.jsonl").open("a") as fh:
        fh.write(json.dumps({"time": 1.0, "event": "stage_failed", "stage": "server",
                             "message": "http://127.0.0.1:18080/health is already in use by another process"}) + "\n")
        fh.write(json.dumps({"time": 2.0, "event": "run_failed", "message": "the server stage failed to start"}) + "\n")
    app = SpeculatorsApp(run_dir=run, gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_polled(pilot)
        banner = app.screen.query_one("#banner", Static)
        text = str(banner.render())
        assert banner.display and banner.has_class("error")
        assert "server failed: http://127.0.0.1:18080/health is already in use" in text and "Server" in text
        assert "✗ server" in str(app.screen.query_one("#timeline", Static).render())
        assert app.screen.check_action("stop", ()) is False  # nothing left to stop


async def test_checkpoints_table_shows_measured_acceptance_beside_the_estimate(user_config, tmp_path):
    """Each checkpoint's measured acceptance length (the best K of its sweep) from the `type: "eval"`
    records, beside the validation estimate; an epoch not yet measured shows a dash."""
    run = write_run_dir(tmp_path / "measured", evals=True)
    app = SpeculatorsApp(run_dir=run, gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(140, 32)) as pilot:
        await wait_polled(pilot)
        await pilot.press("4")
        await pilot.pause()
        table = app.screen.query_one("#ckpt-table", DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert [r[4] for r in rows] == ["1.80 (K=2)", "2.00 (K=2)", "—"]
        # epoch 1's estimate: 1 + sum of its validation full_acc_k (0.8 * (0.7 + 0.55 + 0.4))
        assert rows[0][3] == "2.32"


async def test_switching_tabs_keeps_one_polling_chain(user_config, tmp_path, monkeypatch):
    """Each tab switch polls at once; it must replace the poll that was due, not start a second
    chain beside it (four switches used to leave five chains polling: five times the CPU)."""
    import speculators_tui.screens.dashboard as dash

    monkeypatch.setattr(dash, "POLL_S", 0.1)
    run = write_run_dir(tmp_path / "live", steps=5, finished=False)
    app = SpeculatorsApp(run_dir=run, gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_polled(pilot)
        scr = app.screen
        polls = []
        real_poll = scr.watcher.poll
        monkeypatch.setattr(scr.watcher, "poll", lambda: polls.append(1) or real_poll())
        for key in ("3", "1", "3", "1", "3", "]", "]"):
            await pilot.press(key)
        await pilot.pause()
        polls.clear()
        await pilot.pause(1.0)
        # One chain: at most one poll per 0.1 s (plus the one in flight); five chains give ~50.
        assert 3 <= len(polls) <= 12, len(polls)
        # A poll asked for while one is reading runs after it, never beside it.
        assert not (scr._in_flight and scr._timer is not None)
