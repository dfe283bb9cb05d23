"""Drafter training throughput on synthetic hidden states (no server, no target weights).

    .venv/bin/python benchmarks/train_bench.py                       # tiny drafter (H=256) on CPU
    .venv/bin/python benchmarks/train_bench.py --size qwen3-8b --device cuda   # H=4096 drafter on a GPU
    .venv/bin/python benchmarks/train_bench.py --dtype fp32          # one compute dtype only

Runs the real training step (the `Eagle3Drafter` TTT forward with the packed-document mask,
autocast in the compute dtype over fp32 master weights, backward, grad clipping, AdamW) on random
packed rows of `--total-seq-len` tokens, once per `--dtype` (default: auto, bf16 and fp32, so the
table shows what `auto` chose on this machine and what the other choices would cost), and prints
tokens/s, peak memory, model FLOPs per token and, on a GPU, the achieved fraction of the GPU's
dense bf16 peak (MFU). The CPU's capability is printed with the figures: on a CPU without native
bf16 (AVX2), bf16 is emulated and `auto` picks fp32.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from speculators_core.model.config import DrafterConfig  # noqa: E402
from speculators_core.model.eagle3 import Eagle3Drafter  # noqa: E402
from speculators_core.model.vocab import mapping_tables  # noqa: E402
from speculators_core.training.data import Sample  # noqa: E402
from speculators_core.training.packing import collate  # noqa: E402

SIZES = {
    # the demo target's shape
    "tiny": dict(hidden_size=256, num_attention_heads=4, num_key_value_heads=2, head_dim=64, intermediate_size=768,
                 vocab_size=2048, draft_vocab_size=1024, rope_theta=10000.0),
    # Qwen3-8B: hidden 4096, 32 heads x 128, 8 kv heads, intermediate 12288, vocab 151936
    "qwen3-8b": dict(hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                     intermediate_size=12288, vocab_size=151936, draft_vocab_size=32000, rope_theta=1000000.0),
    # Llama-3.1-8B: hidden 4096, 32 heads x 128, 8 kv heads, intermediate 14336, vocab 128256, llama3 rope
    "llama3-8b": dict(hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                      intermediate_size=14336, vocab_size=128256, draft_vocab_size=32000, rope_theta=500000.0,
                      rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
}

#: dense bf16 peak (TFLOP/s, no sparsity) by a substring of torch.cuda.get_device_name()
BF16_PEAK_TFLOPS = [("H200", 989.0), ("H100 SXM", 989.0), ("H100 NVL", 835.0), ("H100 PCIe", 756.0), ("H100", 989.0),
                    ("GH200", 989.0), ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.0), ("A10G", 70.0),
                    ("L4", 121.0), ("RTX 4090", 165.0), ("A6000", 155.0)]


def model_flops_per_token(cfg: DrafterConfig, K: int, attended_pairs_per_token: list[float]) -> float:
    """Useful FLOPs per (real) token of one training step: trainable matmuls x3 (forward + backward),
    the frozen verifier head forward once, attention over the keys each query may see."""
    H, I, Vd = cfg.hidden_size, cfg.intermediate_size, cfg.draft_vocab_size
    q, kv = cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim
    fc = 2 * cfg.num_aux * H * H
    total = 3 * fc + 2 * H * Vd  # fc once; targets = verifier lm_head (forward only)
    for k in range(K):
        per = 0.0
        for layer in range(cfg.num_layers):
            inp = 2 * H if layer == 0 else H
            per += 2 * inp * (q + 2 * kv) + 2 * q * H + 6 * H * I
            per += 4 * q * attended_pairs_per_token[k]  # QK^T and AV
        per += 2 * H * Vd  # draft lm_head
        total += 3 * per
    return float(total)


def synthetic_batch(cfg: DrafterConfig, total_seq_len: int, doc_len: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    samples, used, i = [], 0, 0
    while used + doc_len <= total_seq_len:
        samples.append(Sample(i, torch.randint(0, cfg.vocab_size, (doc_len,), generator=g),
                              torch.randn(doc_len, cfg.num_aux * cfg.hidden_size, generator=g, dtype=torch.bfloat16),
                              torch.randn(doc_len, cfg.hidden_size, generator=g, dtype=torch.bfloat16),
                              torch.ones(doc_len, dtype=torch.int64)))
        used += doc_len
        i += 1
    return collate(samples, cfg.num_aux * cfg.hidden_size, cfg.hidden_size)  # fp32, as the trainer collates


def measure(a, dtype: str) -> dict:
    """One timed run of the training step in the compute dtype `dtype` (auto/bf16/fp16/fp32)."""
    from speculators_core.precision import choose_dtype

    cuda = a.device == "cuda" or (a.device == "auto" and torch.cuda.is_available())
    dev = torch.device("cuda" if cuda else "cpu")
    prec = choose_dtype(dtype, dev.type)
    T = a.total_seq_len or (8192 if cuda else 1024)
    doc = a.doc_len or max(16, T // 4)
    steps = a.steps or (20 if cuda else 5)
    K = a.ttt_steps
    cfg = DrafterConfig(**SIZES[a.size], aux_layer_ids=[1, 2, 3], num_layers=a.num_layers, ttt_steps=K)
    torch.manual_seed(0)
    model = Eagle3Drafter(cfg)
    sel = torch.arange(cfg.draft_vocab_size) * (cfg.vocab_size // cfg.draft_vocab_size)
    d2t, t2d = mapping_tables(sel, cfg.vocab_size)
    model.set_frozen(torch.randn(cfg.vocab_size, cfg.hidden_size) * 0.02, torch.ones(cfg.hidden_size),
                     torch.randn(cfg.draft_vocab_size, cfg.hidden_size) * 0.02, d2t, t2d)
    model.init_weights(0)
    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01, **({"fused": True} if cuda else {}))
    scaler = torch.amp.GradScaler(dev.type, enabled=prec.dtype == "fp16")
    batches = [synthetic_batch(cfg, T, doc, s).to(dev) for s in range(2)]
    tokens = batches[0].num_tokens
    # attended keys per query at step k: causal prefix within the document (+ one own column per later step)
    mean_prefix = (doc + 1) / 2
    flops_tok = model_flops_per_token(cfg, K, [mean_prefix + k for k in range(K)])

    def one_step(b):
        with torch.autocast(dev.type, dtype=prec.torch_dtype, enabled=prec.autocast):
            loss, _, _ = model(b.input_ids, b.aux, b.verifier_last, b.loss_mask, b.position_ids, b.doc_ids)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(opt)
        scaler.update()
        return loss

    for i in range(a.warmup):
        one_step(batches[i % 2])
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for i in range(steps):
        loss = one_step(batches[i % 2])
    if cuda:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    tok_s = tokens * steps / dt
    res = {"size": a.size, "device": torch.cuda.get_device_name() if cuda else "cpu",
           "cpu_capability": torch.backends.cpu.get_cpu_capability(), "dtype_asked": dtype,
           "dtype": prec.dtype, "dtype_reason": prec.reason, "total_seq_len": T,
           "doc_len": doc, "ttt_steps": K, "num_layers": a.num_layers, "tokens_per_step": tokens, "steps": steps,
           "trainable_params_m": sum(p.numel() for p in params) / 1e6, "step_s": dt / steps,
           "tokens_per_s": tok_s, "model_flops_per_token": flops_tok,
           "achieved_tflops": flops_tok * tok_s / 1e12, "final_loss": float(loss.detach())}
    if cuda:
        res["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
        peak = next((v for k, v in BF16_PEAK_TFLOPS if k in res["device"]), None)
        res["bf16_peak_tflops"] = peak
        res["mfu"] = res["achieved_tflops"] / peak if peak else None
    else:
        res["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        res["torch_threads"] = torch.get_num_threads()
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=sorted(SIZES), default="tiny")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--dtype", nargs="+", choices=("auto", "bf16", "fp16", "fp32"), default=["auto", "bf16", "fp32"],
                   help="compute dtype(s) to measure, one run each (default: auto bf16 fp32)")
    p.add_argument("--total-seq-len", type=int, default=None, help="tokens per packed row (default 1024 CPU, 8192 GPU)")
    p.add_argument("--doc-len", type=int, default=None, help="tokens per synthetic document (default total/4)")
    p.add_argument("--ttt-steps", type=int, default=3)
    p.add_argument("--num-layers", type=int, default=1)
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 5 CPU, 20 GPU)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print one JSON object per dtype only")
    a = p.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device visible", file=sys.stderr)
        return 2
    results = []
    for dtype in a.dtype:
        res = measure(a, dtype)
        results.append(res)
        if a.json:
            print(json.dumps(res), flush=True)
            continue
        cuda = res["device"] != "cpu"
        mem = f"peak GPU memory {res['peak_mem_gib']:.1f} GiB" if cuda else f"peak RSS {res['peak_rss_gib']:.2f} GiB"
        mfu = f", MFU {res['mfu'] * 100:.1f}% of {res['bf16_peak_tflops']:.0f} TFLOP/s bf16" if cuda and res.get("mfu") else ""
        print(f"--dtype {dtype:4} -> {res['dtype']:4}: {a.size} drafter ({res['trainable_params_m']:.1f}M trainable) "
              f"on {res['device']} ({res['cpu_capability']}, {res.get('torch_threads', '-')} threads): "
              f"{res['tokens_per_s']:,.0f} tokens/s, {res['step_s']:.3f} s/step, {mem}, "
              f"{res['model_flops_per_token'] / 1e9:.2f} GFLOP/token, {res['achieved_tflops']:.2f} TFLOP/s{mfu}",
              flush=True)
    if not a.json and results:
        print(f"auto chose {results[0]['dtype'] if results[0]['dtype_asked'] == 'auto' else '-'}: "
              f"{next((r['dtype_reason'] for r in results if r['dtype_asked'] == 'auto'), 'auto not measured')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
