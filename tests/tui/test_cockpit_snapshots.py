"""Snapshots of the cockpit screens (both themes): the start screen with the run history, the
compare picker and the compare screen (loss/accuracy/acceptance overlaid, the config difference),
the dashboard's pace line. Update with `--snapshot-update` after looking at the SVGs."""

from __future__ import annotations

import pytest

from speculators_tui.app import SpeculatorsApp
from tui_fakes import four_gpus

from .test_cockpit_core import history_runs, settle

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
