"""Fixtures for the supervisor tests: a run directory made from a small CPU config."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fakes"))


@pytest.fixture
def run_dir(tmp_path, port):
    from speculators_core import config as cfgmod
    from speculators_core.runs.rundir import create_run_dir

    cfg = cfgmod.RunConfig()
    cfg.model.target = "builtin:tiny-qwen3"
    cfg.data.sources = ["builtin:demo-chat"]
    cfg.data.output = str(tmp_path / "data")
    cfg.hidden_states.engine = "hf"
    cfg.hidden_states.gpus = []
    cfg.hidden_states.port = port
    cfg.hidden_states.start_timeout = 20.0
    cfg.training.gpus = []
    cfg.training.checkpoint_dir = str(tmp_path / "ckpt")
    cfg.run.name = "fake"
    cfg.run.dir = str(tmp_path / "runs")
    return create_run_dir(cfg, source="test")
