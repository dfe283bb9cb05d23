"""The compute dtype per device, with the hardware's capabilities forced (no GPU or AMX needed)."""

from __future__ import annotations

import pytest

from speculators_core.plan import flags as stage_args
from speculators_core.precision import CpuCaps, CudaCaps, choose_dtype, normalise

AVX2 = CpuCaps("AVX2", frozenset({"avx", "avx2", "fma"}))
AVX512_NO_BF16 = CpuCaps("AVX512", frozenset({"avx2", "avx512f", "avx512bw", "avx512vl"}))
AVX512_BF16 = CpuCaps("AVX512", frozenset({"avx2", "avx512f", "avx512bw", "avx512_bf16"}))
AMX = CpuCaps("AVX512", frozenset({"avx2", "avx512f", "amx_tile", "amx_bf16"}))
ARM_BF16 = CpuCaps("SVE256", frozenset({"asimd", "sve", "bf16"}))
ARM_NO_BF16 = CpuCaps("DEFAULT", frozenset({"asimd"}))
H100 = CudaCaps("NVIDIA H100 80GB HBM3", (9, 0))
A100 = CudaCaps("NVIDIA A100-SXM4-80GB", (8, 0))
V100 = CudaCaps("Tesla V100-SXM2-32GB", (7, 0))


@pytest.mark.parametrize("caps, expected", [
    (AVX2, "fp32"), (AVX512_NO_BF16, "fp32"), (ARM_NO_BF16, "fp32"),
    (AVX512_BF16, "bf16"), (AMX, "bf16"), (ARM_BF16, "bf16"),
])
def test_auto_on_cpus(caps, expected):
    c = choose_dtype("auto", "cpu", cpu=caps)
    assert (c.dtype, c.device, c.requested) == (expected, "cpu", "auto")
    assert c.autocast == (expected != "fp32")
    assert caps.capability in c.reason  # the log says which CPU decided it


def test_avx2_reason_says_bf16_is_emulated():
    c = choose_dtype("auto", "cpu", cpu=AVX2)
    assert "no native bf16" in c.reason and "emulated" in c.reason
    assert "fp32" in c.describe() and "AVX2" in c.describe()


@pytest.mark.parametrize("caps, why", [
    # the flags are there but torch was told to run AVX2 kernels (ATEN_CPU_CAPABILITY=avx2)
    (CpuCaps("AVX2", frozenset({"avx512_bf16", "amx_bf16"})), "ATEN_CPU_CAPABILITY"),
    # ... or oneDNN may not use them (ONEDNN_MAX_CPU_ISA=AVX2)
    (CpuCaps("AVX512", frozenset({"amx_bf16"}), onednn_bf16=False), "ONEDNN_MAX_CPU_ISA"),
])
def test_lowered_isa_means_no_native_bf16(caps, why):
    c = choose_dtype("auto", "cpu", cpu=caps)
    assert c.dtype == "fp32" and why in c.reason


@pytest.mark.parametrize("gpu, expected", [(H100, "bf16"), (A100, "bf16"), (V100, "fp16")])
def test_auto_on_cuda(gpu, expected):
    c = choose_dtype("auto", "cuda", cuda=gpu)
    assert (c.dtype, c.device) == (expected, "cuda")
    assert gpu.name in c.reason


@pytest.mark.parametrize("asked", ["bf16", "fp16", "fp32"])
def test_explicit_choice_is_honoured(asked):
    assert choose_dtype(asked, "cpu", cpu=AVX2).dtype == asked
    assert choose_dtype(asked, "cuda", cuda=V100).dtype == asked


def test_explicit_bf16_on_avx2_warns_in_the_reason():
    c = choose_dtype("bf16", "cpu", cpu=AVX2)
    assert c.dtype == "bf16" and "emulated" in c.reason and "use auto" in c.reason
    assert choose_dtype("bf16", "cpu", cpu=AMX).reason == "as asked"
    assert "no native bf16" in choose_dtype("bf16", "cuda", cuda=V100).reason


def test_names_and_aliases():
    assert [normalise(x) for x in ("bfloat16", "float16", "float32", "BF16", "auto")] == \
        ["bf16", "fp16", "fp32", "bf16", "auto"]
    with pytest.raises(ValueError, match="auto, bf16, fp16, fp32"):
        normalise("int8")


