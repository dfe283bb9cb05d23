"""Review fixes (round C): the run reader's change detection, the CPU quota, the sweep's temp files,
the API key read for vLLM at spawn, and the planner's server stage."""

from __future__ import annotations

import os
import time

import pytest

from speculators_core import config as cfgmod
from speculators_core.plan.stages import build_stages
from speculators_core.runs.children import MissingEnvironment, stage_environ
from speculators_core.plan.stages import Stage
from speculators_core.runs.reader import RunReader
from speculators_core.runs.sweep import sweep_request_files


def test_reader_sees_a_second_write_with_the_same_mtime(tmp_path):
    from speculators_core.fsutil import atomic_write_text

    state = tmp_path / "state.json"
    atomic_write_text(state, '{"status": "running"}')
    st = state.stat()
    r = RunReader(tmp_path)
    assert r.read_state() and r.state["status"] == "running"
    atomic_write_text(state, '{"status": "done", "x": 1}')
    os.utime(state, ns=(st.st_atime_ns, st.st_mtime_ns))  # within the clock's granularity
    assert r.read_state() and r.state["status"] == "done"
    assert not r.read_state()  # unchanged: not read again


@pytest.mark.parametrize("text, expected", [
    ("max 100000\n", None), ("200000 100000\n", 2), ("150000 100000", 2), ("50000 100000", 1),
    ("", None), ("garbage", None), ("0 100000", None),
])
def test_cgroup_cpu_limit(text, expected):
    from speculators_core.plan.stages import cgroup_cpu_limit

    assert cgroup_cpu_limit(text) == expected


def test_sweep_removes_the_servers_partial_temp_writes(tmp_path):
    since = time.time()
    gone = [tmp_path / ".tmpAb12Cd", tmp_path / ".tmpZZ9x0q"]
    keep = [tmp_path / ".tmp-notes", tmp_path / "sub" / ".tmpAb12Cd", tmp_path / ".tmpold123"]
    for p in gone + keep:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * 5)
    os.utime(tmp_path / ".tmpold123", (since - 3600, since - 3600))
    (tmp_path / ".tmpLiNk01").symlink_to(gone[0])
    (tmp_path / ".tmpDiR001").mkdir()
    n, freed = sweep_request_files(str(tmp_path), since - 1)
    assert not any(p.exists() for p in gone)
    assert all(p.exists() for p in keep)
    assert (tmp_path / ".tmpLiNk01").is_symlink() and (tmp_path / ".tmpDiR001").is_dir()
    assert (n, freed) == (2, 10)


@pytest.mark.parametrize("value", ["sk-1\r", " sk-1", "sk-1\n"])
def test_vllm_key_with_surrounding_whitespace_fails_the_stage(value):
    stage = Stage("server", ["x"], env_from={"VLLM_API_KEY": "MY_KEY"})
    with pytest.raises(MissingEnvironment, match="MY_KEY.*whitespace"):
        stage_environ(stage, {"MY_KEY": value})
    assert stage_environ(stage, {"MY_KEY": "sk-1"})["VLLM_API_KEY"] == "sk-1"


def _cfg(tmp_path, engine="hf"):
    cfg = cfgmod.RunConfig()
    cfg.model.target = "builtin:tiny-qwen3"
    cfg.data.sources = ["builtin:demo-chat"]
    cfg.data.output = str(tmp_path / "data")
    cfg.hidden_states.engine = engine
    cfg.hidden_states.gpus = []
    cfg.hidden_states.target_layer_ids = [2, 4, 8]
    cfg.training.gpus = []
    cfg.training.checkpoint_dir = str(tmp_path / "ckpt")
    return cfg


def _server(cfg):
    return next(s for s in build_stages(cfg, environ={}, cores=4) if s.name == "server")


def test_hf_server_gets_one_api_key_env_flag(tmp_path):
    cfg = _cfg(tmp_path)
    cfg.hidden_states.api_key_env = "MY_KEY"
    assert _server(cfg).argv.count("--api-key-env") == 1


@pytest.mark.parametrize("dtype, flag", [("bf16", "bfloat16"), ("fp16", "float16"), ("fp32", "float32")])
def test_vllm_gets_the_configured_dtype(tmp_path, dtype, flag):
    cfg = _cfg(tmp_path, "vllm")
    cfg.hidden_states.dtype = dtype
    argv = _server(cfg).argv
    assert argv[argv.index("--dtype") + 1] == flag and argv.count("--dtype") == 1


def test_vllm_dtype_auto_and_extra_args_dtype_win(tmp_path):
    cfg = _cfg(tmp_path, "vllm")
    assert "--dtype" not in _server(cfg).argv
    cfg.hidden_states.dtype = "fp16"
    cfg.hidden_states.extra_args = ["--dtype=half"]
    argv = _server(cfg).argv
    assert "--dtype" not in argv and argv.count("--dtype=half") == 1


def test_root_exports_only_what_is_used():
    import speculators_core

    assert "save_config" not in speculators_core.__all__ and "RunPlan" not in speculators_core.__all__
