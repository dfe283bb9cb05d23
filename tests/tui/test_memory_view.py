"""The predicted memory (memory_fit) beside each GPU's memory in the wizard's GPU step and review."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from speculators_core.target import TargetInfo
from speculators_tui.app import SpeculatorsApp
from speculators_tui.screens.review import ReviewScreen
from tui_fakes import four_gpus

QWEN3_8B = TargetInfo("Qwen/Qwen3-8B", None, {
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 4096, "num_hidden_layers": 36,
    "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 12288,
    "vocab_size": 151936, "rope_theta": 1000000, "tie_word_embeddings": False, "torch_dtype": "bfloat16"})


def memory_cell(app, gpu: int) -> str:
    table = app.screen.query_one("#gpu-table", DataTable)
    return str(table.get_row(str(gpu))[3])


async def test_gpu_step_and_review_show_the_predicted_need(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from speculators_core.config.presets import find_preset

    app = SpeculatorsApp(gpu_probe=four_gpus, runs_dirs=[])
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.pause()
        app.open_wizard(find_preset("qwen3-8b-sharegpt-online-5k").load(), "test", step=1)
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.target = QWEN3_8B  # the hub is out of reach here: the target's config as if it were cached
        app.screen.revalidate()
        await pilot.pause()
        assert app.config.training.gpus == [2, 3]
        train_cell, serve_cell = memory_cell(app, 2), memory_cell(app, 0)
        assert "/80 GiB · needs ~" in train_cell and "needs ~" in serve_cell
        need = int(train_cell.split("needs ~")[1])
        assert 10 <= need <= 40                     # the reference recipe on an H100: fits with margin
        app.config.training.total_seq_len = 131072  # far too long a row for 80 GB
        app.screen.revalidate()
        await pilot.pause()
        assert int(memory_cell(app, 2).split("needs ~")[1]) > 80
        app.push_screen(ReviewScreen())
        await pilot.pause()
        summary = str(app.screen.query_one("#summary", Static).render())
        assert "memory: trainer: ~" in summary and "GPU 2 (train)" in summary and "DOES NOT FIT" in summary
        problems = str(app.screen.query_one("#problems", Static).render())
        assert "predicted trainer peak" in problems
