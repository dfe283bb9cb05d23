"""The wizard on a machine without a GPU, planning a run elsewhere: declared hardware "2 nodes x 8
GPUs x 80 GB" -> the suggested split (vLLM on one node, training on the other) -> the Slurm export."""

from __future__ import annotations

import subprocess

from textual.widgets import DataTable, Input, Static

from speculators_tui.app import SpeculatorsApp
from speculators_tui.screens.review import ReviewScreen
from speculators_tui.screens.step_gpus import GpuStep
from speculators_tui.screens.step_training import TrainingStep
from tui_fakes import no_gpus, type_into

PRESET = "qwen3-8b-sharegpt-online-5k"


async def declare_two_nodes(pilot) -> None:
    """Open the wizard's GPU step on the reference recipe, declare 2 x 8 x 80 GB, press `a`."""
    from speculators_core.config.presets import find_preset

    app = pilot.app
    await pilot.pause()
    app.open_wizard(find_preset(PRESET).load(), f"{PRESET}.toml", step=1)
    await app.workers.wait_for_complete()
    await pilot.pause()
    assert isinstance(app.screen, GpuStep)
    await type_into(pilot, "cluster.nodes", "2")
    await type_into(pilot, "cluster.gpus_per_node", "8")
    await type_into(pilot, "cluster.gpu_memory_gb", "80")
    app.screen.query_one("#gpu-table", DataTable).focus()
    await pilot.press("a")
    await app.workers.wait_for_complete()
    await pilot.pause()
    app.clear_notifications()  # the toast's timing is not part of the screen
    await pilot.pause()


async def test_declared_cluster_gets_a_split_and_a_slurm_export(user_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = SpeculatorsApp(gpu_probe=no_gpus, runs_dirs=[])
    async with app.run_test(size=(110, 50)) as pilot:
        await pilot.pause()
        from speculators_core.config.presets import find_preset

        app.open_wizard(find_preset(PRESET).load(), f"{PRESET}.toml", step=1)
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, GpuStep)
        # no local GPU: the declared-hardware fields are offered, the split key is not yet
        assert screen.query_one("#declared-hardware").display
        assert "Declare their GPUs below" in str(screen.query_one("#gpu-status", Static).render())
        assert app.screen.check_action("suggest", ()) is False
        await type_into(pilot, "cluster.nodes", "2")
        # two nodes but one training node and no serving node: the split does not add up yet
        assert "training_nodes 1 + serving_nodes 0" in str(
            screen.query_one("#f-cluster--nodes .field-error", Static).render())
        await type_into(pilot, "cluster.gpus_per_node", "8")
        await type_into(pilot, "cluster.gpu_memory_gb", "80")
        assert "Declared hardware" in str(screen.query_one("#gpu-status", Static).render())
        table = screen.query_one("#gpu-table", DataTable)
        assert table.display and table.row_count == 8
        assert "80 GiB" in str(table.get_row_at(0)[3])
        table.focus()
        await pilot.press("a")
        await pilot.pause()
        cfg = app.config
        assert (cfg.cluster.nodes, cfg.cluster.serving_nodes, cfg.cluster.training_nodes) == (2, 1, 1)
        assert cfg.hidden_states.gpus == list(range(8)) and cfg.hidden_states.data_parallel_size == 8
        assert cfg.training.gpus == list(range(8))
        assert cfg.cluster.gpus_per_node == 8 and cfg.cluster.gpu_memory_gb == 80.0
        summary = str(screen.query_one("#summary", Static).render())
        assert "1 serving node(s)" in summary and "1 training node(s)" in summary
        advice = str(screen.query_one("#advice", Static).render())
        assert "2 nodes split about evenly" in advice
        assert "shared by the server and training" not in advice  # same indices, different nodes
        assert "server+train" in str(table.get_row_at(0)[1])
        assert screen.blocking() == []
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, TrainingStep)
        await pilot.press("ctrl+n")
        await app.workers.wait_for_complete()
        await pilot.pause()
        review = app.screen
        assert isinstance(review, ReviewScreen)
        assert review.slurm and "#SBATCH --nodes=2" in review.script
        assert "sbatch" in review.query_one("#script-pane").border_title
        assert review.query_one("#launch").disabled  # the servers belong on the serving node, not here
        assert "export the sbatch script" in str(review.query_one("#nav-note", Static).render())
        await pilot.press("ctrl+e")
        await pilot.pause()
        answer = app.screen.query_one("#answer", Input)
        assert answer.value.endswith(".sbatch")
        out = tmp_path / "cluster.sbatch"
        answer.value = str(out)
        await pilot.press("enter")
        await pilot.pause()
    text = out.read_text()
    assert subprocess.run(["bash", "-n", str(out)], capture_output=True).returncode == 0
    assert "#SBATCH --gpus-per-node=8" in text and "SERVING_NODES=1" in text and "TRAINING_NODES=1" in text
    assert "--data-parallel-size 8" in text and "--nproc_per_node 8" in text


def test_snapshot_declared_cluster_split(snap_compare, user_config, offline_env):
    assert snap_compare(SpeculatorsApp(gpu_probe=no_gpus, runs_dirs=[]), run_before=declare_two_nodes,
                        terminal_size=(100, 50))


def test_snapshot_declared_cluster_split_light(snap_compare, user_config, offline_env):
    async def light(pilot) -> None:
        await declare_two_nodes(pilot)
        pilot.app.theme = "textual-light"
        await pilot.pause()

    assert snap_compare(SpeculatorsApp(gpu_probe=no_gpus, runs_dirs=[]), run_before=light, terminal_size=(100, 50))
