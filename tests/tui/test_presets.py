"""User presets in the app and the CLI: no silent shadowing of a built-in, delete and rename, and
"Back" on the wizard's first step asks before throwing edits away."""

from __future__ import annotations

from textual.widgets import Input, OptionList

from speculators_core import config as cfgmod
from speculators_core.config.presets import find_preset, list_presets, save_user_preset
from speculators_tui.app import SpeculatorsApp
from speculators_tui.cli import main as cli
from speculators_tui.dialogs.confirm import ConfirmDialog
from speculators_tui.dialogs.prompt import PromptDialog
from speculators_tui.screens.review import ReviewScreen
from speculators_tui.screens.start import StartScreen
from speculators_tui.screens.step_model import ModelStep
from tui_fakes import four_gpus, type_into

DEMO = "tiny-cpu-demo"


def _dialog_text(app) -> str:
    return " ".join(str(s.render()) for s in app.screen.query("Static"))


# ------------------------------------------------------------------------------------------- CLI
def test_cli_delete_and_rename_refuse_builtins(user_config, capsys):
    assert cli(["presets", "delete", DEMO]) == 2
    assert "built-in" in capsys.readouterr().err
    assert cli(["presets", "rename", DEMO, "mine"]) == 2
    assert "built-in" in capsys.readouterr().err
    assert find_preset(DEMO).builtin


def test_cli_rename_and_delete_a_user_preset(user_config, capsys):
    save_user_preset(find_preset(DEMO).load(), "mine")
    assert cli(["presets", "rename", "mine", DEMO]) == 2  # would shadow the built-in
    assert "built-in preset's name" in capsys.readouterr().err
    assert cli(["presets", "rename", "mine", "ours"]) == 0
    assert not (user_config / "presets" / "mine.toml").exists()
    assert (user_config / "presets" / "ours.toml").exists()
    assert cli(["presets", "delete", "ours"]) == 0
    assert not (user_config / "presets" / "ours.toml").exists()
    capsys.readouterr()
    assert cli(["presets", "delete", "ours"]) == 2
    assert "no preset" in capsys.readouterr().err


def test_a_shadowing_user_preset_keeps_the_builtin_listed(user_config, capsys):
    save_user_preset(find_preset(DEMO).load(), DEMO)  # e.g. written before this was refused
    both = [p for p in list_presets() if p.name == DEMO]
    assert [p.builtin for p in both] == [False, True] and both[0].shadows
    assert cli(["presets", "list"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(DEMO + " ")]
    assert len(lines) == 2 and "shadows the built-in" in lines[0] and "built-in" in lines[1]
    assert cli(["presets", "delete", DEMO]) == 0  # deleting the user's brings the built-in back
    assert find_preset(DEMO).builtin


# ------------------------------------------------------------------------------------------- app
async def _review(pilot, app) -> None:
    await pilot.pause()
    app.open_wizard(find_preset(DEMO).load(), "x.toml", step=3)
    await app.workers.wait_for_complete()
    await pilot.pause()
    assert isinstance(app.screen, ReviewScreen)


async def _save_as(pilot, app, name: str) -> None:
    await pilot.press("ctrl+s")
    await pilot.pause()
    app.screen.query_one("#answer", Input).value = ""
    await pilot.press(*name, "enter")
    await pilot.pause()


async def test_saving_under_a_builtin_name_asks_and_says_what_happens(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 40)) as pilot:
        await _review(pilot, app)
        await _save_as(pilot, app, DEMO)
        assert isinstance(app.screen, ConfirmDialog)
        text = _dialog_text(app)
        assert "built-in" in text and f"run {DEMO}" in text
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, ReviewScreen)
        assert not (user_config / "presets" / f"{DEMO}.toml").exists()
        await _save_as(pilot, app, DEMO)
        await pilot.press("y")
        await pilot.pause()
        assert (user_config / "presets" / f"{DEMO}.toml").exists()


async def test_saving_over_your_own_preset_asks(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = find_preset(DEMO).load()
    cfg.training.epochs = 9
    save_user_preset(cfg, "mine")
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 40)) as pilot:
        await _review(pilot, app)
        await _save_as(pilot, app, "mine")
        assert isinstance(app.screen, ConfirmDialog) and "replace" in _dialog_text(app).lower()
        await pilot.press("n")
        await pilot.pause()
        assert cfgmod.load(user_config / "presets" / "mine.toml").training.epochs == 9


async def _highlight(pilot, app, label: str, builtin: bool) -> None:
    screen = app.screen
    assert isinstance(screen, StartScreen)
    idx = next(i for i, (kind, p) in enumerate(screen.targets_list)
               if kind == "preset" and p.name == label and p.builtin is builtin)
    screen.query_one(OptionList).highlighted = idx
    await pilot.pause()


async def test_start_screen_deletes_and_renames_user_presets(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_user_preset(find_preset(DEMO).load(), "mine")
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        # A built-in cannot be deleted: a notice, no dialog.
        await _highlight(pilot, app, DEMO, builtin=True)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        # Rename the user preset: a prompt; a built-in's name is refused inline.
        await _highlight(pilot, app, "mine", builtin=False)
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, PromptDialog)
        app.screen.query_one("#answer", Input).value = DEMO
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PromptDialog) and "built-in" in _dialog_text(app)
        app.screen.query_one("#answer", Input).value = "ours"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        assert (user_config / "presets" / "ours.toml").exists()
        assert not (user_config / "presets" / "mine.toml").exists()
        # Delete it: asks first; "n" keeps it, "y" deletes it.
        await _highlight(pilot, app, "ours", builtin=False)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog) and "ours" in _dialog_text(app)
        await pilot.press("n")
        await pilot.pause()
        assert (user_config / "presets" / "ours.toml").exists()
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert not (user_config / "presets" / "ours.toml").exists()
        assert all(p.name != "ours" for k, p in app.screen.targets_list if k == "preset")


async def test_start_screen_tells_a_shadowing_preset_from_the_builtin(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_user_preset(find_preset(DEMO).load(), DEMO)
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        opts = screen.query_one(OptionList)
        labels = [str(opts.get_option_at_index(i).prompt) for i, (k, p) in enumerate(screen.targets_list)
                  if k == "preset" and p.name == DEMO]
        assert len(labels) == 2
        assert sum("shadows the built-in" in lb for lb in labels) == 1


async def test_back_on_the_first_step_asks_when_something_changed(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, ModelStep)
        await pilot.press("escape")  # nothing changed: straight back
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        await pilot.press("n")
        await pilot.pause()
        await type_into(pilot, "data.max_samples", "123")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog) and "discard" in _dialog_text(app).lower()
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, ModelStep)
        assert app.config.data.max_samples == 123
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
