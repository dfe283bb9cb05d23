"""Fixtures of the hidden-states tests: the fake server (a real subprocess) in its modes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.vllm_fixtures import free_port, start_server, stop_server, wait_health

HERE = Path(__file__).resolve().parent


@pytest.fixture
def fake_server(tmp_path):
    """start(mode, **opts) -> (url, storage_dir); every server is killed at teardown."""
    procs = []

    def start(mode: str = "ok", storage: Path | None = None, **opts) -> tuple[str, Path]:
        storage = storage or tmp_path / f"hs-{len(procs)}"
        storage.mkdir(parents=True, exist_ok=True)
        port = free_port()
        argv = [sys.executable, str(HERE / "fake_server.py"), "--port", str(port), "--dir", str(storage),
                "--mode", mode]
        for k, v in opts.items():
            argv += [f"--{k.replace('_', '-')}", str(v)]
        log = tmp_path / f"fake-{len(procs)}.log"
        proc = start_server(argv, log)
        procs.append(proc)
        wait_health(f"http://127.0.0.1:{port}/health", proc, timeout=60, log=log)
        return f"http://127.0.0.1:{port}/v1", storage

    yield start
    for p in procs:
        stop_server(p)
