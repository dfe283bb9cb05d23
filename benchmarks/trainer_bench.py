"""The real trainer path, end to end, on random target tensors: throughput, data wait, peak memory, MFU.

    .venv/bin/python benchmarks/trainer_bench.py                        # Qwen3-8B-shaped, 8192 tokens, GPU(s)
    .venv/bin/python benchmarks/trainer_bench.py --small --device cpu   # a tiny shape on the CPU (smoke run)

Builds, in a temporary directory and without any download: a target directory (config.json of the
chosen shape and a safetensors file with random bf16 embedding / final norm / lm_head), a prepared
dataset of random token rows, and a filled hidden-states cache (random bf16 states; rows that share
token ids share one file through hard links, so the cache costs a few distinct rows of disk). Then
runs `python -m speculators_core.train` (`torchrun` for --nproc > 1: FSDP2) offline from that cache
(`--on-missing raise`): the prefetcher, noise, packing, the TTT forward and the optimizer are the
trainer's own. Reads metrics.jsonl and prints, over the steps after --warmup: tokens/s, the share of
step time spent waiting for data, peak GPU memory (the trainer's `peak_mem_gib`) and the share of
the GPU's dense bf16 peak FLOP/s (model FLOPs as in train_bench.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

QWEN3_8B = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 4096,
            "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
            "intermediate_size": 12288, "vocab_size": 151936, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
            "max_position_embeddings": 40960, "tie_word_embeddings": True, "torch_dtype": "bfloat16"}
SMALL = {**QWEN3_8B, "hidden_size": 128, "num_hidden_layers": 8, "num_attention_heads": 4, "num_key_value_heads": 2,
         "head_dim": 32, "intermediate_size": 256, "vocab_size": 4096}


def build_inputs(root: Path, shape: dict, rows: int, row_len: int, distinct: int, draft_vocab: int) -> tuple[Path, Path, Path]:
    import torch
    from datasets import Dataset
    from safetensors.torch import save_file

    from speculators_core.hidden_states import cache_path

    g = torch.Generator().manual_seed(0)
    H, V = shape["hidden_size"], shape["vocab_size"]
    target = root / "target"
    target.mkdir()
    (target / "config.json").write_text(json.dumps(shape))
    # tied embeddings: one [V, H] matrix is the embedding and the lm_head (half the bytes to write)
    save_file({"model.embed_tokens.weight": (torch.randn(V, H, generator=g) * 0.02).to(torch.bfloat16),
               "model.norm.weight": torch.ones(H, dtype=torch.bfloat16)}, str(target / "model.safetensors"))
    ids = [torch.randint(0, V, (row_len,), generator=g) for _ in range(distinct)]
    data = root / "data"
    row_ids = [ids[r % distinct].tolist() for r in range(rows)]
    Dataset.from_dict({"input_ids": row_ids, "loss_mask": [[1] * row_len] * rows,
                       "seq_len": [row_len] * rows}).save_to_disk(str(data))
    freq = {t: 1 for t in range(min(V, draft_vocab * 2))}
    torch.save(freq, data / "token_freq.pt")
    cache = root / "cache"
    cache.mkdir()
    n_layers = 4  # 3 aux layers + the last
    for r in range(rows):
        dst = cache_path(cache, r)
        if r < distinct:
            hs = torch.randn(row_len, n_layers, H, generator=g).to(torch.bfloat16)
            save_file({"hidden_states": hs.contiguous(), "token_ids": ids[r].clone()}, str(dst))
        else:
            os.link(cache_path(cache, r % distinct), dst)
    return target, data, cache


def run(a) -> dict:
    import torch

    from benchmarks.train_bench import BF16_PEAK_TFLOPS, model_flops_per_token
    from speculators_core.model.config import DrafterConfig
    from speculators_core.target import TargetInfo

    shape = SMALL if a.small else QWEN3_8B
    T = a.total_seq_len or (512 if a.small else 8192)
    row_len = a.row_len or T // 4
    per_step = T // row_len
    steps = a.steps
    rows = per_step * a.nproc * steps + per_step  # every rank gets `steps` full rows, with a spare
    draft_vocab = min(a.draft_vocab, shape["vocab_size"] // 2)
    with tempfile.TemporaryDirectory(prefix="trainer-bench-", dir=a.tmp) as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        target, data, cache = build_inputs(root, shape, rows, row_len, distinct=min(rows, 2 * per_step),
                                           draft_vocab=draft_vocab)
        build_s = time.perf_counter() - t0
        argv = ["--verifier-name-or-path", str(target), "--data-path", str(data), "--save-path", str(root / "ckpt"),
                "--on-missing", "raise", "--hidden-states-path", str(cache), "--total-seq-len", str(T),
                "--draft-vocab-size", str(draft_vocab), "--ttt-steps", str(a.ttt_steps), "--epochs", "1",
                "--max-steps", str(steps), "--val-split", "0", "--device", a.device, "--dtype", a.dtype,
                "--noise", "0.05", "--target-layer-ids", "2", "4", "5", str(shape["num_hidden_layers"])]
        if a.nproc > 1:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={a.nproc}",
                   "-m", "speculators_core.train", *argv]
        else:
            cmd = [sys.executable, "-m", "speculators_core.train", *argv]
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   CUDA_DEVICE_ORDER="PCI_BUS_ID", PYTORCH_CUDA_ALLOC_CONF="expandable_segments:True")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=a.timeout)
        train_s = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"trainer failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
        recs = [json.loads(x) for x in (root / "ckpt" / "metrics.jsonl").read_text().splitlines() if x.strip()]
    train = [r for r in recs if r.get("type") == "train"]
    start = next((r for r in recs if r.get("type") == "start"), {})
    timed = train[a.warmup:] or train
    step_time = sum(r["step_time_s"] for r in timed)
    tokens = sum(r["tokens"] for r in timed)
    tok_s = tokens / step_time if step_time else 0.0
    cfg = DrafterConfig.from_target(TargetInfo("bench", None, shape), draft_vocab_size=draft_vocab,
                                    aux_layer_ids=[2, 4, 5], num_layers=1, ttt_steps=a.ttt_steps)
    flops_tok = model_flops_per_token(cfg, a.ttt_steps, [(row_len + 1) / 2 + k for k in range(a.ttt_steps)])
    res = {"shape": "small" if a.small else "qwen3-8b", "device": a.device, "nproc": a.nproc, "total_seq_len": T,
           "row_len": row_len, "ttt_steps": a.ttt_steps, "draft_vocab": draft_vocab, "steps": len(train),
           "timed_steps": len(timed), "dtype": start.get("dtype"), "tokens_per_s": tok_s,
           "tokens_per_s_per_process": tok_s / a.nproc,
           "median_step_s": statistics.median(r["step_time_s"] for r in timed) if timed else None,
           "data_wait_share": sum(r["data_wait_s"] for r in timed) / step_time if step_time else None,
           "peak_mem_gib": max((r.get("peak_mem_gib") or 0.0) for r in train) if train else None,
           "model_flops_per_token": flops_tok, "build_s": build_s, "train_s": train_s}
    from speculators_core.memory_fit import TrainerShape, trainer_peak

    cuda = torch.cuda.is_available() and a.device != "cpu"
    res["predicted_peak_gib"] = trainer_peak(TrainerShape(
        hidden=cfg.hidden_size, intermediate=cfg.intermediate_size, heads=cfg.num_attention_heads,
        kv_heads=cfg.num_key_value_heads, head_dim=cfg.head_dim, vocab=cfg.vocab_size, draft_vocab=draft_vocab,
        seq_len=T, ttt_steps=a.ttt_steps, world=a.nproc, dtype=res["dtype"] or "bf16",
        device="cuda" if cuda else "cpu")).total / 2**30
    if cuda:
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in BF16_PEAK_TFLOPS if k in name), None)
        res["gpu"], res["bf16_peak_tflops"] = name, peak
        res["bf16_peak_share"] = flops_tok * res["tokens_per_s_per_process"] / (peak * 1e12) if peak else None
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="a tiny target shape (CPU smoke run)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--dtype", choices=("auto", "bf16", "fp16", "fp32"), default="auto")
    p.add_argument("--nproc", type=int, default=1, help="training processes (torchrun + FSDP2 when > 1)")
    p.add_argument("--total-seq-len", type=int, default=None, help="tokens per packed row (default 8192; small 512)")
    p.add_argument("--row-len", type=int, default=None, help="tokens per document (default total/4)")
    p.add_argument("--ttt-steps", type=int, default=3)
    p.add_argument("--draft-vocab", type=int, default=32000)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5, help="steps left out of the figures (compilation, allocator)")
    p.add_argument("--timeout", type=float, default=280.0)
    p.add_argument("--tmp", default=None, help="where the synthetic target/data/cache go (default: $TMPDIR)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    res = run(a)
    if a.json:
        print(json.dumps(res))
        return 0
    mfu = (f", {res['bf16_peak_share'] * 100:.1f}% of {res['bf16_peak_tflops']:.0f} TFLOP/s bf16 peak"
           if res.get("bf16_peak_share") else "")
    mem = (f"peak GPU memory {res['peak_mem_gib']:.1f} GiB" if res.get("peak_mem_gib") else "peak GPU memory n/a (CPU)") + \
        f" (memory_fit predicts {res['predicted_peak_gib']:.1f} GiB)"
    print(f"trainer ({res['shape']}, {res['nproc']} process(es), {res.get('gpu') or res['device']}, {res['dtype']}): "
          f"{res['tokens_per_s']:,.0f} tokens/s over {res['timed_steps']} steps of {res['total_seq_len']} tokens, "
          f"data wait {res['data_wait_share'] * 100:.1f}% of step time, {mem}{mfu}; "
          f"median step {res['median_step_s']:.3f} s (inputs built in {res['build_s']:.0f} s, run {res['train_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
