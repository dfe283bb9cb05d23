"""The wizard driven with keys: fill, fix validation errors, assign GPUs, save a preset, export."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Button, DataTable, Input, Static

from speculators_core import config as cfgmod
from speculators_tui.app import SpeculatorsApp
from speculators_tui.screens.review import ReviewScreen
from speculators_tui.screens.start import StartScreen
from speculators_tui.screens.step_gpus import GpuStep
from speculators_tui.screens.step_model import ModelStep
from speculators_tui.screens.step_training import TrainingStep
from tui_fakes import four_gpus, no_gpus, type_into


def error_of(app, dotted: str) -> str:
    return str(app.screen.query_one(f"#f-{dotted.replace('.', '--')} .field-error", Static).render())


def next_disabled(app) -> bool:
    return app.screen.query_one("#next", Button).disabled


async def test_wizard_end_to_end_with_keys(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "chats.jsonl"
    data.write_text('{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}\n')
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, StartScreen)
        await pilot.press("n")  # new configuration
        await pilot.pause()
        assert isinstance(app.screen, ModelStep)
        # Empty target: an error next to the field, Next disabled.
        assert "no target model given" in error_of(app, "model.target")
        assert next_disabled(app)
        await pilot.press("ctrl+n")
        assert isinstance(app.screen, ModelStep)

        # A hub id that is not in the local cache: the default layer ids cannot be known offline.
        await type_into(pilot, "model.target", "acme/not-cached")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "not reachable offline" in error_of(app, "hidden_states.target_layer_ids")
        assert next_disabled(app)
        await type_into(pilot, "model.target", "builtin:tiny-qwen3")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "8 layers" in str(app.screen.query_one("#target-info", Static).render())
        await type_into(pilot, "data.sources", str(data))
        await type_into(pilot, "data.max_samples", "12x")
        assert "expected a whole number" in error_of(app, "data.max_samples")
        assert next_disabled(app)
        await type_into(pilot, "data.max_samples", "100")
        assert error_of(app, "data.max_samples") == ""
        # A validator that needs the target: layer 9 does not exist in an 8-layer model.
        await type_into(pilot, "hidden_states.target_layer_ids", "2, 4, 9")
        assert "out of range" in error_of(app, "hidden_states.target_layer_ids")
        assert next_disabled(app)
        await type_into(pilot, "hidden_states.target_layer_ids", "2, 4, 5, 8")
        await type_into(pilot, "data.seq_length", "512")
        await type_into(pilot, "data.output", str(tmp_path / "out"))
        assert not next_disabled(app), app.screen.blocking()
        await pilot.press("ctrl+n")
        await app.workers.wait_for_complete()
        await pilot.pause()

        # GPUs: the fake probe's four GPUs; roles by keys on the table.
        assert isinstance(app.screen, GpuStep)
        table = app.screen.query_one("#gpu-table", DataTable)
        assert table.row_count == 4
        table.focus()
        table.move_cursor(row=1)
        await pilot.press("s")                     # GPU 1 -> server
        await pilot.press("down", "t")             # GPU 2 -> training
        await pilot.press("down", "t")             # GPU 3 -> training
        await pilot.press("up", "up", "up", "n")   # GPU 0 (busy) -> none
        await pilot.pause()
        assert app.config.hidden_states.gpus == [1]
        assert app.config.training.gpus == [2, 3]
        assert app.config.hidden_states.data_parallel_size == 1
        # Sharing a GPU is an error until allowed.
        table.move_cursor(row=2)
        await pilot.press("s")
        await pilot.pause()
        assert app.config.hidden_states.gpus == [1, 2] and app.config.training.gpus == [3]
        await pilot.press("down", "s")             # GPU 3 -> server: no GPU left for training (CPU)
        await pilot.pause()
        assert app.config.training.gpus == []
        await pilot.press("a")                     # the engine's suggested split
        await pilot.pause()
        assert app.config.hidden_states.gpus and app.config.training.gpus
        assert 0 not in app.config.hidden_states.gpus + app.config.training.gpus  # busy GPU left out
        advice = str(app.screen.query_one("#advice", Static).render())
        assert "GPU 0 is already in use" in advice
        # Inline validation of dp x tp against the server GPUs.
        await type_into(pilot, "hidden_states.data_parallel_size", "3")
        assert "data parallel 3" in error_of(app, "hidden_states.data_parallel_size")
        assert next_disabled(app)
        await type_into(pilot, "hidden_states.data_parallel_size", str(len(app.config.hidden_states.gpus)))
        assert not next_disabled(app), app.screen.blocking()
        await pilot.press("ctrl+n")
        await pilot.pause()

        assert isinstance(app.screen, TrainingStep)
        await type_into(pilot, "training.epochs", "0")
        assert "must be positive" in error_of(app, "training.epochs")
        assert next_disabled(app)
        await type_into(pilot, "training.epochs", "2")
        await type_into(pilot, "training.draft_vocab_size", "4096")  # > the target's 2048
        assert "larger than the target's vocabulary" in error_of(app, "training.draft_vocab_size")
        await type_into(pilot, "training.draft_vocab_size", "1024")
        await type_into(pilot, "training.checkpoint_dir", str(tmp_path / "ckpt"))
        summary = str(app.screen.query_one("#summary", Static).render())
        assert "online" in summary and "2 epoch(s)" in summary
        await pilot.press("ctrl+n")
        await pilot.pause()

        assert isinstance(app.screen, ReviewScreen)
        assert not app.screen.query_one("#launch", Button).disabled
        # Save as preset: a dialog asks the name.
        await pilot.press("ctrl+s")
        await pilot.pause()
        inp = app.screen.query_one("#answer", Input)
        inp.value = ""
        await pilot.press(*"my-tiny", "enter")
        await pilot.pause()
        saved = user_config / "presets" / "my-tiny.toml"
        assert saved.exists()
        again = cfgmod.load(saved)
        assert again.training.epochs == 2 and again.data.max_samples == 100
        assert again.hidden_states.target_layer_ids == [2, 4, 5, 8]
        # Export the script.
        await pilot.press("ctrl+e")
        await pilot.pause()
        inp = app.screen.query_one("#answer", Input)
        inp.value = str(tmp_path / "run.sh")
        out = tmp_path / "run.sh"
        await pilot.press("enter")
        await pilot.pause()
        assert out.exists() and out.stat().st_mode & 0o111
        from speculators_core.plan.stages import build_stages
        from speculators_core.plan.script import render_script
        from speculators_core.target import try_load_target

        assert out.read_text() == render_script(build_stages(again, try_load_target(again.model.target)[0]),
                                                again, str(saved))
        # Back keeps the values.
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, TrainingStep)
        assert app.screen.query_one("#f-training--epochs Input", Input).value == "2"


async def test_no_gpu_offers_the_cpu_path(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from speculators_core.config.presets import find_preset

    app = SpeculatorsApp(gpu_probe=no_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        cfg = find_preset("qwen3-8b-sharegpt-online-5k").load()
        cfg.model.target = "builtin:tiny-qwen3"
        cfg.hidden_states.target_layer_ids = None
        app.open_wizard(cfg, "test", step=1)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, GpuStep)
        status = str(app.screen.query_one("#gpu-status", Static).render())
        assert "No GPU" in status and "libnvidia-ml.so" in status and "CPU demo path" in status
        assert not app.screen.query_one("#gpu-table").display
        assert "no GPU was found" in str(app.screen.query_one("#advice", Static).render())
        await pilot.click("#cpu-path")
        await pilot.pause()
        hs = app.config.hidden_states
        assert hs.gpus == [] and app.config.training.gpus == [] and hs.engine == "hf"
        assert "on the CPU" in str(app.screen.query_one("#summary", Static).render())
        assert not next_disabled(app)


async def test_help_and_command_palette(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        from speculators_tui.screens.help import HelpScreen

        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        # The palette's "Open preset" entry opens the wizard on that preset.
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"open preset tiny-cpu-demo-regenerate")  # the longer name: "tiny-cpu-demo" matches both
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ModelStep)
        assert app.config.run.name == "tiny-cpu-demo-regenerate"
        assert Path(app.config_source).name == "tiny-cpu-demo-regenerate.toml"
        dark = app.current_theme.dark
        await pilot.press("ctrl+t")
        assert app.current_theme.dark is not dark


async def test_a_failing_gpu_probe_is_reported(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def broken():
        raise OSError("NVML exploded")

    app = SpeculatorsApp(gpu_probe=broken, runs_dirs=[])
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        from speculators_core.config.presets import find_preset

        app.open_wizard(find_preset("tiny-cpu-demo").load(), "test", step=1)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "NVML exploded" in str(app.screen.query_one("#gpu-status", Static).render())


async def test_gpu_roles_by_mouse(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from speculators_core.config.presets import find_preset

    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        app.open_wizard(find_preset("qwen3-8b-sharegpt-online-5k").load(), "test", step=1)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.config.hidden_states.gpus == [0, 1] and app.config.training.gpus == [2, 3]
        # Row of GPU 3 (header is line 0): a click cycles none -> server -> training -> none.
        await pilot.click("#gpu-table", offset=(3, 4))
        await pilot.pause()
        assert app.config.training.gpus == [2] and 3 not in app.config.hidden_states.gpus  # training -> none
        await pilot.click("#gpu-table", offset=(3, 4))
        await pilot.pause()
        assert app.config.hidden_states.gpus == [0, 1, 3]
        assert app.config.hidden_states.data_parallel_size == 3  # follows the server GPUs (tp 1)
