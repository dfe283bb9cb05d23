"""From the start screen to a running tiny CPU demo and back: launch, see metrics, stop, processes gone."""

from __future__ import annotations

import pytest
from textual.widgets import OptionList

from speculators_tui.app import SpeculatorsApp
from speculators_tui.screens.dashboard import DashboardScreen
from speculators_tui.screens.review import ReviewScreen
from speculators_tui.screens.step_gpus import GpuStep
from speculators_tui.screens.step_model import ModelStep
from tui_fakes import no_gpus, type_into


@pytest.mark.slow
@pytest.mark.timeout(420)
async def test_launch_tiny_demo_see_metrics_and_stop(user_config, tmp_path, monkeypatch, port, tiny_target, request):
    from speculators_core import procs
    from speculators_core.runs.rundir import read_state

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    runs_dir = tmp_path / "speculators-demo" / "runs"

    def stop_leftovers():  # a failed assertion must not leave the detached run going
        from speculators_core.runs.rundir import list_runs
        from speculators_core.runs.control import stop_run

        for d in list_runs(runs_dir):
            stop_run(d, grace=5.0)

    request.addfinalizer(stop_leftovers)
    app = SpeculatorsApp(gpu_probe=no_gpus, runs_dirs=[tmp_path / "speculators-demo" / "runs"])
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        start = app.screen
        index = next(i for i, (kind, obj) in enumerate(start.targets_list)
                     if kind == "preset" and obj.name == "tiny-cpu-demo")
        start.query_one(OptionList).highlighted = index
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ModelStep)
        await type_into(pilot, "data.max_samples", "40")
        await pilot.press("ctrl+n")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, GpuStep)
        await type_into(pilot, "hidden_states.port", str(port))
        await pilot.press("ctrl+n")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, ReviewScreen), app.screen.blocking() if hasattr(app.screen, "blocking") else ""
        await pilot.press("ctrl+r")
        for _ in range(100):
            await pilot.pause(0.2)
            if isinstance(app.screen, DashboardScreen):
                break
        scr = app.screen
        assert isinstance(scr, DashboardScreen), "the run did not start"
        run_dir = scr.run_dir
        assert run_dir.parent == tmp_path / "speculators-demo" / "runs"
        for _ in range(600):  # metrics arrive through the files, polled every second
            await pilot.pause(0.5)
            if len(scr.watcher.train_loss) >= 2 or scr.watcher.finished:
                break
        assert len(scr.watcher.train_loss) >= 2, (run_dir / "train.log").read_text()[-3000:]
        assert scr.query_one("#chart-loss").series[0][1]
        # Detach: back to the start screen, the run goes on; re-attach from "Recent runs".
        from speculators_core.runs.control import is_running
        from speculators_tui.screens.start import StartScreen

        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        assert is_running(run_dir)
        start = app.screen
        index = next(i for i, (kind, obj) in enumerate(start.targets_list) if kind == "run" and obj == run_dir)
        start.query_one(OptionList).highlighted = index
        await pilot.press("enter")
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, DashboardScreen) and scr.run_dir == run_dir
        for _ in range(20):
            await pilot.pause(0.2)
            if scr.watcher.train_loss:
                break
        assert scr.watcher.train_loss
        st = read_state(run_dir)
        assert st["status"] == "running"
        pids = [s["pid"] for s in st["stages"].values() if s.get("pid")] + [st["pid"]]
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("y")
        for _ in range(240):
            await pilot.pause(0.5)
            if scr.watcher.status == "stopped":
                break
        assert scr.watcher.status == "stopped"
        assert not [p for p in pids if procs.pid_alive(p) or procs.group_alive(p)]
        await pilot.press("d")
        await pilot.pause()
        assert not isinstance(app.screen, DashboardScreen)
