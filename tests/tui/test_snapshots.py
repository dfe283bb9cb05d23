"""Snapshots (pytest-textual-snapshot, Textual pinned) of the start screen, each wizard step, the
review screen and the dashboard of a recorded run. Update with `pytest tests/tui --snapshot-update`
after looking at the new SVGs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from speculators_tui.app import SpeculatorsApp
from tui_fakes import four_gpus, no_gpus, write_run_dir

from .conftest import RECORDED

SYNTHETIC_GPU = RECORDED.parent / "synthetic_gpu" / "gpu.jsonl"

PRESET = "qwen3-8b-sharegpt-hybrid-5k"  # a target that is not in the (empty) hub cache: same on every machine


async def settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def at_step(step: int):
    """run_before: open the wizard on PRESET at `step` (0-3), as the start screen does."""
    from speculators_core.config.presets import find_preset

    async def before(pilot) -> None:
        await pilot.pause()
        cfg = find_preset(PRESET).load()
        if step == 3:  # the planner makes the storage directory absolute: not the test's temporary cwd
            cfg.hidden_states.storage_dir = "/scratch/hs"
        pilot.app.open_wizard(cfg, f"{PRESET}.toml", step=step)
        await settle(pilot)
        from speculators_tui.screens.start import StartScreen

        assert not isinstance(pilot.app.screen, StartScreen)

    return before


def test_start_screen(snap_compare, user_config, offline_env):
    assert snap_compare(SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[]), run_before=settle)


@pytest.mark.parametrize("step", [0, 1, 2, 3], ids=["model", "gpus", "training", "review"])
def test_wizard_step(snap_compare, user_config, offline_env, step):
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    assert snap_compare(app, run_before=at_step(step), terminal_size=(80, 24))


def test_gpus_step_without_gpu(snap_compare, user_config, offline_env):
    assert snap_compare(SpeculatorsApp(gpu_probe=no_gpus, runs_dirs=[]), run_before=at_step(1))


def test_review_wide(snap_compare, user_config, offline_env):
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    assert snap_compare(app, run_before=at_step(3), terminal_size=(140, 40))


def test_dashboard_recorded_run(snap_compare, user_config, offline_env):
    """The real recording of a tiny CPU demo run (tests/data/recorded_run, two bottleneck warnings)."""
    app = SpeculatorsApp(run_dir=RECORDED, gpu_probe=four_gpus, runs_dirs=[])
    assert snap_compare(app, run_before=settle)


def test_dashboard_large_terminal_with_gpus(snap_compare, user_config, offline_env, tmp_path):
    """Larger terminals get taller charts and the GPU rows under them (synthetic 4-GPU samples)."""
    run = tmp_path / "recorded_run"
    shutil.copytree(RECORDED, run)
    shutil.copy(SYNTHETIC_GPU, run / "gpu.jsonl")
    app = SpeculatorsApp(run_dir=run, gpu_probe=four_gpus, runs_dirs=[])
    assert snap_compare(app, run_before=settle, terminal_size=(160, 48))


def test_dashboard_fabricated_checkpoints_tab(snap_compare, user_config, offline_env, tmp_path):
    # epochs 1 and 2 measured (the "accept (measured)" column), epoch 3 not yet
    app = SpeculatorsApp(run_dir=write_run_dir(Path("fabricated"), evals=True), gpu_probe=four_gpus, runs_dirs=[])
    assert snap_compare(app, press=["4"], run_before=settle)


async def _save_as_builtin(pilot) -> None:
    """The review screen's "save preset" under a built-in's name: the dialog that says what happens."""
    from textual.widgets import Input

    await at_step(3)(pilot)
    await pilot.press("ctrl+s")
    await pilot.pause()
    pilot.app.screen.query_one("#answer", Input).value = "tiny-cpu-demo"
    await pilot.press("enter")
    await settle(pilot)


def test_dialog_save_preset_over_a_builtin(snap_compare, user_config, offline_env):
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    assert snap_compare(app, run_before=_save_as_builtin, terminal_size=(100, 30))


async def _delete_user_preset(pilot) -> None:
    from textual.widgets import OptionList

    await settle(pilot)
    screen = pilot.app.screen
    idx = next(i for i, (k, p) in enumerate(screen.targets_list) if k == "preset" and not p.builtin)
    screen.query_one(OptionList).highlighted = idx
    await pilot.press("d")
    await settle(pilot)


def test_dialog_delete_user_preset(snap_compare, user_config, offline_env):
    from speculators_core.config.presets import find_preset, save_user_preset

    save_user_preset(find_preset(PRESET).load(), "my-qwen")
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    assert snap_compare(app, run_before=_delete_user_preset, terminal_size=(100, 30))


async def _discard_changes(pilot) -> None:
    from tui_fakes import type_into

    await at_step(0)(pilot)
    await type_into(pilot, "data.max_samples", "77")
    await pilot.press("escape")
    await settle(pilot)


def test_dialog_discard_wizard_changes(snap_compare, user_config, offline_env):
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    assert snap_compare(app, run_before=_discard_changes, terminal_size=(100, 30))


# -- issue #18: reading aids, the GPU tab, contextual help (both themes) ------------------------------
THEMES = ["textual-dark", "textual-light"]


def themed(theme: str, keys: tuple[str, ...] = ()):
    async def before(pilot) -> None:
        pilot.app.theme = theme
        await settle(pilot)
        for k in keys:
            await pilot.press(k)
            await pilot.pause()
        await settle(pilot)

    return before


@pytest.mark.parametrize("theme", THEMES)
def test_dashboard_chart_aids(snap_compare, user_config, offline_env, theme):
    """Log-scale loss, smoothing 0.8, and the cursor two columns left of the last step."""
    app = SpeculatorsApp(run_dir=write_run_dir(Path("fabricated")), gpu_probe=four_gpus, runs_dirs=[])
    assert snap_compare(app, run_before=themed(theme, ("m", "g", "comma", "comma", "comma")), terminal_size=(100, 32))


@pytest.mark.parametrize("theme", THEMES)
def test_dashboard_gpu_tab(snap_compare, user_config, offline_env, theme):
    app = SpeculatorsApp(run_dir=write_run_dir(Path("fabricated")), gpu_probe=four_gpus, runs_dirs=[])
    assert snap_compare(app, run_before=themed(theme, ("2",)), terminal_size=(80, 24))


def test_dashboard_banner_expanded(snap_compare, user_config, offline_env):
    app = SpeculatorsApp(run_dir=RECORDED, gpu_probe=four_gpus, runs_dirs=[])
    assert snap_compare(app, run_before=themed("textual-dark", ("e",)), terminal_size=(80, 24))


def test_help_on_the_dashboard(snap_compare, user_config, offline_env):
    app = SpeculatorsApp(run_dir=write_run_dir(Path("fabricated")), gpu_probe=four_gpus, runs_dirs=[])
    assert snap_compare(app, run_before=themed("textual-light", ("question_mark",)), terminal_size=(80, 24))
