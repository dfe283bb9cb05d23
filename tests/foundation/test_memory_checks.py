"""`validate` with the memory-fit check: each assigned GPU against the predicted need, as warnings
with the fix, whatever gives the GPUs' memory (NVML or declared hardware)."""

from __future__ import annotations

from speculators_core.config import RunConfig, validate
from speculators_core.config.memory_checks import gpu_memory_of_probe, run_memory
from speculators_core.memory_fit import GIB
from speculators_core.target import TargetInfo

QWEN3_8B = TargetInfo("Qwen/Qwen3-8B", None, {
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 4096, "num_hidden_layers": 36,
    "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 12288,
    "vocab_size": 151936, "rope_theta": 1000000, "tie_word_embeddings": False, "torch_dtype": "bfloat16"})


def reference() -> RunConfig:
    cfg = RunConfig()
    cfg.model.target = "Qwen/Qwen3-8B"
    cfg.hidden_states.gpus = [0, 1]
    cfg.hidden_states.data_parallel_size = 2
    cfg.training.gpus = [2, 3]
    cfg.training.total_seq_len = 8192
    return cfg


def mem(problems):
    return [p for p in problems if "predicted trainer peak" in p.message or "weights need" in p.message]


def test_reference_recipe_on_h100s_fits_and_says_so():
    cfg = reference()
    gpus = {i: 80 * GIB for i in range(4)}
    assert mem(validate(cfg, QWEN3_8B, gpus)) == []
    rm = run_memory(cfg, QWEN3_8B, gpus)
    assert set(rm.per_gpu()) == {0, 1, 2, 3} and all(f.ok for f in rm.fits)
    text = "\n".join(rm.lines())
    assert "trainer: ~" in text and "GPU 2 (train)" in text and "GPU 0 (serve)" in text


def test_small_training_gpus_get_a_warning_with_a_shorter_seq_len():
    cfg = reference()
    probs = mem(validate(cfg, QWEN3_8B, {0: 80 * GIB, 1: 80 * GIB, 2: 16 * GIB, 3: 16 * GIB}))
    assert [p.field for p in probs] == ["training.total_seq_len"] * 2
    assert all(p.severity == "warning" for p in probs)
    assert "GPU 2" in probs[0].message and "total_seq_len (e.g. " in probs[0].fix
    suggested = int(probs[0].fix.split("(e.g. ")[1].split(")")[0])
    cfg.training.total_seq_len = suggested
    assert mem(validate(cfg, QWEN3_8B, {0: 80 * GIB, 1: 80 * GIB, 2: 16 * GIB, 3: 16 * GIB})) == []


def test_server_gpu_too_small_for_the_weights_names_tensor_parallel():
    cfg = reference()
    probs = mem(validate(cfg, QWEN3_8B, {0: 12 * GIB, 1: 80 * GIB, 2: 80 * GIB, 3: 80 * GIB}))
    assert [p.field for p in probs] == ["hidden_states.tensor_parallel_size"]
    assert "GPU 0" in probs[0].message and "tensor_parallel_size" in probs[0].fix


def test_no_memory_facts_no_memory_check():
    cfg = reference()
    assert mem(validate(cfg, QWEN3_8B)) == [] and mem(validate(cfg, None, {2: GIB})) == []


def test_gpu_memory_of_an_nvml_probe():
    from speculators_core.runs.gpu import GpuInfo, GpuProbe

    probe = GpuProbe([GpuInfo(0, "H100", 81559.0, 10.0, None, None, None), GpuInfo(1, "H100", 81559.0, 10.0, None, None, None)])
    assert gpu_memory_of_probe(probe) == {0: 81559 * 1024 * 1024, 1: 81559 * 1024 * 1024}
    assert gpu_memory_of_probe(GpuProbe([], "no GPU")) == {}


def test_declared_hardware_feeds_the_memory_check_without_a_local_gpu():
    """[cluster] declared GPUs are what the check compares with (no NVML on this machine): 16 GB
    GPUs are too small for the reference recipe's trainer at 8192 tokens, 80 GB ones fit."""
    from speculators_core.runs.hardware import gpu_memory_map

    cfg = reference()
    assert gpu_memory_map(cfg) == {}  # nothing declared, no probe: the app never blocks on NVML
    cfg.cluster.gpus_per_node, cfg.cluster.gpu_memory_gb = 4, 80
    gpus = gpu_memory_map(cfg)
    assert set(gpus) == {0, 1, 2, 3} and all(abs(b - 80 * GIB) < GIB for b in gpus.values())
    assert mem(validate(cfg, QWEN3_8B, gpus)) == []
    cfg.cluster.gpu_memory_gb = 16
    small = mem(validate(cfg, QWEN3_8B, gpu_memory_map(cfg)))
    assert small and any("GPU 2" in p.message or "GPU 3" in p.message for p in small), small
