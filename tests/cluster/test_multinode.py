"""Multi-node training on one machine: two `torchrun` launchers (`--nnodes 2`, node ranks 0 and 1, a
c10d rendezvous on 127.0.0.1, gloo, one process each) against two real hf hidden-states servers on
different ports, with the argv the plan builds from a `[cluster]` config.

- the loss curve equals a one-node two-process run's (same world size, same rank -> rows);
- a server killed mid-epoch: training completes on the other, with a `warning` record.
"""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path

import pytest
import torch

from speculators_core.config import RunConfig
from tests.train.helpers import REPO, make_prepared, read_metrics
from tests.cluster.util import cluster_cfg, launch, start_hf_server, stop, train_stage
from tests.vllm_fixtures import free_port, stop_server, wait_health


def _data(root: Path, n_rows: int, length: int = 65) -> Path:
    g = torch.Generator().manual_seed(3)
    rows = [torch.randint(3, 2000, (length,), generator=g).tolist() for _ in range(n_rows)]
    return make_prepared(root / f"data{n_rows}", rows)


def _multi_node(cfg: RunConfig, rdzv_port: int, rank: int) -> RunConfig:
    c = cfg.copy()
    c.cluster.nodes = c.cluster.training_nodes = 2
    c.cluster.rdzv_endpoint = f"127.0.0.1:{rdzv_port}"
    c.cluster.node_rank = rank
    return c


def _run_two_nodes(cfg: RunConfig, run_dir: Path, on_progress=None, timeout: float = 600) -> None:
    """Both launchers, node ranks 0 and 1, against one rendezvous port; `on_progress(records)` is
    called while they run (e.g. to kill a server)."""
    rdzv = free_port()
    procs = []
    argvs = []
    # the plan's health wait on every server (what `run` does before training)
    from speculators_core.plan.stages import build_stages

    wait = next(s for s in build_stages(_multi_node(cfg, rdzv, 0), environ={}) if s.name == "wait")
    assert wait.argv.count("--timeout") == 1 and len(wait.argv) == 3 + len(cfg.cluster.server_endpoints) + 2
    done = subprocess.run(wait.argv, cwd=str(REPO), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.count(": healthy") == 2, done.stderr
    try:
        for rank in (0, 1):
            stage, names = train_stage(_multi_node(cfg, rdzv, rank), run_dir)
            argvs.append(stage.argv)
            procs.append(launch(stage, run_dir / f"node{rank}.log"))
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if on_progress is not None and (run_dir / "metrics.jsonl").exists():
                on_progress(read_metrics(run_dir))
            time.sleep(0.2)
        logs = "\n".join((run_dir / f"node{r}.log").read_text(errors="replace")[-3000:] for r in (0, 1))
        assert all(p.poll() == 0 for p in procs), logs
    finally:
        for p in procs:
            stop(p)
    # the plan's launchers: multi-node torchrun, no --standalone, node ranks 0 and 1
    for rank, argv in enumerate(argvs):
        assert "--standalone" not in argv
        assert argv[argv.index("--nnodes") + 1] == "2" and argv[argv.index("--node-rank") + 1] == str(rank)
        assert argv[argv.index("--rdzv-backend") + 1] == "c10d"
        assert argv[argv.index("--rdzv-endpoint") + 1] == f"127.0.0.1:{rdzv}"
        assert argv[argv.index("--nproc_per_node") + 1] == "1"
        assert argv.count("--vllm-endpoint") == 2


@pytest.mark.slow
def test_two_nodes_match_one_node_two_processes(tiny_target, servers, tmp_path):
    data = _data(tmp_path, 8)
    # one node, two processes (torchrun --standalone), the same two servers
    one_dir = tmp_path / "one"
    one_dir.mkdir()
    one = cluster_cfg(tiny_target, data, servers["storage"], one_dir / "ckpt", servers["urls"])
    one.training.cpu_processes = 2
    stage, names = train_stage(one, one_dir)
    assert "--standalone" in stage.argv and names == ["wait", "prepare", "train"]
    proc = launch(stage, one_dir / "train.log")
    try:
        assert proc.wait(600) == 0, (one_dir / "train.log").read_text()[-3000:]
    finally:
        stop(proc)
    # two nodes, one process each
    two_dir = tmp_path / "two"
    two_dir.mkdir()
    two = cluster_cfg(tiny_target, data, servers["storage"], two_dir / "ckpt", servers["urls"])
    _run_two_nodes(two, two_dir)
    # node rank 1 leaves the shared preparation to node 0
    assert train_stage(_multi_node(two, 1, 1), two_dir)[1] == ["wait", "train"]

    a = [r for r in read_metrics(one_dir) if r["type"] == "train"]
    b = [r for r in read_metrics(two_dir) if r["type"] == "train"]
    assert read_metrics(two_dir)[0]["world_size"] == 2
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2, 3, 4]
    for x, y in zip(a, b):
        assert x["tokens"] == y["tokens"] == 128
        assert math.isclose(x["loss"], y["loss"], rel_tol=1e-5), (x["loss"], y["loss"])
        assert math.isclose(x["grad_norm"], y["grad_norm"], rel_tol=1e-4), (x["grad_norm"], y["grad_norm"])
    assert sum(r["hs_requests"] for r in b) == 8  # every row came from a server
    # checkpoints written once, by rank 0, to the shared directory
    ends = [r for r in read_metrics(two_dir) if r["type"] in ("checkpoint", "end")]
    assert [r["type"] for r in ends] == ["checkpoint", "end"] and ends[-1]["status"] == "completed"
    assert (two_dir / "ckpt" / "0" / "model.safetensors").exists()
    assert not [p for p in (two_dir / "ckpt").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_a_server_killed_mid_epoch_training_completes_on_the_other(tiny_target, servers, tmp_path):
    victim, victim_url = start_hf_server(tiny_target, servers["storage"], tmp_path / "victim.log")
    try:
        wait_health(victim_url.removesuffix("/v1") + "/health", victim, timeout=180, log=tmp_path / "victim.log")
        data = _data(tmp_path, 32)
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        run_cfg = cluster_cfg(tiny_target, data, servers["storage"], run_dir / "ckpt", [servers["urls"][0], victim_url])
        killed = {}

        def kill_after_the_first_step(recs):
            steps = [r for r in recs if r["type"] == "train"]
            if not killed and steps:
                assert steps[-1]["epoch_progress"] < 1.0  # mid-epoch
                victim.kill()
                victim.wait(10)
                killed["at"] = steps[-1]["step"]

        _run_two_nodes(run_cfg, run_dir, on_progress=kill_after_the_first_step)
    finally:
        stop_server(victim)
    assert killed, "training finished before the server could be killed"
    recs = read_metrics(run_dir)
    trains = [r for r in recs if r["type"] == "train"]
    assert [r["step"] for r in trains] == list(range(1, 17))  # 32 rows, 2 ranks, 1 row each per step
    assert trains[-1]["skipped_rows"] == 0  # every row was answered, by the survivor after the kill
    assert recs[-1]["type"] == "end" and recs[-1]["status"] == "completed"
    warnings = [r for r in recs if r["type"] == "warning"]
    assert warnings and warnings[0]["endpoint"] == victim_url and warnings[0]["step"] >= killed["at"]
    assert warnings[0]["up_endpoints"] == [servers["urls"][0]]
    assert "training continues on" in warnings[0]["message"]
