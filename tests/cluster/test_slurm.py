"""`export --format slurm`: the sbatch script parses (`bash -n`), and run with stand-in `sbatch`,
`srun` and `scontrol` (tests/cluster/shims: every node is this machine) it prepares the data, checks
the shared filesystem, starts a server per serving node, waits for them, and trains with one torchrun
launcher per training node, to the loss curve of a one-node two-process run on the same data."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from speculators_core.config import RunConfig, save
from speculators_core.config.cluster import split_endpoint
from tests.cluster.util import cluster_cfg, launch, stop, train_stage
from tests.train.helpers import REPO, read_metrics
from tests.vllm_fixtures import free_port

SHIMS = Path(__file__).parent / "shims"


def _two_free_ports() -> int:
    """A port p with p and p + 1 free (server i listens on hidden_states.port + i)."""
    for _ in range(50):
        p = free_port()
        if p >= 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p + 1))
            except OSError:
                continue
        return p
    raise RuntimeError("no two consecutive free ports")


def _slurm_cfg(tmp_path: Path) -> RunConfig:
    cfg = RunConfig()
    cfg.model.target = "builtin:tiny-qwen3"
    cfg.data.sources = ["builtin:demo-chat"]
    cfg.data.output = str(tmp_path / "shared" / "data")
    cfg.data.max_samples = 16
    cfg.data.seq_length = 128
    cfg.data.num_preprocessing_workers = 1
    hs = cfg.hidden_states
    hs.engine, hs.gpus, hs.dtype, hs.device = "hf", [], "fp32", "cpu"
    hs.target_layer_ids = [2, 4, 5, 8]
    hs.port = _two_free_ports()
    hs.storage_dir = str(tmp_path / "shared" / "hs")
    t = cfg.training
    t.gpus, t.epochs, t.val_split, t.draft_vocab_size, t.lr = [], 1, 0.0, 512, 1e-3
    t.warmup_ratio, t.seed, t.total_seq_len, t.dtype = 0.0, 7, 128, "fp32"
    t.checkpoint_dir = str(tmp_path / "shared" / "ckpt")
    t.max_in_flight = 2
    c = cfg.cluster
    c.nodes, c.serving_nodes, c.training_nodes = 4, 2, 2
    c.rdzv_endpoint = f"ignored-host:{free_port()}"  # Slurm: the host comes from the allocation
    c.shared_dir = str(tmp_path / "shared")
    return cfg


def _export(cfg: RunConfig, tmp_path: Path) -> Path:
    toml = save(cfg, tmp_path / "cluster.toml")
    out = tmp_path / "job.sbatch"
    r = subprocess.run([sys.executable, "-m", "speculators_tui.cli", "export", str(toml), "--format", "slurm",
                        "-o", str(out)], capture_output=True, text=True, cwd=str(REPO), timeout=120)
    assert r.returncode == 0, r.stderr
    return out


def test_slurm_script_parses_and_names_the_topology(tmp_path):
    cfg = _slurm_cfg(tmp_path)
    script_path = _export(cfg, tmp_path)
    check = subprocess.run(["bash", "-n", str(script_path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    script = script_path.read_text()
    assert "#SBATCH --nodes=4" in script and "SERVING_NODES=2" in script and "TRAINING_NODES=2" in script
    assert 'scontrol show hostnames "$SLURM_JOB_NODELIST"' in script
    head = script.split("SERVING_NODES=")[0]
    assert f'PYTHON="${{PYTHON:-{sys.executable}}}"' in head and 'TORCHRUN="${TORCHRUN:-' in head
    body = script.split("SERVING_NODES=")[1]
    assert sys.executable not in body  # interpreters only through their variables
    assert "--standalone" not in script and "--rdzv-backend c10d" in script
    assert f'"$RDZV_HOST":{split_endpoint(cfg.cluster.rdzv_endpoint)[1]}' in script
    assert "speculators_core.shared_fs check" in script and "speculators_core.wait_health" in script


def test_slurm_script_regenerates_on_the_serving_nodes_and_keeps_them_up_for_training(tmp_path):
    """data.regenerate on a cluster: the servers start before regenerate (which gets every serving
    node's URL), stay up through prepare, and serve training; nothing names an unsubstituted URL."""
    cfg = _slurm_cfg(tmp_path)
    cfg.data.regenerate = True
    script = _export(cfg, tmp_path).read_text()
    assert subprocess.run(["bash", "-n", "-c", script]).returncode == 0
    body = script.split("SERVING_NODES=")[1]
    start, regen = body.index("stop_servers() {"), body.index("speculators_core.regenerate")
    prep, train = body.index("speculators_core.prepare"), body.index("speculators_core.train")
    assert start < regen < prep < train
    assert '"${REGENERATE_FLAGS[@]}"' in body
    assert "\nstop_servers\n" not in body[start:train]  # kept up from regenerate to training
    assert "@SPECULATORS_ENDPOINT@" not in body and "@SPECULATORS_HOST@" not in body


@pytest.mark.slow
def test_slurm_script_runs_with_shims_to_the_one_node_result(tmp_path, servers, tiny_target):
    cfg = _slurm_cfg(tmp_path)
    script = _export(cfg, tmp_path)
    env = dict(os.environ, PATH=f"{SHIMS}{os.pathsep}{os.environ['PATH']}", OMP_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(REPO))
    log = tmp_path / "job.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(["sbatch", str(script)], cwd=str(tmp_path), env=env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(600)
        finally:
            stop(proc)
    text = log.read_text(errors="replace")
    assert rc == 0, text[-4000:]
    assert "Submitted batch job 4242" in text
    assert "sees the marker" in text  # the shared-filesystem check ran on the training nodes
    assert text.count("is shared") == 2
    ckpt = Path(cfg.training.checkpoint_dir)
    recs = read_metrics(ckpt)
    assert recs[0]["type"] == "start" and recs[0]["world_size"] == 2
    assert recs[-1]["type"] == "end" and recs[-1]["status"] == "completed"
    slurm = [r for r in recs if r["type"] == "train"]
    assert slurm and sum(r["hs_requests"] for r in slurm) > 0
    assert (ckpt / "0" / "model.safetensors").exists()
    # the servers the script started are gone
    for i in range(2):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", cfg.hidden_states.port + i)) != 0

    # the same data, one node with two processes, against the package's servers
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    ref = cluster_cfg(tiny_target, Path(cfg.data.output), servers["storage"], ref_dir / "ckpt", servers["urls"])
    ref.training.total_seq_len = cfg.training.total_seq_len
    ref.training.cpu_processes = 2
    stage, _ = train_stage(ref, ref_dir)
    p = launch(stage, ref_dir / "train.log")
    try:
        assert p.wait(600) == 0, (ref_dir / "train.log").read_text()[-3000:]
    finally:
        stop(p)
    one = [r for r in read_metrics(ref_dir) if r["type"] == "train"]
    assert [r["step"] for r in one] == [r["step"] for r in slurm]
    for a, b in zip(one, slurm):
        assert a["tokens"] == b["tokens"]
        assert math.isclose(a["loss"], b["loss"], rel_tol=1e-5), (a["loss"], b["loss"])
