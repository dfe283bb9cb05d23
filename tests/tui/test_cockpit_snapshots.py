"""Snapshots of the cockpit screens (both themes): the start screen with the run history, the
compare picker and the compare screen (loss/accuracy/acceptance overlaid, the config difference),
the dashboard's pace line. Update with `--snapshot-update` after looking at the SVGs."""

from __future__ import annotations

import sys

import pytest

from speculators_tui.app import SpeculatorsApp
from tui_fakes import four_gpus

from .test_cockpit_core import history_runs, settle
from .test_snapshots import PRESET

THEMES = ["textual-dark", "textual-light"]


def before(theme: str, keys: tuple[str, ...] = (), select_all: bool = False):
    async def run_before(pilot) -> None:
        pilot.app.theme = theme
        await settle(pilot)
        for k in keys:
            await pilot.press(k)
            await settle(pilot)
            if select_all and k == "c" and hasattr(pilot.app.screen, "query_one"):
                from textual.widgets import SelectionList

                lists = pilot.app.screen.query(SelectionList)
                if lists:
                    lists.first().select_all()
                    await pilot.pause()
        await settle(pilot)

    return run_before


@pytest.mark.parametrize("theme", THEMES)
def test_start_screen_with_run_history(snap_compare, user_config, offline_env, tmp_path, theme):
    history_runs(tmp_path)
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    assert snap_compare(app, run_before=before(theme), terminal_size=(120, 30))


@pytest.mark.parametrize("theme", THEMES)
def test_compare_picker(snap_compare, user_config, offline_env, tmp_path, theme):
    history_runs(tmp_path)
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    assert snap_compare(app, run_before=before(theme, ("c",), select_all=True), terminal_size=(120, 30))


@pytest.mark.parametrize("theme", THEMES)
def test_compare_screen(snap_compare, user_config, offline_env, tmp_path, theme):
    a, b = history_runs(tmp_path)
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])

    async def run_before(pilot) -> None:
        pilot.app.theme = theme
        await settle(pilot)
        pilot.app.open_compare([a, b])
        await settle(pilot)

    assert snap_compare(app, run_before=run_before, terminal_size=(120, 36))


PYTHON = sys.executable  # the real interpreter (offline_env fakes sys.executable for the scripts shown)


@pytest.mark.parametrize("theme", THEMES)
def test_review_with_pre_flight_results(snap_compare, user_config, offline_env, monkeypatch, theme):
    """The reference hybrid preset on a machine without its target or vLLM: fails and warnings, each
    with its fix."""
    from speculators_core.config.presets import find_preset
    from speculators_tui.widgets import doctor_panel

    monkeypatch.setattr(doctor_panel, "doctor_command",
                        lambda: [PYTHON, "-m", "speculators_core.doctor", "-", "--json"])
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])

    async def run_before(pilot) -> None:
        pilot.app.theme = theme
        await pilot.pause()
        pilot.app.open_wizard(find_preset(PRESET).load(), f"{PRESET}.toml", step=3)
        await settle(pilot)
        await pilot.press("ctrl+d")
        panel = pilot.app.screen.query_one("#doctor")
        for _ in range(600):
            await pilot.pause(0.1)
            if panel.checks is not None:
                break
        await settle(pilot)

    assert snap_compare(app, run_before=run_before, terminal_size=(140, 40))


@pytest.mark.parametrize("theme", THEMES)
def test_loss_mask_screen(snap_compare, user_config, offline_env, demo_prepared, theme):
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])

    async def run_before(pilot) -> None:
        pilot.app.theme = theme
        await pilot.pause()
        pilot.app.open_mask_view(demo_prepared)
        await settle(pilot)

    assert snap_compare(app, run_before=run_before, terminal_size=(100, 30))


class FixedClock:
    """The `time` module with a fixed time(): a live run's durations and ETA are the same on every run."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def __getattr__(self, name):
        import time

        return getattr(time, name)


@pytest.mark.parametrize("theme", THEMES)
def test_dashboard_pace_line_of_a_live_run(snap_compare, user_config, offline_env, monkeypatch, tmp_path, theme):
    """The header's pace line: steps/s, tokens/s, the epoch's and the run's ETA (a clock fixed 5 s
    after the 30th of 60 steps)."""
    from speculators_tui.screens import dashboard
    from tui_fakes import write_run_dir

    t0 = 1_780_000_000.0
    run = write_run_dir(tmp_path / "live", t0=t0, steps=30, finished=False)
    monkeypatch.setattr(dashboard, "time", FixedClock(t0 + 105.0))
    app = SpeculatorsApp(run_dir=run, gpu_probe=four_gpus, runs_dirs=[])
    assert snap_compare(app, run_before=before(theme), terminal_size=(100, 30))
