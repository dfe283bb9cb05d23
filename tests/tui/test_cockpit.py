"""Issue #18 items 4, 6 and 7 driven with keys: chart reading aids, the banner and the fix, the
rough edges a first-time user hit, and the nvitop-like GPU tab."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import Button, Input, Static, TabbedContent

from speculators_core import config as cfgmod
from speculators_tui.app import SpeculatorsApp
from speculators_tui.data.fields import parse_int_list, parse_text
from speculators_tui.screens.dashboard import DashboardScreen
from speculators_tui.screens.help import HelpScreen
from speculators_tui.screens.review import ReviewScreen
from speculators_tui.screens.start import StartScreen
from speculators_tui.screens.step_gpus import GpuStep
from speculators_tui.screens.step_model import ModelStep
from speculators_tui.screens.step_training import TrainingStep
from speculators_tui.widgets.field_input import FieldInput, TickBox
from speculators_tui.widgets.line_chart import LineChart
from tui_fakes import four_gpus, type_into, write_run_dir

ROOT = Path(__file__).resolve().parents[2]


async def settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def error_of(app, dotted: str) -> str:
    return str(app.screen.query_one(f"#f-{dotted.replace('.', '--')} .field-error", Static).render())


def demo_config(tmp_path: Path) -> cfgmod.RunConfig:
    cfg = cfgmod.RunConfig()
    cfg.model.target = "builtin:tiny-qwen3"
    cfg.data.sources = ["builtin:demo-chat"]
    cfg.hidden_states.engine = "hf"
    cfg.hidden_states.gpus, cfg.training.gpus = [], []
    cfg.training.draft_vocab_size = 1024  # the tiny target's vocabulary is 2048
    return cfg


# -- item 6: rough edges ------------------------------------------------------------------------------
async def test_enter_on_a_fresh_start_screen_opens_the_wizard(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, StartScreen)
        assert app.screen.query_one("#choices").highlighted == 0
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ModelStep)


def test_int_lists_accept_brackets_and_ranges():
    assert parse_int_list("[2, 16, 29, 32]") == [2, 16, 29, 32]
    assert parse_int_list("[0,1,2,3]") == [0, 1, 2, 3] == parse_int_list("0-3") == parse_int_list("0 1 2 3")
    assert parse_int_list("[0-2, 5]") == [0, 1, 2, 5]
    assert parse_text("hidden_states.target_layer_ids", "") is None
    for bad, says in (("[2", "unbalanced brackets"), ("3-1", "runs backwards"), ("0-x", "a range like 0-3")):
        with pytest.raises(ValueError, match=says):
            parse_int_list(bad)


async def test_layer_ids_and_gpu_fields_take_lists_and_ranges(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        cfg = demo_config(tmp_path)
        cfg.model.target = "acme/not-cached"  # layer ids are not checked against a config
        app.open_wizard(cfg, "")
        await settle(pilot)
        await type_into(pilot, "hidden_states.target_layer_ids", "[2, 16, 29, 32]")
        assert "expected" not in error_of(app, "hidden_states.target_layer_ids")
        assert app.config.hidden_states.target_layer_ids == [2, 16, 29, 32]
        app.screen.action_next()
        await settle(pilot)
        assert isinstance(app.screen, GpuStep)
        await type_into(pilot, "hidden_states.gpus", "[0,1]")
        await type_into(pilot, "training.gpus", "2-3")
        assert app.config.hidden_states.gpus == [0, 1] and app.config.training.gpus == [2, 3]
        assert error_of(app, "training.gpus") == ""
        await type_into(pilot, "training.gpus", "[2")
        assert "unbalanced brackets" in error_of(app, "training.gpus")


async def test_port_rule_is_one_rule_with_one_message(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for port, ok in ((80, False), (1023, False), (1024, True), (65535, True), (70000, False)):
        cfg = demo_config(tmp_path)
        cfg.hidden_states.port = port
        probs = [p for p in cfgmod.validate(cfg) if p.field == "hidden_states.port"]
        assert (not probs) is ok, (port, probs)
        if not ok:
            assert "1024..65535" in probs[0].fix
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        app.open_wizard(demo_config(tmp_path), "", step=1)
        await settle(pilot)
        await type_into(pilot, "hidden_states.port", "80")
        assert "privileged" in error_of(app, "hidden_states.port") and "1024..65535" in error_of(app, "hidden_states.port")
        assert app.screen.query_one("#next", Button).disabled


async def test_allow_sharing_tick_box_is_empty_when_off(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        app.open_wizard(demo_config(tmp_path), "", step=1)
        await settle(pilot)
        box = app.screen.query_one("#f-run--allow_gpu_sharing", FieldInput).query_one(TickBox)
        assert not box.value and "X" not in str(box.render()) and "✔" not in str(box.render())
        box.focus()
        await pilot.press("space")
        await pilot.pause()
        assert box.value and "✔" in str(box.render()) and app.config.run.allow_gpu_sharing


async def test_missing_data_path_warns_in_the_wizard_and_export_but_blocks_launch(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    cfg = demo_config(tmp_path)
    cfg.data.sources = ["/cluster/data/chats.jsonl"]  # exists only where the exported script runs
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        app.open_wizard(cfg, "")
        await settle(pilot)
        assert "on this machine" in error_of(app, "data.sources") and error_of(app, "data.sources").startswith("⚠")
        assert not app.screen.query_one("#next", Button).disabled, app.screen.blocking()
        app.open_wizard(cfg, "", step=3)
        await settle(pilot)
        scr = app.screen
        assert isinstance(scr, ReviewScreen)
        assert scr.query_one("#launch", Button).disabled and not scr.query_one("#export", Button).disabled
        assert "Export works" in str(scr.query_one("#nav-note", Static).render())
    toml = tmp_path / "cluster.toml"
    cfgmod.save(cfg, toml)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "speculators_tui", "export", str(toml)], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert "warning: " in out.stderr and "/cluster/data/chats.jsonl" in out.stdout


async def test_checkpoint_dir_follows_the_output_dir_until_set(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        app.open_wizard(demo_config(tmp_path), "")
        await settle(pilot)
        await type_into(pilot, "data.output", "./exp1")
        assert app.config.training.checkpoint_dir == "./exp1/checkpoints"
        app.open_wizard(app.config, "", step=2)
        await settle(pilot)
        assert isinstance(app.screen, TrainingStep)
        shown = app.screen.query_one("#f-training--checkpoint_dir", FieldInput).query_one(Input).value
        assert shown == "./exp1/checkpoints"
        await type_into(pilot, "training.checkpoint_dir", "/fast/ckpts")  # set by the user: kept
        app.screen.app.pop_screen()
        app.screen.app.pop_screen()
        await settle(pilot)
        assert isinstance(app.screen, ModelStep)
        await type_into(pilot, "data.output", "./exp2")
        assert app.config.training.checkpoint_dir == "/fast/ckpts"


async def test_saved_preset_keeps_working_from_another_directory(user_config, tmp_path, monkeypatch):
    work = tmp_path / "project"
    (work / "data").mkdir(parents=True)
    (work / "data" / "chats.jsonl").write_text('{"conversations": []}\n')
    monkeypatch.chdir(work)
    cfg = demo_config(tmp_path)
    cfg.data.sources = ["data/chats.jsonl", "builtin:demo-chat"]
    cfg.data.output = "./out"
    cfg.training.checkpoint_dir = "./out/checkpoints"
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        app.open_wizard(cfg, "", step=3)
        await settle(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        prompt = app.screen.query_one(Input)
        prompt.value = "mine"
        await pilot.press("enter")
        await settle(pilot)
    monkeypatch.chdir(tmp_path)  # elsewhere
    from speculators_core import find_preset

    loaded = find_preset("mine").load()
    assert loaded.data.sources == [str(work / "data" / "chats.jsonl"), "builtin:demo-chat"]
    assert loaded.data.output == str(work / "out")
    assert loaded.training.checkpoint_dir == str(work / "out" / "checkpoints")
    assert loaded.model.target == "builtin:tiny-qwen3" and loaded.run.dir == str(work / "runs")
    assert not [p for p in cfgmod.validate(loaded) if p.field.startswith("data.sources")]


async def test_after_a_stop_the_serve_text_and_palette_follow(user_config, tmp_path):
    run = write_run_dir(tmp_path / "live", steps=5, finished=False)

    def fake_stop(run_dir):
        st = json.loads((run_dir / "state.json").read_text())
        st["status"] = "stopped"
        (run_dir / "state.json").write_text(json.dumps(st))

    app = SpeculatorsApp(run_dir=run, gpu_probe=four_gpus, runs_dirs=[], stop_run=fake_stop)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        scr = app.screen
        from speculators_tui.commands import ActionsProvider

        names = lambda: [n for n, _, _ in ActionsProvider(scr)._commands()]  # noqa: E731
        assert "Stop the run" in names()
        await pilot.press("4")
        await pilot.pause()
        assert "appears here when the run ends" in str(scr.query_one("#serve", Static).render())
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        await settle(pilot)
        assert scr.watcher.status == "stopped"
        serve = str(scr.query_one("#serve", Static).render())
        assert "stopped before it saved a checkpoint" in serve and "appears here" not in serve
        assert "Stop the run" not in names()


async def test_serve_command_is_copied_with_y(user_config, fabricated_run):
    app = SpeculatorsApp(run_dir=fabricated_run, gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.screen.check_action("copy_serve", ()) is False  # metrics tab: not offered
        await pilot.press("4")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert app.clipboard == f"vllm serve {fabricated_run / 'checkpoints' / 'checkpoint_best'}"


async def test_narrow_footer_shows_whole_keys(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.open_wizard(demo_config(tmp_path), "", step=3)
        await settle(pilot)
        keys = list(app.screen.query("FooterKey"))
        assert keys and keys[0].description == "Back"
        for k in keys:  # every key and its label inside the 80 columns (not "esc Ba")
            assert k.region.right <= 80, (k.description, k.region)
        assert app.screen.query_one("AppFooter").compact


async def test_log_sub_tabs_by_keyboard(user_config, fabricated_run):
    app = SpeculatorsApp(run_dir=fabricated_run, gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        tabs = app.screen.query_one("#log-tabs", TabbedContent)
        assert tabs.active == "log-trainer"
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert tabs.active == "log-server"
        assert "listening" in "".join(app.screen.query_one("#log-view-server").lines)
        await pilot.press("left_square_bracket", "left_square_bracket")
        await pilot.pause()
        assert tabs.active == "log-supervisor"  # wraps around


async def test_help_is_contextual_and_says_esc_closes_it(user_config, fabricated_run):
    app = SpeculatorsApp(run_dir=fabricated_run, gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert "esc" in str(app.screen.query_one("#help-close", Static).render())
        from speculators_tui.screens.help import keys_table

        rows = [str(c) for c in keys_table(app.screen_stack[-2]).columns[0]._cells]
        titles = [r for r in rows if r.startswith(("This screen", "Everywhere", "Start", "Review"))]
        assert titles[0] == "This screen: Dashboard" and titles[1] == "Everywhere"
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)


async def test_theme_is_remembered(tmp_path, isolated_xdg_config):
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "textual-dark"
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.theme == "textual-light"
    saved = isolated_xdg_config / "speculators-tui" / "settings.json"
    assert json.loads(saved.read_text()) == {"theme": "textual-light"}
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "textual-light"
    saved.write_text("{not json")  # a broken file means the default, never a crash
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "textual-dark"


# -- item 4: charts, banner, fix ----------------------------------------------------------------------
def test_line_chart_reading_aids():
    c = LineChart("loss")
    pts = [(float(i), 10.0 / i) for i in range(1, 101)]
    c.series = [("train", pts, "cyan")]
    c.set_view(smooth=0.0)
    assert c.values_at(50.0)[0][1] == pytest.approx(0.2)
    c.set_view(smooth=0.9)  # EMA over the whole series: lags behind the raw value
    assert c.values_at(50.0)[0][1] > 0.2
    c.set_view(smooth=0.0, last_n=20)
    assert [p[0] for p in c.drawn()[0][1]][:1] == [81.0]
    axis = "".join(t.plain for t in c.render_lines_text(60, 10)[-1:])
    assert axis.strip().startswith("└81") and axis.endswith("100 step")
    c.set_view(last_n=None, log_y=True)
    lines = [t.plain for t in c.render_lines_text(60, 10)]
    assert "log y" in lines[-1]
    top, bottom = float(lines[0].split("┤")[0]), float(lines[-2].split("┤")[0])
    assert 10 < top < 15 and 0.06 < bottom < 0.1  # 10/1 and 10/100, padded by a share of the decades
    c.set_view(log_y=False, cursor_x=50.0)
    assert "[b]50[/b]" in c.legend() and "train 0.20" in c.legend()
    assert any("│" in t.plain[8:] for t in c.render_lines_text(60, 10)[:-1])


async def test_chart_keys_and_mouse_hover(user_config, fabricated_run):
    app = SpeculatorsApp(run_dir=fabricated_run, gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        scr = app.screen
        loss = scr.query_one("#chart-loss", LineChart)
        acc = scr.query_one("#chart-acc", LineChart)
        assert loss.smooth == acc.smooth == 0.6
        await pilot.press("m")
        assert loss.smooth == acc.smooth == 0.8 and "smoothing 0.8" in str(scr.query_one("#chart-controls").render())
        await pilot.press("g")
        assert loss.log_y and not acc.log_y
        await pilot.press("z")  # 60 steps: the first zoom that shows fewer is the last 50
        assert loss.last_n == acc.last_n == 50
        await pilot.press("z")
        assert loss.last_n == 20 and "last 20" in str(scr.query_one("#chart-controls").render())
        await pilot.press("z")  # back to every step
        assert loss.last_n is None
        await pilot.pause()
        await pilot.press("comma")
        assert loss.cursor_x == 60.0 and "[b]60[/b]" in str(loss.border_subtitle)
        await pilot.press("comma")
        assert loss.cursor_x < 60.0 and acc.cursor_x == loss.cursor_x
        await pilot.press("c")
        assert loss.cursor_x is None
        # The mouse over the plot moves the cursor to the step under it.
        await pilot.hover("#chart-loss", offset=(loss.region.width // 2, 3))
        await pilot.pause()
        assert loss.cursor_x is not None and 10 < loss.cursor_x < 50
        assert "train" in str(loss.border_subtitle)


async def test_banner_expands_to_its_full_text(user_config, tmp_path):
    run = write_run_dir(tmp_path / "long")
    long = "training waits for hidden states 45% of each step; " * 6 + "THE-END"
    lines = (run / "events.jsonl").read_text().splitlines()
    ev = json.loads(lines[-1])
    ev["message"] = long
    (run / "events.jsonl").write_text("\n".join(lines[:-1] + [json.dumps(ev)]) + "\n")
    app = SpeculatorsApp(run_dir=run, gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        banner = app.screen.query_one("#banner", Static)
        folded = banner.region.height
        assert "e" in [k.key for k in app.screen.query("FooterKey")]
        await pilot.press("e")
        await pilot.pause()
        assert banner.has_class("expanded") and banner.region.height > folded
        assert "THE-END" in app.export_screenshot()  # the whole message is on screen, wrapped
        await pilot.press("e")
        await pilot.pause()
        assert banner.region.height == folded
        await pilot.click("#banner")  # a click does the same
        await pilot.pause()
        assert banner.has_class("expanded")


async def test_apply_fix_shows_progress_then_the_changed_keys(user_config, fabricated_run):
    app = SpeculatorsApp(run_dir=fabricated_run, gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        scr = app.screen
        scr.action_apply_fix()  # what `f` runs; the note is shown before the worker's answer is handled
        assert scr.fix_note.startswith("⏳") and "applying the fix" in str(scr.query_one("#banner").render())
        await settle(pilot)
        assert isinstance(app.screen, GpuStep)
        assert scr.fix_note.startswith("✔") and "hidden_states.gpus: [0] -> [0, 1, 3]" in scr.fix_note
        assert "training.gpus: [1] -> [2]" in scr.fix_note
        assert "hidden_states.data_parallel_size: 1 -> 3" in scr.fix_note
        notes = [n.message for n in app._notifications]
        assert any("hidden_states.gpus: [0] -> [0, 1, 3]" in m for m in notes)


# -- item 7: the GPU tab ------------------------------------------------------------------------------
async def test_gpu_tab_shows_names_power_temperature_and_processes(user_config, fabricated_run):
    app = SpeculatorsApp(run_dir=fabricated_run, gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        text = str(app.screen.query_one("#gpu-panel", Static).render())
        assert text.count("NVIDIA H100 80GB HBM3") == 2
        assert "78°C" in text and "600 W" in text and "50°C" in text and "300 W" in text
        lines = text.splitlines()
        vllm = next(ln for ln in lines if "4101" in ln)
        assert "vllm" in vllm and "64.5 GiB" in vllm and "◆ server" in vllm
        other = next(ln for ln in lines if "777" in ln)
        assert "not this run" in other
        train = next(ln for ln in lines if "4230" in ln)
        assert "◆ train" in train
        assert all(len(ln) <= 98 for ln in lines), max(lines, key=len)
