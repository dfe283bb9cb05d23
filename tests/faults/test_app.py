"""Fault cases of the app: bad input in every wizard field, dashboards of runs that are not there
(or vanish while watched). The app shows the problem and keeps running; it never crashes."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from textual.widgets import Button, Input, Static

TUI = Path(__file__).resolve().parents[1] / "tui"
sys.path.insert(0, str(TUI))

from tui_fakes import four_gpus, write_run_dir  # noqa: E402

from speculators_core.config.presets import find_preset  # noqa: E402
from speculators_tui.app import SpeculatorsApp  # noqa: E402

@pytest.fixture
def user_config(tmp_path, monkeypatch) -> Path:
    """A fresh user config dir (as tests/tui/conftest.py's)."""
    d = tmp_path / "user-config"
    monkeypatch.setenv("SPECULATORS_TUI_CONFIG", str(d))
    return d


# (field, bad text): one case per wizard field that takes typed input
BAD = [
    ("model.target", ""), ("data.sources", ""), ("data.max_samples", "12x"), ("data.seq_length", "-5"),
    ("data.output", ""), ("hidden_states.target_layer_ids", "a,b"), ("run.name", ""),
    ("hidden_states.gpus", "zero"), ("training.gpus", "0,,x"), ("hidden_states.data_parallel_size", "0"),
    ("hidden_states.tensor_parallel_size", "two"), ("hidden_states.port", "99999"),
    ("hidden_states.gpu_memory_utilization", "1.5"), ("training.draft_vocab_size", "-1"),
    ("training.epochs", "0"), ("training.lr", "fast"), ("training.total_seq_len", "1e"),
    ("training.num_layers", "0"), ("training.ttt_steps", "x"),
]


def _owner_step(dotted: str) -> int:
    from speculators_tui.screens.review import ReviewScreen  # noqa: F401
    from speculators_tui.screens.step_gpus import GpuStep
    from speculators_tui.screens.step_model import ModelStep
    from speculators_tui.screens.step_training import TrainingStep

    for i, cls in enumerate((ModelStep, GpuStep, TrainingStep)):
        if cls().owns(dotted):
            return i
    raise AssertionError(f"no step owns {dotted}")


@pytest.mark.fault("app")
@pytest.mark.parametrize("dotted,bad", BAD, ids=[d for d, _ in BAD])
async def test_bad_input_in_a_wizard_field_shows_the_inline_error(user_config, tmp_path, monkeypatch, dotted, bad):
    monkeypatch.chdir(tmp_path)
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        app.open_wizard(find_preset("tiny-cpu-demo").load(), "tiny-cpu-demo.toml", step=_owner_step(dotted))
        await app.workers.wait_for_complete()
        await pilot.pause()
        field = app.screen.query_one(f"#f-{dotted.replace('.', '--')}")
        inp = field.query_one(Input)
        inp.focus()
        inp.value = bad
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        error = str(field.query_one(".field-error", Static).render())
        assert error.strip(), f"{dotted}={bad!r}: no inline error"
        assert app.screen.query_one("#next", Button).disabled
        await pilot.press("ctrl+n")  # refused, not crashed
        await pilot.pause()
        assert app.is_running and app.screen.query(f"#f-{dotted.replace('.', '--')}")


@pytest.mark.fault("app")
@pytest.mark.parametrize("what", ["missing", "not-a-run"])
async def test_the_dashboard_of_a_directory_that_is_not_a_run(user_config, tmp_path, monkeypatch, what):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "nowhere"
    if what == "not-a-run":
        path.mkdir()
        (path / "notes.txt").write_text("hi")
    app = SpeculatorsApp(run_dir=path, gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running


@pytest.mark.fault("app")
@pytest.mark.parametrize("finished", [True, False], ids=["finished", "running"])
async def test_a_run_directory_deleted_while_the_dashboard_watches(user_config, tmp_path, monkeypatch, finished):
    monkeypatch.chdir(tmp_path)
    run = write_run_dir(tmp_path / "run-x", finished=finished)
    app = SpeculatorsApp(run_dir=run, gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        shutil.rmtree(run)
        for key in ("1", "2", "3", "4"):  # every tab reads the (gone) files
            await pilot.press(key)
            await pilot.pause(0.6)
            await app.workers.wait_for_complete()
        assert app.is_running