def test_stage_flags_take_both_spellings():
    # the hf engine's old spellings keep working; the trainer has the same flag
    hf = stage_args.hf_server_parser()
    base = ["m", "--hidden-states-path", "x"]
    assert hf.parse_args(base + ["--dtype", "float32"]).dtype == "fp32"
    assert hf.parse_args(base + ["--dtype", "bf16"]).dtype == "bf16"
    assert hf.parse_args(base).dtype == "auto"
    tr = stage_args.train_parser()
    assert tr.parse_args(["--verifier-name-or-path", "m", "--data-path", "d", "--save-path", "s",
                          "--dtype", "fp16"]).dtype == "fp16"
    with pytest.raises(SystemExit):
        tr.parse_args(["--verifier-name-or-path", "m", "--data-path", "d", "--save-path", "s", "--dtype", "int8"])


def test_probe_reads_this_machine():
    caps = CpuCaps.probe()
    assert caps.capability  # e.g. AVX2, AVX512
    native, why = caps.native_bf16()
    assert isinstance(native, bool) and why
    assert choose_dtype("auto", "cpu").dtype == ("bf16" if native else "fp32")


def test_config_key_reaches_the_train_and_server_argv(tmp_path):
    from speculators_core.plan.stages import build_stages
    from speculators_core.config import RunConfig

    cfg = RunConfig()
    cfg.model.target = "builtin:tiny-qwen3"
    cfg.hidden_states.engine = "hf"
    cfg.hidden_states.gpus = []
    cfg.hidden_states.target_layer_ids = [2, 4, 5, 8]
    cfg.training.gpus = []
    stages = {s.name: s for s in build_stages(cfg, environ={})}
    assert "--dtype" not in stages["train"].argv and "--dtype" not in stages["server"].argv  # auto: omitted
    cfg.training.dtype, cfg.hidden_states.dtype = "fp32", "bf16"
    stages = {s.name: s for s in build_stages(cfg, environ={})}
    tr, sv = stages["train"].argv, stages["server"].argv
    assert tr[tr.index("--dtype") + 1] == "fp32" and sv[sv.index("--dtype") + 1] == "bf16"
    for st in stages.values():  # every emitted flag parses with its stage's parser
        if st.module in stage_args.PARSERS:
            stage_args.PARSERS[st.module]().parse_args(st.stage_argv())



# ----------------------------------------------------------------- review fixes (round C)
@pytest.mark.parametrize("gpu, train, serve", [(V100, "fp16", "bf16"), (A100, "bf16", "bf16"), (H100, "bf16", "bf16")])
def test_serving_auto_on_cuda_stays_bf16(gpu, train, serve):
    assert choose_dtype("auto", "cuda", cuda=gpu).dtype == train
    s = choose_dtype("auto", "cuda", cuda=gpu, purpose="serve")
    assert s.dtype == serve and "loss scaling" not in s.reason


def test_purpose_is_checked():
    with pytest.raises(ValueError):
        choose_dtype("auto", "cuda", cuda=A100, purpose="infer")


@pytest.mark.parametrize("caps", [
    CpuCaps("DEFAULT", frozenset({"asimd", "bf16", "sve"})),     # Arm: DEFAULT is normal
    CpuCaps("DEFAULT", frozenset({"bf16"})),                     # macOS: FEAT_BF16 only
    CpuCaps("SVE256", frozenset({"asimd", "bf16"})),
])
def test_arm_with_bf16_gets_bf16_whatever_the_capability(caps):
    assert choose_dtype("auto", "cpu", cpu=caps).dtype == "bf16"


@pytest.mark.parametrize("caps", [
    CpuCaps("DEFAULT", frozenset({"avx2", "avx512f", "avx512_bf16", "sse4_2"})),  # ATEN_CPU_CAPABILITY=default
    CpuCaps("AVX2", frozenset({"avx2", "amx_bf16", "sse4_2"})),
])
def test_lowered_capability_still_counts_on_x86(caps):
    assert choose_dtype("auto", "cpu", cpu=caps).dtype == "fp32"
