"""`[cluster]` without processes: validation (each problem names its field and fix), the plan's
multi-node launcher and endpoints, the Slurm script's shapes, declared hardware, the shared-fs check."""

from __future__ import annotations

import subprocess
import sys

import pytest

from speculators_core.config import ConfigError, RunConfig, dumps, loads, validate
from speculators_core.config.cluster import split_endpoint
from speculators_core.plan.slurm import render_slurm
from speculators_core.plan.stages import build_stages
from speculators_core.runs.gpu import GpuInfo, GpuProbe
from speculators_core.runs.hardware import (declared_gpus, gpu_memory_for_plan, plan_gpus, plan_warnings,
                                            suggest_cluster_split)


def _cfg() -> RunConfig:
    cfg = RunConfig()
    cfg.model.target = "builtin:tiny-qwen3"
    cfg.data.sources = ["builtin:demo-chat"]
    cfg.hidden_states.engine = "hf"
    cfg.hidden_states.gpus, cfg.training.gpus = [], []
    cfg.hidden_states.target_layer_ids = [2, 4, 8]
    return cfg


def _problems(cfg: RunConfig, prefix: str = "cluster.") -> dict[str, object]:
    return {p.field: p for p in validate(cfg) if p.field.startswith(prefix)}


def test_one_machine_needs_no_cluster_section():
    cfg = _cfg()
    assert _problems(cfg) == {}
    assert "[cluster]" not in dumps(cfg)


def test_cluster_problems_name_the_field_and_the_fix(tmp_path):
    cfg = loads('[cluster]\nnodes = 3\ntraining_nodes = 2\ngpus_per_node = 8\ntransport = "mooncake"\n'
                'rdzv_endpoint = "host:99999"\nserver_endpoints = ["node1:8000"]\n', "c.toml")
    p = _problems(cfg)
    assert "training_nodes 2 + serving_nodes 0 = 2" in p["cluster.nodes"].message
    assert "cluster.nodes = 2" in p["cluster.nodes"].fix and p["cluster.nodes"].where == "c.toml:2"
    assert "both" in p["cluster.gpu_memory_gb"].message
    assert "not a TCP port" in p["cluster.rdzv_endpoint"].message
    assert "http" in p["cluster.server_endpoints[0]"].fix
    assert p["cluster.transport"].severity == "error" and "shared-fs" in p["cluster.transport"].fix
    # several nodes: the shared filesystem is required and explained
    shared = p["cluster.shared_dir"]
    assert shared.severity == "warning" and "hidden_states.storage_dir" in shared.message
    assert "marker file" in shared.message
    cfg.cluster.shared_dir = str(tmp_path)
    outside = {q.field: q for q in validate(cfg) if "shared_dir" in q.message}
    assert {"hidden_states.storage_dir", "data.output", "training.checkpoint_dir"} <= set(outside)


def test_declared_gpu_indices_and_per_node_sharing():
    cfg = _cfg()
    cfg.cluster.gpus_per_node, cfg.cluster.gpu_memory_gb = 4, 80.0
    cfg.training.gpus = [3, 4]
    assert "0..3" in _problems(cfg, "training.gpus")["training.gpus"].message
    cfg.training.gpus = [0, 1]
    cfg.hidden_states.gpus = [0, 1]
    assert "training.gpus" in _problems(cfg, "training.gpus")  # one node: shared GPUs
    cfg.cluster.nodes, cfg.cluster.serving_nodes = 2, 1
    assert "training.gpus" not in _problems(cfg, "training.gpus")  # other nodes: not shared
    assert not [w for w in plan_warnings(cfg, declared_gpus(cfg), None) if "shared" in w]


@pytest.mark.parametrize("text, expected", [("n1:29500", ("n1", 29500)), ("n1", ("n1", 29500)),
                                            ("[fd00::1]:1234", ("fd00::1", 1234))])
def test_split_endpoint(text, expected):
    assert split_endpoint(text) == expected


