"""The app as a cockpit: the dashboard header's pace and ETA and its notifications, the run history
on the start screen and "Open run directory...", and comparing runs (screens/compare.py)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from textual.widgets import DataTable, OptionList, SelectionList, Static

from speculators_core.runs import index
from speculators_tui.app import SpeculatorsApp
from speculators_tui.dialogs.prompt import PromptDialog
from speculators_tui.screens.compare import ComparePicker, CompareScreen
from speculators_tui.screens.dashboard import DashboardScreen
from speculators_tui.widgets.line_chart import LineChart
from tui_fakes import four_gpus, write_run_dir

from .conftest import RECORDED


async def settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def history_runs(base: Path) -> list[Path]:
    """Two recorded runs (lr 3e-4 and 1e-4) somewhere else than the working directory, registered."""
    out = []
    for i, (name, lr) in enumerate((("demo-lr3e-4", "0.0003"), ("demo-lr1e-4", "0.0001"))):
        rd = base / "elsewhere" / "runs" / name
        shutil.copytree(RECORDED, rd)
        (rd / "run.toml").write_text((rd / "run.toml").read_text().replace("lr = 0.0003", f"lr = {lr}"))
        st = json.loads((rd / "state.json").read_text())
        st.update(name=name, started=1_795_977_790.0 + i * 3600)
        (rd / "state.json").write_text(json.dumps(st))
        if i == 0:  # the evaluate stage measured this one's acceptance
            with (rd / "metrics.jsonl").open("a") as fh:
                fh.write(json.dumps({"type": "eval", "time": 1_795_978_900.0, "epoch": 2, "checkpoint": "checkpoint_best",
                                     "num_speculative_tokens": 3, "acceptance_length": 1.52,
                                     "per_position_acceptance": [0.35, 0.12, 0.05], "tokens_per_s": 80.0,
                                     "speedup": 1.31}) + "\n")
        else:  # a worse run: higher losses, lower accuracies
            recs = [json.loads(ln) for ln in (rd / "metrics.jsonl").read_text().splitlines()]
            for r in recs:
                for k, v in list(r.items()):
                    if k.startswith("loss") or k == "val_loss":
                        r[k] = v * 1.25
                    elif k.startswith("full_acc_"):
                        r[k] = v * 0.85
                    elif k == "acceptance_length":
                        r[k] = v * 0.95
            (rd / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
        index.register(rd)
        out.append(rd)
    return out


async def test_start_screen_lists_the_run_history_from_any_directory(user_config, tmp_path, monkeypatch):
    runs = history_runs(tmp_path)
    monkeypatch.chdir(tmp_path)  # no ./runs here: only the history knows these runs
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        ol = app.screen.query_one("#choices", OptionList)
        labels = [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]
        run_rows = [label for label in labels if "demo-lr" in label]
        assert run_rows[0].split()[:2] == ["demo-lr1e-4", "completed"]  # newest first
        assert "val 0.07283" in run_rows[0] and "accept≈1.30" in run_rows[0]
        assert "accept 1.52" in run_rows[1]  # measured by the evaluate stage and "…/elsewhere/runs" in run_rows[0]
        # a deleted run directory disappears from the list (and from the index)
        shutil.rmtree(runs[1])
        await pilot.press("r")
        await pilot.pause()
        labels = [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]
        assert [label.split()[0] for label in labels if "demo-lr" in label] == ["demo-lr3e-4"]
        assert not index.entry_path(runs[1]).exists()
        ol.highlighted = next(i for i, label in enumerate(labels) if "demo-lr3e-4" in label)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen) and app.screen.run_dir == runs[0]


async def test_palette_open_run_directory(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = write_run_dir(tmp_path / "somewhere" / "my-run")
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"open run directory")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PromptDialog)
        from textual.widgets import Input

        inp = app.screen.query_one(Input)
        inp.value = str(tmp_path / "somewhere")  # not a run directory: refused, with why
        await pilot.press("enter")
        await pilot.pause()
        assert "not a run directory (no state.json)" in str(app.screen.query_one("#error", Static).render())
        inp.value = str(run)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen) and app.screen.run_dir == run.resolve()
        assert [e.dir for e in index.list_entries()] == [str(run.resolve())]  # it joined the history


async def test_compare_two_runs_picked_in_the_app(user_config, tmp_path, monkeypatch):
    history_runs(tmp_path)
    monkeypatch.chdir(tmp_path)
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, ComparePicker)
        await pilot.press("enter")  # one run checked at most: nothing to compare yet
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ComparePicker)
        sl = app.screen.query_one(SelectionList)
        sl.select_all()
        await pilot.press("c")
        await settle(pilot)
        scr = app.screen
        assert isinstance(scr, CompareScreen)
        loss = scr.query_one("#cmp-loss", LineChart).series
        assert [(label, len(pts)) for label, pts, _ in loss] == [("A", 126), ("B", 126)]
        assert [label for label, _, _ in scr.query_one("#cmp-accept", LineChart).series] == ["A est.", "B est.", "B measured"]
        diff = scr.query_one("#cmp-diff", DataTable)
        assert [str(c) for c in diff.get_row_at(0)] == ["training.lr", "1e-4", "3e-4"]
        assert scr.query_one("#cmp-runs", DataTable).row_count == 2
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ComparePicker)


async def test_dashboard_header_shows_pace_and_eta_and_notifies(user_config, tmp_path):
    now = time.time()
    run = write_run_dir(tmp_path / "live", t0=now - 100.0, steps=30, finished=False)  # last step: now
    app = SpeculatorsApp(run_dir=run, gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        scr = app.screen
        pace = str(scr.query_one("#pace", Static).render())
        # steps every 2 s, 2048 tokens a step; 10 steps left in epoch 2, 30 in the run
        assert pace == "0.50 steps/s · 1,024 tok/s · epoch ETA 0:00:20 · run ETA 0:01:00"
        toasts = []
        orig = app.notify
        app.notify = lambda message, **kw: (toasts.append((kw.get("title"), message)), orig(message, **kw))
        with (run / "events.jsonl").open("a") as fh:
            fh.write(json.dumps({"time": now, "event": "warning", "kind": "bottleneck",
                                 "message": "training waits 50%", "fix": "hybrid mode"}) + "\n")
        st = json.loads((run / "state.json").read_text())
        st["status"] = "failed"
        (run / "state.json").write_text(json.dumps(st))
        scr._poll()
        await settle(pilot)
        assert ("live failed", "the run failed: see its dashboard or logs") in toasts
        assert ("live: bottleneck", "training waits 50% (fix: hybrid mode)") in toasts


async def test_dashboard_header_says_when_a_run_stalls(user_config, tmp_path):
    run = write_run_dir(tmp_path / "stuck", t0=time.time() - 1000.0, steps=30, finished=False)
    app = SpeculatorsApp(run_dir=run, gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        line = app.screen.query_one("#pace", Static)
        assert "STALLED: no step for 0:1" in str(line.render()) and line.has_class("stalled")


# ------------------------------------------------------------------------------------------ pre-flight
async def test_review_screen_pre_flight_panel(user_config, tmp_path, monkeypatch):
    """ctrl+d on the review screen runs `python -m speculators_core.doctor - --json` on the wizard's
    config (a subprocess) and shows each check with its status."""
    from speculators_core.config.presets import find_preset
    from speculators_tui.screens.review import ReviewScreen
    from speculators_tui.widgets.doctor_panel import DoctorPanel

    monkeypatch.chdir(tmp_path)
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        app.open_wizard(find_preset("tiny-cpu-demo").load(), "tiny-cpu-demo.toml", step=3)
        await settle(pilot)
        assert isinstance(app.screen, ReviewScreen)
        panel = app.screen.query_one(DoctorPanel)
        assert "Pre-flight check (ctrl+d)" in panel.text
        await pilot.press("ctrl+d")
        for _ in range(600):  # the subprocess loads the tokenizer: a few seconds on a loaded machine
            await pilot.pause(0.1)
            if panel.checks is not None:
                break
        await settle(pilot)
        assert [(c["name"], c["status"]) for c in panel.checks] == [
            ("target", "pass"), ("layer ids", "pass"), ("server vllm", "skip"), ("chat", "pass"), ("disk", "skip")]
        text = panel.text
        assert "✓ chat" in text and "✓ layer ids   server and trainer both use [2, 4, 5, 8]" in text
        # ctrl+l: the loss mask of data.output, not prepared here: says so, and how
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert isinstance(app.screen, ReviewScreen)


async def test_loss_mask_screen_highlights_the_trained_tokens(user_config, demo_prepared, tmp_path, monkeypatch):
    from speculators_tui.screens.mask_view import TRAINED, MaskViewScreen

    monkeypatch.chdir(tmp_path)
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.open_mask_view(demo_prepared)
        await settle(pilot)
        scr = app.screen
        assert isinstance(scr, MaskViewScreen) and scr.view.row == 0
        view = scr.view
        text = scr.query_one("#mask-text", Static).render()
        # trained: bold black on green (TRAINED); the rest dim
        trained = "".join(text.plain[s.start:s.end] for s in text.spans if getattr(s.style, "bold", False))
        assert TRAINED == "bold black on green"
        # the highlighted characters are the decoded loss_mask = 1 tokens
        assert trained == "".join(t for t, m in view.segments() if m) and trained
        assert sum(len(t) for t, m in view.segments() if not m) == len(text.plain) - len(trained)
        assert f"row 0 of 220: {len(view.input_ids)} tokens, {sum(view.loss_mask)} trained" in \
            str(scr.query_one("#mask-summary", Static).render())
        await pilot.press("n")
        await settle(pilot)
        assert scr.view.row == 1
        await pilot.press("p", "p")
        await settle(pilot)
        assert scr.view.row == 219  # wraps around
        await pilot.press("t")
        await pilot.pause()
        assert scr.tokens


async def test_palette_turns_notifications_off_and_on(user_config, tmp_path, monkeypatch):
    from speculators_core.runs.alerts import load_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SPECULATORS_TUI_NOTIFY")  # the suite's "off": this test looks at the file
    assert load_settings().enabled  # default: on
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        for expected in (False, True):
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"notifications turn")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await pilot.pause()
            assert load_settings().enabled is expected
    assert (user_config / "notify.toml").read_text().startswith("# speculators-tui notifications")
