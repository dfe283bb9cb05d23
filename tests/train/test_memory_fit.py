"""The memory-fit model: predicted vs measured peak of the trainer on the CPU, and the fit verdicts.

Measured in a fresh process per shape (tests/train/memory_probe.py explains the method: resident
set high-water mark with every tensor buffer its own mmap, one-time runtime allocations excluded
by a tiny warm-up run). The model is `speculators_core.memory_fit.trainer_peak` for the CPU case
(fp32, per-document attention, one process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from speculators_core.memory_fit import (GIB, ServerShape, TrainerShape, check_fit, drafter_params, trainer_peak)

ROOT = Path(__file__).resolve().parents[2]

SHAPES = [  # H, I, vocab, draft vocab, tokens, heads, kv heads, head dim, layers, TTT steps, doc length
    dict(hidden=256, intermediate=768, vocab=16000, draft_vocab=4000, seq_len=1024, heads=8, kv_heads=2,
         head_dim=32, layers=1, ttt=3, doc_len=256),
    dict(hidden=512, intermediate=1536, vocab=32000, draft_vocab=8000, seq_len=512, heads=8, kv_heads=4,
         head_dim=64, layers=1, ttt=3, doc_len=200),
    dict(hidden=384, intermediate=1024, vocab=24000, draft_vocab=6000, seq_len=1536, heads=6, kv_heads=2,
         head_dim=64, layers=2, ttt=2, doc_len=512),
]


def _shape(spec: dict, **kw) -> TrainerShape:
    return TrainerShape(hidden=spec["hidden"], intermediate=spec["intermediate"], heads=spec["heads"],
                        kv_heads=spec["kv_heads"], head_dim=spec["head_dim"], vocab=spec["vocab"],
                        draft_vocab=spec["draft_vocab"], seq_len=spec["seq_len"], ttt_steps=spec["ttt"],
                        layers=spec["layers"], **kw)


def measure(spec: dict) -> dict:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "16384", "PYTHONPATH": str(ROOT),
           "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "tests.train.memory_probe", json.dumps(spec)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("spec", SHAPES, ids=["h256-t1024", "h512-t512", "h384-t1536-2layers"])
def test_predicted_peak_is_within_25_percent_of_the_measured_cpu_peak(spec):
    m = measure(spec)
    # the high-water mark was reached by the measured run, not by the warm-up or the imports
    assert m["baseline_bytes"] + m["peak_bytes"] > m["max_before_bytes"]
    pred = trainer_peak(_shape(spec, dtype="fp32", device="cpu")).total
    ratio = pred / m["peak_bytes"]
    print(f"predicted {pred / 2**20:.0f} MiB, measured {m['peak_bytes'] / 2**20:.0f} MiB, ratio {ratio:.2f}")
    assert 0.75 <= ratio <= 1.25


def test_param_count_is_the_drafters():
    torch = pytest.importorskip("torch")
    from speculators_core.model.config import DrafterConfig
    from speculators_core.model.eagle3 import Eagle3Drafter

    for spec in SHAPES:
        cfg = DrafterConfig(hidden_size=spec["hidden"], num_attention_heads=spec["heads"],
                            num_key_value_heads=spec["kv_heads"], head_dim=spec["head_dim"],
                            intermediate_size=spec["intermediate"], vocab_size=spec["vocab"],
                            draft_vocab_size=spec["draft_vocab"], aux_layer_ids=[1, 2, 3],
                            num_layers=spec["layers"], ttt_steps=spec["ttt"])
        with torch.device("meta"):
            m = Eagle3Drafter(cfg)
        assert drafter_params(_shape(spec)) == sum(p.numel() for p in m.parameters())


REFERENCE = TrainerShape(hidden=4096, intermediate=12288, heads=32, kv_heads=8, head_dim=128, vocab=151936,
                         draft_vocab=32000, seq_len=8192, ttt_steps=3, world=2)  # Qwen3-8B, FSDP on 2 GPUs


def test_reference_recipe_fits_an_h100_now_with_margin_and_shrank():
    before = trainer_peak(TrainerShape(**{**REFERENCE.__dict__, "code": "before"}))
    now = trainer_peak(REFERENCE)
    assert now.total < 0.75 * before.total
    assert now.total < 40 * GIB < 80 * GIB
    fits = check_fit([2, 3], [0, 1], {i: 80 * GIB for i in range(4)}, now,
                     ServerShape(weight_bytes=int(16.4e9), tensor_parallel=1, gpu_memory_utilization=0.9))
    assert [f.gpu for f in fits] == [2, 3, 0, 1] and all(f.ok for f in fits)


def test_too_small_gpus_are_reported_per_gpu():
    now = trainer_peak(REFERENCE)
    fits = check_fit([2, 3], [0], {0: 16 * GIB, 2: 16 * GIB, 3: 80 * GIB}, now,
                     ServerShape(weight_bytes=int(16.4e9)))
    by = {f.gpu: f for f in fits}
    assert not by[2].ok and by[3].ok and not by[0].ok
    assert "GPU 2 (train)" in by[2].line() and "DOES NOT FIT" in by[2].line()
    # unknown memory (no NVML, nothing declared): no verdict rather than a guess
    assert check_fit([5], [], {}, now) == []


def test_longer_rows_and_more_steps_need_more():
    base = trainer_peak(REFERENCE).total
    import dataclasses

    assert trainer_peak(dataclasses.replace(REFERENCE, seq_len=16384)).total > base
    assert trainer_peak(dataclasses.replace(REFERENCE, ttt_steps=5)).total > base
    assert trainer_peak(dataclasses.replace(REFERENCE, world=4)).total < base
