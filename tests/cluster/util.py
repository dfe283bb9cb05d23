"""Helpers of the cluster tests: a real hf hidden-states server of the tiny target."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from speculators_core.config import RunConfig
from speculators_core.plan.stages import build_stages
from tests.train.helpers import REPO
from tests.vllm_fixtures import free_port, start_server

LAYERS = [2, 4, 5, 8]


def start_hf_server(target: Path, storage: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = start_server([sys.executable, "-m", "speculators_core.hf_server", str(target), "--port", str(port),
                         "--hidden-states-path", str(storage), "--target-layer-ids", *map(str, LAYERS),
                         "--device", "cpu", "--dtype", "fp32"], log, env={"OMP_NUM_THREADS": "1"})
    return proc, f"http://127.0.0.1:{port}/v1"


def cluster_cfg(target: Path, data: Path, storage: Path, save: Path, urls: list[str]) -> RunConfig:
    cfg = RunConfig()
    cfg.model.target = str(target)
    cfg.data.output = str(data)
    cfg.data.seq_length = 64
    cfg.hidden_states.engine = "hf"
    cfg.hidden_states.gpus = []
    cfg.hidden_states.target_layer_ids = list(LAYERS)
    cfg.hidden_states.storage_dir = str(storage)
    t = cfg.training
    t.gpus, t.epochs, t.val_split, t.draft_vocab_size, t.lr = [], 1, 0.0, 512, 1e-3
    t.warmup_ratio, t.seed, t.total_seq_len, t.dtype, t.checkpoint_dir = 0.0, 7, 64, "fp32", str(save)
    t.max_in_flight = 2
    cfg.cluster.server_endpoints = list(urls)
    return cfg


def train_stage(cfg: RunConfig, run_dir: Path):
    stages = build_stages(cfg, run_dir=str(run_dir), environ={}, cores=2)
    return next(s for s in stages if s.name == "train"), [s.name for s in stages]


def launch(stage, log: Path) -> subprocess.Popen:
    env = {**os.environ, **stage.env, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    with open(log, "ab") as fh:
        return subprocess.Popen(stage.argv, cwd=str(REPO), env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(10)