def test_train_launcher_single_and_multi_node():
    cfg = _cfg()
    train = build_stages(cfg, environ={})[-1]
    assert train.argv[1:3] == ["-m", "speculators_core.train"]
    cfg.training.cpu_processes = 2
    assert "--standalone" in build_stages(cfg, environ={})[-1].argv
    cfg.cluster.nodes = cfg.cluster.training_nodes = 2
    with pytest.raises(ConfigError, match="cluster.rdzv_endpoint"):
        build_stages(cfg, environ={})
    cfg.cluster.rdzv_endpoint, cfg.cluster.node_rank = "n1:29400", 1
    stages = build_stages(cfg, environ={})
    argv = stages[-1].argv
    assert "--standalone" not in argv
    assert argv[argv.index("--nnodes") + 1: argv.index("--nnodes") + 10] == [
        "2", "--node-rank", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", "n1:29400", "--rdzv-id", "eagle3"]
    assert [s.name for s in stages] == ["server", "train"]  # node 1 leaves preparation to node 0


def test_external_servers_are_waited_on_and_used_by_every_stage():
    cfg = _cfg()
    cfg.training.mode = "offline"
    cfg.cluster.server_endpoints = ["http://a:8000/v1", "http://b:8001/v1"]
    stages = {s.name: s for s in build_stages(cfg, environ={})}
    assert "server" not in stages
    assert stages["wait"].argv[3:5] == ["http://a:8000/health", "http://b:8001/health"]
    gen = stages["generate"].argv
    assert [gen[i + 1] for i, a in enumerate(gen) if a == "--vllm-endpoint"] == cfg.cluster.server_endpoints
    assert not stages["generate"].needs_server and "--vllm-endpoint" not in stages["train"].argv


def test_wait_health_waits_on_every_url():
    from tests.vllm_fixtures import free_port

    r = subprocess.run([sys.executable, "-m", "speculators_core.wait_health", f"http://127.0.0.1:{free_port()}/health",
                        f"http://127.0.0.1:{free_port()}/health", "--timeout", "1"], capture_output=True, text=True)
    assert r.returncode == 1 and "not healthy" in r.stderr


@pytest.mark.parametrize("mode, serving, training", [("online", 0, 1), ("offline", 1, 2), ("hybrid", 2, 1)])
def test_slurm_script_shapes_parse(tmp_path, mode, serving, training):
    cfg = _cfg()
    cfg.training.mode = mode
    c = cfg.cluster
    c.serving_nodes, c.training_nodes, c.nodes = serving, training, serving + training
    cfg.hidden_states.api_key_env = "HS_KEY"
    script = render_slurm(cfg, environ={})
    path = tmp_path / "job.sbatch"
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    assert f"#SBATCH --nodes={serving + training}" in script
    assert '"${HS_KEY:?set HS_KEY in the job environment}"' in script  # a reference, never a value
    assert ("--node-rank" in script) == (training > 1)
    if mode == "offline":  # the servers stop before training
        assert script.index("stop_servers\n") < script.index("# train:")
    assert ("speculators_core.shared_fs" in script) == (serving > 0 or training > 1)


def test_declared_hardware_feeds_planning():
    cfg = _cfg()
    local = GpuProbe([GpuInfo(0, "local", 24 * 1024, 0, None, None, None)])
    assert gpu_memory_for_plan(cfg, local) == [24.0]
    assert plan_gpus(cfg, GpuProbe([], "no GPU: none")) == []
    cfg.cluster.nodes, cfg.cluster.gpus_per_node, cfg.cluster.gpu_memory_gb = 2, 8, 80.0
    assert gpu_memory_for_plan(cfg, local) == [80.0] * 8
    cfg.hidden_states.engine = "vllm"
    advice = suggest_cluster_split(plan_gpus(cfg, local), None, cfg)
    assert (advice.serving_nodes, advice.training_nodes) == (1, 1)
    assert advice.server_gpus == advice.training_gpus == list(range(8)) and advice.data_parallel_size == 8
    cfg.cluster.nodes = 1
    one = suggest_cluster_split(plan_gpus(cfg, local), None, cfg)
    assert (one.serving_nodes, one.training_nodes) == (0, 1) and one.server_gpus == [0, 1, 2, 3]


def test_shared_fs_marker(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "speculators_core.shared_fs", *args], capture_output=True,
                              text=True)

    shared, local = tmp_path / "shared", tmp_path / "node-local"
    assert run("write", str(shared), "job1").returncode == 0
    ok = run("check", str(shared), "job1", "--timeout", "0")
    assert ok.returncode == 0 and "is shared" in ok.stdout
    bad = run("check", str(local), "job1", "--timeout", "0")  # another node's directory of the same name
    assert bad.returncode == 1 and "not shared" in bad.stderr and "cluster.shared_dir" in bad.stderr
    assert run("remove", str(shared), "job1").returncode == 0 and not list(shared.iterdir())


def test_export_slurm_needs_no_rendezvous_endpoint(tmp_path, capsys):
    """Several training nodes: `run` and the bash export need cluster.rdzv_endpoint (validate warns);
    the Slurm export takes the first training node of the allocation."""
    from speculators_core.config import save
    from speculators_tui.cli import main

    cfg = _cfg()
    cfg.cluster.nodes, cfg.cluster.serving_nodes, cfg.cluster.training_nodes = 2, 0, 2
    toml = save(cfg, tmp_path / "c.toml")
    assert main(["export", str(toml), "--format", "slurm"]) == 0
    out = capsys.readouterr().out
    assert '--rdzv-endpoint "$RDZV_HOST":29500' in out and "#SBATCH --nodes=2" in out
    assert main(["export", str(toml)]) == 2  # bash: this machine's commands need the endpoint
    assert "cluster.rdzv_endpoint" in capsys.readouterr().err


def test_serving_nodes_without_urls_have_no_local_plan():
    cfg = _cfg()
    cfg.cluster.nodes, cfg.cluster.serving_nodes = 2, 1
    with pytest.raises(ConfigError, match="--format slurm"):
        build_stages(cfg, environ={})
    assert "#SBATCH --nodes=2" in render_slurm(cfg, environ={})
    cfg.cluster.server_endpoints = ["http://node0:8000/v1"]
    assert [s.name for s in build_stages(cfg, environ={})] == ["assets", "wait", "prepare", "train"]
