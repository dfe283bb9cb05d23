"""NVML probing that survives one bad GPU, MIG instances and containers' PID namespaces."""

from __future__ import annotations

import sys


import speculators_core.runs.gpu as gpu
from speculators_core.runs.gpu import describe, probe_gpus, visible_nvml_indices
from tests.supervisor.test_gpu_advice import FakeNvml


class BadHandleNvml(FakeNvml):
    """GPU 1 has fallen off the bus: its handle cannot be had."""

    def nvmlDeviceGetHandleByIndex(self, i):
        if i == 1:
            raise RuntimeError("GPU is lost")
        return i


class BadMemoryNvml(FakeNvml):
    def nvmlDeviceGetMemoryInfo(self, h):
        if h == 0:
            raise RuntimeError("Unknown Error")
        return super().nvmlDeviceGetMemoryInfo(h)


class MigNvml(FakeNvml):
    """GPU 2 is in MIG mode with two instances."""

    def nvmlDeviceGetMaxMigDeviceCount(self, h):
        if h != 2:
            raise RuntimeError("Not Supported")
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h, j):
        if j >= 2:
            raise RuntimeError("Not Found")
        return ("mig", h, j)

    def nvmlDeviceGetUUID(self, h):
        if isinstance(h, tuple):
            return f"MIG-aaaa{h[2]}-{h[1]}"
        return super().nvmlDeviceGetUUID(h)


def test_one_failing_handle_does_not_void_the_probe(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", BadHandleNvml())
    probe = probe_gpus({})
    assert probe.error is None and [g.index for g in probe.gpus] == [0, 1, 2]
    ok0, bad, ok2 = probe.gpus
    assert not ok0.error and ok0.mem_total_mb == 141 * 1024 and ok2.name == "NVIDIA H200"
    assert "GPU is lost" in bad.error and not bad.is_idle()
    assert any("GPU 1: unreadable (NVML: GPU is lost)" in line for line in describe(probe))


def test_one_failing_read_does_not_void_the_probe(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", BadMemoryNvml())
    probe = probe_gpus({})
    assert [bool(g.error) for g in probe.gpus] == [True, False, False]
    from speculators_core.config.memory_checks import gpu_memory_of_probe

    assert set(gpu_memory_of_probe(probe)) == {1, 2}  # an unreadable GPU gets no memory verdict


def test_mig_instance_maps_to_its_parent(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", MigNvml())
    probe = probe_gpus({"CUDA_VISIBLE_DEVICES": "MIG-aaaa1-2"})
    assert [(g.index, g.nvml_index, g.mig) for g in probe.gpus] == [(0, 2, "MIG-aaaa1-2")]
    assert "MIG instance MIG-aaaa1-2" in describe(probe)[0]
    # a MIG UUID of no GPU here stops the list as CUDA does
    assert visible_nvml_indices({"CUDA_VISIBLE_DEVICES": "0,MIG-zzz"}, 3, ["GPU-a", "GPU-b", "GPU-c"],
                                {"MIG-aaaa0-2": 2})[0] == [0]


def test_in_a_pid_namespace_processes_cannot_be_attributed(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    monkeypatch.setattr(gpu, "in_pid_namespace", lambda: True)
    probe = probe_gpus({})
    (p,) = probe.gpus[2].processes
    assert not p.attributable and "cannot attribute" in p.name
    # judged by its memory: 12 GiB of 141 used is busy; a GPU with a little memory in use is idle
    assert not probe.gpus[2].is_idle()
    g = probe.gpus[2]
    g.mem_used_mb = 500.0
    assert g.is_idle()


def test_pid_namespace_detection_reads_nspid(monkeypatch, tmp_path):
    status = tmp_path / "status"
    real_open = open

    def fake_open(path, *a, **kw):
        return real_open(status if path == "/proc/self/status" else path, *a, **kw)

    monkeypatch.setattr("builtins.open", fake_open)
    status.write_text("Name:\tpython\nNSpid:\t81234\t57\n")
    assert gpu.in_pid_namespace()
    status.write_text("Name:\tpython\nNSpid:\t81234\n")
    assert not gpu.in_pid_namespace()


def test_sampler_keeps_sampling_the_readable_gpus(monkeypatch, tmp_path):
    import time

    monkeypatch.setitem(sys.modules, "pynvml", BadHandleNvml())
    s = gpu.GpuSampler({}).start(None, {}, interval=1.0)
    t0 = time.monotonic()
    while not s.history and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    s.stop()
    assert [g["index"] for g in s.history[0]["gpus"]] == [0, 2]


def test_advice_in_a_container_does_not_call_processes_foreign(monkeypatch):
    from speculators_core.config import RunConfig
    from speculators_core.runs.advice import assignment_warnings

    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    monkeypatch.setattr(gpu, "in_pid_namespace", lambda: True)
    probe = probe_gpus({})
    cfg = RunConfig()
    cfg.hidden_states.gpus, cfg.training.gpus = [0], [2]
    text = "\n".join(assignment_warnings(cfg, probe.gpus, None))
    assert "GPU 2 already has 12.0 GiB in use by 1 process(es) that cannot be attributed" in text
    assert "pid 1" not in text
