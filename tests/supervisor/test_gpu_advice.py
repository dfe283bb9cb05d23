"""GPU probing (no-driver path for real, NVML mapping through a stand-in NVML module) and split advice
on made-up GPU lists."""

import json
import sys
import time
import types
from types import SimpleNamespace

import pytest

from speculators_core import config as cfgmod
from speculators_core.runs.advice import assignment_warnings, drafter_training_bytes, suggest_split
from speculators_core.runs.gpu import GpuInfo, GpuProcess, GpuSampler, gpu_roles, probe_gpus, visible_nvml_indices
from speculators_core.target import TargetInfo

GIB = 1024.0  # MiB


def gpu(i, total_gib=80, used_gib=0.5, procs=()):
    return GpuInfo(i, "NVIDIA H100 80GB HBM3", total_gib * GIB, used_gib * GIB, 0.0, 70.0, 35.0, list(procs))


def target(params_b, layers=36, hidden=4096, vocab=151936, dtype="bfloat16"):
    cfg = {"num_hidden_layers": layers, "hidden_size": hidden, "vocab_size": vocab, "intermediate_size": 12288,
           "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "torch_dtype": dtype,
           "model_type": "qwen3"}
    t = TargetInfo("made-up", None, cfg)
    t.num_parameters = lambda: int(params_b * 1e9)  # the size is what these tests vary
    return t


def vllm_cfg(server=(0,), training=(1,), dp=1, tp=1):
    cfg = cfgmod.RunConfig()
    cfg.hidden_states.engine = "vllm"
    cfg.hidden_states.gpus = list(server)
    cfg.hidden_states.data_parallel_size = dp
    cfg.hidden_states.tensor_parallel_size = tp
    cfg.training.gpus = list(training)
    cfg.training.total_seq_len = 8192
    return cfg


# ----------------------------------------------------------------------------------- probing
def test_visible_indices_follow_cuda_visible_devices():
    uuids = ["GPU-aaaa-1", "GPU-bbbb-2", "GPU-cccc-3", "GPU-dddd-4"]
    assert visible_nvml_indices({}, 4, uuids) == ([0, 1, 2, 3], None)
    assert visible_nvml_indices({"CUDA_VISIBLE_DEVICES": "2,3"}, 4, uuids) == ([2, 3], None)
    assert visible_nvml_indices({"CUDA_VISIBLE_DEVICES": "GPU-cccc,1"}, 4, uuids) == ([2, 1], None)
    idx, note = visible_nvml_indices({"CUDA_VISIBLE_DEVICES": "1,7,2"}, 4, uuids)
    assert idx == [1] and "'7'" in note  # CUDA stops at the first invalid entry
    assert visible_nvml_indices({"CUDA_VISIBLE_DEVICES": ""}, 4, uuids)[0] == []
    assert visible_nvml_indices({"CUDA_VISIBLE_DEVICES": "-1"}, 4, uuids)[0] == []


def test_no_driver_reports_no_gpu_cleanly():
    try:
        import pynvml
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        pytest.skip("this machine has an NVIDIA driver")
    except Exception:
        pass
    probe = probe_gpus()
    assert probe.gpus == [] and probe.error.startswith("no GPU: ")
    s = GpuSampler().start(None, {}, interval=1.0)
    s._thread.join(5)
    assert not s.running and s.error.startswith("no GPU") and not s.history


