"""The GPU sampler lists the processes on each GPU and marks the run's own with their stage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

from speculators_core.runs.gpu import GpuSampler, gpu_roles, own_stage

from .test_gpu_advice import FakeNvml


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)


def test_own_stage_follows_process_groups():
    child = _sleeper()
    try:
        assert own_stage(child.pid, {child.pid: "server"}) == "server"   # the group leader
        assert own_stage(os.getpid(), {child.pid: "server"}) is None      # not in the stage's group
        assert own_stage(2 ** 22 + 12345, {child.pid: "server"}) is None  # no such process
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def test_sampler_records_processes_with_their_stage(monkeypatch, tmp_path):
    ours, theirs = _sleeper(), _sleeper()
    fake = FakeNvml()
    fake.nvmlDeviceGetComputeRunningProcesses = lambda h: (  # type: ignore[method-assign]
        [SimpleNamespace(pid=ours.pid, usedGpuMemory=3 * 1024 ** 3),
         SimpleNamespace(pid=theirs.pid, usedGpuMemory=1024 ** 3)] if h == 0 else [])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    path = tmp_path / "gpu.jsonl"
    try:
        s = GpuSampler({}).start(path, gpu_roles([0], [1], [0, 1, 2]), interval=1.0,
                                 groups=lambda: {ours.pid: "server"})
        t0 = time.monotonic()
        while not s.history and time.monotonic() - t0 < 10:
            time.sleep(0.05)
        s.stop()
    finally:
        for p in (ours, theirs):
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    first = json.loads(path.read_text().splitlines()[0])
    procs = first["gpus"][0]["processes"]
    assert [(p["pid"], p["stage"], p["mem_mb"]) for p in procs] == [(ours.pid, "server", 3072.0),
                                                                     (theirs.pid, None, 1024.0)]
    assert procs[0]["name"].startswith("python")
    assert first["gpus"][1]["processes"] == []
    assert first["gpus"][0]["power_w"] == 100.0 and first["gpus"][0]["temp_c"] == 40.0


def test_sampler_without_groups_keeps_the_old_record(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    path = tmp_path / "gpu.jsonl"
    s = GpuSampler({}).start(path, {}, interval=1.0)
    t0 = time.monotonic()
    while not s.history and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    s.stop()
    assert "processes" not in json.loads(path.read_text().splitlines()[0])["gpus"][0]
