"""Measure the trainer's peak memory on the CPU, in a fresh process (used by test_memory_fit).

    python -m tests.train.memory_probe '{"hidden": 256, ...}'   -> prints one JSON line

Method: the drafter, its frozen tensors, an AdamW and one packed batch, and two training steps of
the trainer's own sequence (forward with the global counts, zero_grad, backward, clip, step), so
the second forward runs with the optimizer state and the previous step's gradients alive, as in
training. The process is started with MALLOC_MMAP_THRESHOLD_=16384, so every tensor buffer of
16 KiB or more is its own mmap, given back to the OS when freed: the resident set then follows the
live tensors. Peak = VmHWM (the kernel's high-water mark of the resident set) minus the
resident set just before the model is built (torch imported and warmed up).
"""

from __future__ import annotations

import json
import resource
import sys


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _hwm() -> int:
    """This process's resident high-water mark (VmHWM). Not getrusage's ru_maxrss: Linux keeps that
    across execve, so a probe started from a big pytest process would report the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(spec: dict) -> dict:
    import torch

    from speculators_core.model.config import DrafterConfig
    from speculators_core.model.eagle3 import Eagle3Drafter
    from speculators_core.model.vocab import mapping_tables
    from speculators_core.training.data import Sample
    from speculators_core.training.packing import collate

    torch.set_num_threads(1)

    def train(spec: dict, g: torch.Generator) -> None:
        H, I, V, Vd, T = spec["hidden"], spec["intermediate"], spec["vocab"], spec["draft_vocab"], spec["seq_len"]
        lens, left, doc_len = [], T, spec["doc_len"]
        while left > 0:
            lens.append(min(doc_len, left))
            left -= lens[-1]
        n_aux = 3
        samples = [Sample(i, torch.randint(0, V, (n,), generator=g), torch.randn(n, n_aux * H, generator=g),
                          torch.randn(n, H, generator=g), torch.ones(n, dtype=torch.int64)) for i, n in enumerate(lens)]
        cfg = DrafterConfig(hidden_size=H, num_attention_heads=spec["heads"], num_key_value_heads=spec["kv_heads"],
                            head_dim=spec["head_dim"], intermediate_size=I, vocab_size=V, draft_vocab_size=Vd,
                            aux_layer_ids=[1, 2, 3], num_layers=spec["layers"], ttt_steps=spec["ttt"])
        model = Eagle3Drafter(cfg)
        d2t, t2d = mapping_tables(torch.arange(Vd), V)
        model.set_frozen(torch.randn(V, H, generator=g), torch.ones(H), torch.randn(Vd, H, generator=g) * 0.05, d2t, t2d)
        model.init_weights(0)
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        for _ in range(2):
            b = collate(samples, n_aux * H, H)
            vb = (b.loss_mask > 0) & (b.doc_ids >= 0)
            counts = [float(vb[:, k:].sum()) for k in range(cfg.ttt_steps)]
            loss, _, _ = model(b.input_ids, b.aux, b.verifier_last, b.loss_mask, b.position_ids, b.doc_ids,
                               counts=counts)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            del loss, b

    # the runtime's one-time allocations (kernels' scratch, the autograd engine, AdamW's code path):
    # a whole training run of a tiny drafter first, so the baseline below excludes them
    train({"hidden": 64, "intermediate": 128, "vocab": 512, "draft_vocab": 128, "seq_len": 64,
           "heads": spec["heads"], "kv_heads": spec["kv_heads"], "head_dim": 16, "layers": spec["layers"],
           "ttt": spec["ttt"], "doc_len": 16}, torch.Generator().manual_seed(1))
    base = _rss()
    before_max = _hwm()
    train(spec, torch.Generator().manual_seed(0))
    peak = _hwm()
    return {"peak_bytes": peak - base, "baseline_bytes": base, "max_before_bytes": before_max}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