class FakeNvml(types.ModuleType):
    """A stand-in for pynvml with three GPUs (the library is not on CPU CI machines)."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self):
        super().__init__("pynvml")
        self.inits = 0

    def nvmlInit(self):
        self.inits += 1

    def nvmlShutdown(self):
        self.inits -= 1

    def nvmlDeviceGetCount(self):
        return 3

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetUUID(self, h):
        return f"GPU-{h}{h}{h}{h}-uuid"

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA H200"

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(total=141 * 1024 ** 3, used=(10 + h) * 1024 ** 3)

    def nvmlDeviceGetUtilizationRates(self, h):
        return SimpleNamespace(gpu=10 * h)

    def nvmlDeviceGetPowerUsage(self, h):
        return 100_000 + h * 1000

    def nvmlDeviceGetTemperature(self, h, kind):
        return 40 + h

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [SimpleNamespace(pid=1, usedGpuMemory=2 * 1024 ** 3)] if h == 2 else []

    def nvmlDeviceGetGraphicsRunningProcesses(self, h):
        raise RuntimeError("not supported")


def test_probe_and_sampler_through_nvml(monkeypatch, tmp_path):
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    probe = probe_gpus({"CUDA_VISIBLE_DEVICES": "1,2"})
    assert probe.error is None
    assert [(g.index, g.nvml_index) for g in probe.gpus] == [(0, 1), (1, 2)]
    g0, g1 = probe.gpus
    assert g0.name == "NVIDIA H200" and g0.mem_used_mb == 11 * 1024 and g0.util == 10.0
    assert g0.power_w == 101.0 and g0.temp_c == 41.0
    assert [(p.pid, p.mem_mb) for p in g1.processes] == [(1, 2048.0)] and g1.processes[0].name
    assert fake.inits == 0  # shut down again
    json.dumps(probe.to_dict())

    path = tmp_path / "gpu.jsonl"
    s = GpuSampler({"CUDA_VISIBLE_DEVICES": "1,2"}).start(path, gpu_roles([0], [1], [0, 1]), interval=1.0)
    t0 = time.monotonic()
    while len(s.history) < 2 and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    s.stop()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) >= 2 and lines[1]["time"] - lines[0]["time"] >= 0.9  # >= 1 s apart
    assert [(g["index"], g["role"], g["util"]) for g in lines[0]["gpus"]] == [(0, "server", 10.0), (1, "training", 20.0)]
    assert set(lines[0]["gpus"][0]) == {"index", "name", "util", "mem_used_mb", "mem_total_mb", "power_w", "temp_c", "role"}


def test_roles():
    assert gpu_roles([0, 1], [1, 2], [0, 1, 2, 3]) == {0: "server", 1: "shared", 2: "training", 3: "idle"}


# ----------------------------------------------------------------------------------- advice
def test_no_gpu_means_cpu():
    a = suggest_split([], target(0.5), vllm_cfg())
    assert a.server_gpus == [] and a.training_gpus == [] and "CPU" in a.reasons[0]


def test_eight_b_on_four_gpus_splits_evenly():
    a = suggest_split([gpu(i) for i in range(4)], target(8.2), vllm_cfg())
    assert (a.server_gpus, a.training_gpus, a.data_parallel_size, a.tensor_parallel_size) == ([0, 1], [2, 3], 2, 1)
    assert a.warnings == []
    assert any("16.4 GiB" in r or "15.3 GiB" in r for r in a.reasons)


def test_seventy_b_needs_tensor_parallel():
    a = suggest_split([gpu(i) for i in range(8)], target(70.6), vllm_cfg())
    assert a.tensor_parallel_size == 4 and a.data_parallel_size == 1
    assert a.server_gpus == [0, 1, 2, 3] and a.training_gpus == [4, 5, 6, 7]
    small = suggest_split([gpu(i, total_gib=24) for i in range(2)], target(70.6), vllm_cfg())
    assert any("needs" in w and "only 2 are free" in w for w in small.warnings)


def test_busy_gpus_are_left_out_and_a_single_gpu_is_shared():
    other = GpuProcess(999, "python other_job.py", 60 * GIB)
    a = suggest_split([gpu(0, used_gib=61, procs=[other]), gpu(1), gpu(2)], target(8.2), vllm_cfg())
    assert 0 not in a.server_gpus + a.training_gpus
    assert any("GPU 0 is already in use" in w and "other_job" in w for w in a.warnings)
    one = suggest_split([gpu(0)], target(8.2), vllm_cfg())
    assert one.server_gpus == one.training_gpus == [0] and "allow_gpu_sharing" in one.warnings[0]


def test_hf_engine_uses_one_server_gpu():
    cfg = vllm_cfg()
    cfg.hidden_states.engine = "hf"
    a = suggest_split([gpu(i) for i in range(4)], target(1.0), cfg)
    assert a.server_gpus == [0] and a.training_gpus == [1, 2, 3] and a.data_parallel_size == 1


def test_assignment_warnings_name_the_problem():
    gpus = [gpu(0), gpu(1), gpu(2, used_gib=40, procs=[GpuProcess(4242, "python serve.py", 39 * GIB)])]
    t = target(8.2)
    assert assignment_warnings(vllm_cfg([0], [1]), gpus, t) == []
    w = assignment_warnings(vllm_cfg([0], [0]), gpus, t)
    assert any("shared by the server and training" in x and "allow_gpu_sharing" in x for x in w)
    w = assignment_warnings(vllm_cfg([2], [5]), gpus, t)
    assert any("training.gpus: GPU 5 not found" in x for x in w)
    assert any("GPU 2 already has 40.0 GiB in use by python serve.py (pid 4242" in x for x in w)
    # vLLM wants 0.9 x 80 GiB free at start; 40 GiB are in use by another process.
    assert any("GPU 2: vLLM will refuse to start" in x and "gpu_memory_utilization = 0.45" in x for x in w)
    w = assignment_warnings(vllm_cfg([0], [1]), [gpu(0, 24), gpu(1, 24)], target(70.6))
    assert any("use tensor_parallel_size = " in x for x in w)
    assert assignment_warnings(vllm_cfg([0], [1]), [], t)[0].startswith("the config assigns GPU")
    assert drafter_training_bytes(t, vllm_cfg()) > 1024 ** 3
