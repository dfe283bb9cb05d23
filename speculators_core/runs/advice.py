"""GPU assignment advice: how to split the GPUs between the hidden-states server and training.

Pure functions of the probed GPUs, the target's facts and the config (no NVML, no I/O), so the app
can call them on every edit and tests can feed made-up GPU lists.

The model behind the numbers:
- the server (vLLM) holds the target's weights split over tensor-parallel (TP) GPUs, plus a KV cache
  for the prompts in flight; one replica per TP group, data parallel (DP) replicas;
- training holds the drafter (one decoder layer, the draft lm_head, frozen embeddings) with fp32
  Adam state, plus activations for `total_seq_len` tokens;
- generating hidden states (a prefill of the whole target) and training the drafter cost about the
  same per token, so free GPUs are split evenly, as the reference tutorial does (2 + 2 on 4 GPUs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from speculators_core.config import RunConfig
from speculators_core.runs.gpu import GpuInfo
from speculators_core.target import DTYPE_BYTES, TargetInfo

GiB = 1024 ** 3
MiB = 1024 ** 2
#: Share of the server's per-GPU memory budget the weights may take (the rest is KV cache etc.).
WEIGHTS_SHARE = 0.7
#: Minimum memory left for the KV cache and activations on each server GPU, in bytes.
MIN_KV_BYTES = 1 * GiB


@dataclass
class Advice:
    server_gpus: list[int]
    training_gpus: list[int]
    data_parallel_size: int
    tensor_parallel_size: int
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def fix_config(self) -> dict[str, object]:
        """The advice as dotted config keys -> values (what the wizard applies)."""
        return {
            "hidden_states.gpus": list(self.server_gpus),
            "hidden_states.data_parallel_size": self.data_parallel_size,
            "hidden_states.tensor_parallel_size": self.tensor_parallel_size,
            "training.gpus": list(self.training_gpus),
        }


def _gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB"


def drafter_training_bytes(target: Optional[TargetInfo], cfg: RunConfig) -> Optional[int]:
    """Rough training memory of the drafter on one GPU: trainable weights with fp32 Adam (16 B/param),
    frozen embeddings in the target dtype, activations for `total_seq_len` tokens x TTT steps."""
    if target is None:
        return None
    H, V = target.hidden_size, target.vocab_size
    I = target.intermediate_size or 4 * H
    t = cfg.training
    q = target.num_attention_heads * target.head_dim
    kv = target.num_key_value_heads * target.head_dim
    layer = 2 * H * q + 2 * H * kv + 3 * H * I
    trainable = t.num_layers * layer + 3 * H * H * 2 + t.draft_vocab_size * H  # layers, fc (2H->H of 3H), lm_head
    frozen = V * H * DTYPE_BYTES.get(target.dtype, 2)
    # activations: logits over the draft vocab (fp32) + hidden states per TTT step, with backward (x3)
    act = 3 * t.total_seq_len * t.ttt_steps * (t.draft_vocab_size * 4 + 12 * H * 2)
    return int(trainable * 16 + frozen + act)


def _server_budget(g: GpuInfo, cfg: RunConfig) -> float:
    return g.mem_total_mb * MiB * cfg.hidden_states.gpu_memory_utilization


def min_tensor_parallel(target: Optional[TargetInfo], gpus: list[GpuInfo], cfg: RunConfig) -> int:
    """The smallest power-of-two TP whose weight shard leaves room for a KV cache on these GPUs."""
    if target is None or not gpus:
        return max(1, cfg.hidden_states.tensor_parallel_size)
    weights = target.weight_bytes()
    budget = min(_server_budget(g, cfg) for g in gpus)
    tp = 1
    while tp < 64:
        shard = weights / tp
        if shard <= WEIGHTS_SHARE * budget and budget - shard >= MIN_KV_BYTES:
            return tp
        tp *= 2
    return tp


def suggest_split(gpus: list[GpuInfo], target: Optional[TargetInfo], cfg: RunConfig) -> Advice:
    """A server/training split of `gpus` (CUDA numbering) for `cfg`'s target and options."""
    hs = cfg.hidden_states
    if not gpus:
        return Advice([], [], 1, 1, reasons=["no GPU found: the server and training run on the CPU "
                                             "(practical only for tiny targets such as builtin:tiny-qwen3)"])
    reasons: list[str] = []
    warnings: list[str] = []
    free = [g for g in gpus if g.is_idle()]
    busy = [g for g in gpus if not g.is_idle()]
    for g in busy:
        who = ", ".join(f"{p.name} (pid {p.pid})" for p in g.processes if p.attributable) or (
            "processes that cannot be attributed (host PIDs in a container)" if g.processes else "unknown processes")
        warnings.append(f"GPU {g.index} is already in use ({g.mem_used_mb / 1024:.1f} GiB by {who}); "
                        f"it is left out of the split")
    pool = free if free else list(gpus)
    if not free:
        warnings.append("every GPU is already in use by other processes; the split uses them anyway")

    weights = target.weight_bytes() if target is not None else None
    if weights is not None:
        reasons.append(f"the target's weights take {_gib(weights)} ({target.num_parameters() / 1e9:.2f}B "
                       f"parameters x {DTYPE_BYTES.get(target.dtype, 2)} bytes, {target.dtype})")

    if hs.engine == "hf":
        tp = 1
        need = 1
    else:
        tp = min_tensor_parallel(target, pool, cfg)
        need = tp
        if weights is not None:
            budget = min(_server_budget(g, cfg) for g in pool)
            reasons.append(f"tensor parallel {tp}: a {_gib(weights / tp)} weight shard per GPU leaves "
                           f"{_gib(budget - weights / tp)} of the {_gib(budget)} budget "
                           f"(gpu_memory_utilization {hs.gpu_memory_utilization}) for the KV cache")
    n = len(pool)
    idx = [g.index for g in pool]
    if n < need:
        warnings.append(f"the target needs {need} GPUs for one server replica (tensor parallel {tp}) "
                        f"but only {n} are free; use a smaller target, a lower-precision checkpoint, "
                        f"or more GPUs")
        return Advice(idx, idx, 1, tp, reasons, warnings)
    if n == need:
        # Not enough for both roles: share, or (better for throughput) go offline.
        warnings.append(f"only {n} free GPU(s): the server and training must share "
                        f"{'it' if n == 1 else 'them'} (set run.allow_gpu_sharing = true), or use "
                        f"training.mode = 'offline' to generate all hidden states first and train after")
        return Advice(idx, idx, 1, tp, reasons, warnings)

    if hs.engine == "hf":
        dp = 1
        server = idx[:1]
        reasons.append("the built-in hf engine uses one GPU; every other free GPU trains "
                       "(use engine = 'vllm' to serve from several GPUs)")
    else:
        dp = max(1, (n // 2) // tp)
        if n - dp * tp < 1:
            dp -= 1
        dp = max(dp, 1)
        server = idx[: dp * tp]
        reasons.append(f"{n} free GPUs split about evenly: hidden-states generation (a prefill of the "
                       f"target) and drafter training cost about the same per token")
    training = [i for i in idx if i not in server]
    reasons.append(f"server: GPU {','.join(map(str, server))} (data parallel {dp} x tensor parallel {tp}); "
                   f"training: GPU {','.join(map(str, training))} ({len(training)} process"
                   f"{'es' if len(training) > 1 else ''})")
    train_need = drafter_training_bytes(target, cfg)
    if train_need is not None:
        tight = [g for g in pool if g.index in training and train_need > g.mem_free_mb * MiB * 0.9]
        reasons.append(f"training needs about {_gib(train_need)} per GPU (drafter + Adam + activations)")
        for g in tight:
            warnings.append(f"GPU {g.index}: training needs about {_gib(train_need)} but only "
                            f"{g.mem_free_mb / 1024:.1f} GiB are free; lower training.total_seq_len")
    return Advice(server, training, dp, tp, reasons, warnings)


def assignment_warnings(cfg: RunConfig, gpus: list[GpuInfo], target: Optional[TargetInfo]) -> list[str]:
    """What is wrong with the config's GPU assignment on these GPUs: missing, shared, busy, too small."""
    hs, t = cfg.hidden_states, cfg.training
    out: list[str] = []
    by_index = {g.index: g for g in gpus}
    if not gpus:
        if hs.gpus or t.gpus:
            out.append(f"the config assigns GPU(s) (server {hs.gpus}, training {t.gpus}) but no GPU was "
                       f"found; set hidden_states.gpus = [] and training.gpus = [] to run on the CPU")
        return out
    for fld, lst in (("hidden_states.gpus", hs.gpus), ("training.gpus", t.gpus)):
        missing = [i for i in lst if i not in by_index]
        if missing:
            out.append(f"{fld}: GPU {', '.join(map(str, missing))} not found (this machine shows "
                       f"{', '.join(str(g.index) for g in gpus)})")
    shared = sorted(set(hs.gpus) & set(t.gpus))
    if shared:
        out.append(f"GPU {', '.join(map(str, shared))} is shared by the server and training: both will "
                   f"compete for memory and compute"
                   + ("" if cfg.run.allow_gpu_sharing else " (not allowed unless run.allow_gpu_sharing = true)"))
    for i in sorted(set(hs.gpus) | set(t.gpus)):
        g = by_index.get(i)
        if g is None:
            continue
        foreign = [p for p in g.processes if p.attributable]
        unknown = [p for p in g.processes if not p.attributable]  # a PID namespace: whose, cannot be told
        if foreign or g.mem_used_mb > 0.05 * g.mem_total_mb:
            who = ", ".join(f"{p.name} (pid {p.pid}, {p.mem_mb / 1024:.1f} GiB)" for p in foreign) or (
                f"{len(unknown)} process(es) that cannot be attributed (NVML reports host PIDs inside this "
                f"container)" if unknown else "another process")
            out.append(f"GPU {i} already has {g.mem_used_mb / 1024:.1f} GiB in use by {who}")
    weights = target.weight_bytes() if target is not None else None
    server = [by_index[i] for i in hs.gpus if i in by_index]
    if hs.engine == "vllm":
        for g in server:
            want = g.mem_total_mb * hs.gpu_memory_utilization
            if g.mem_free_mb < want:
                fit = max(0.05, int(g.mem_free_mb / g.mem_total_mb * 20) / 20 - 0.05)
                out.append(f"GPU {g.index}: vLLM will refuse to start: gpu_memory_utilization "
                           f"{hs.gpu_memory_utilization} wants {want / 1024:.1f} GiB free but only "
                           f"{g.mem_free_mb / 1024:.1f} GiB are; free the GPU or set "
                           f"hidden_states.gpu_memory_utilization = {fit:.2f}")
    if weights is not None and server:
        tp = hs.tensor_parallel_size if hs.engine == "vllm" else 1
        shard = weights / tp
        for g in server:
            free_budget = min(_server_budget(g, cfg), g.mem_free_mb * MiB)
            if shard + MIN_KV_BYTES > free_budget:
                need_tp = min_tensor_parallel(target, server, cfg)
                out.append(f"GPU {g.index}: the server needs {_gib(shard)} for weights (tensor parallel {tp}) "
                           f"plus a KV cache, but only {_gib(free_budget)} is available "
                           f"(gpu_memory_utilization {hs.gpu_memory_utilization}); "
                           + (f"use tensor_parallel_size = {need_tp}" if need_tp > tp else "free the GPU"))
    train_need = drafter_training_bytes(target, cfg)
    if train_need is not None:
        for i in t.gpus:
            g = by_index.get(i)
            if g is None:
                continue
            avail = g.mem_free_mb * MiB
            if i in hs.gpus and weights is not None:
                avail = g.mem_total_mb * MiB * (1 - hs.gpu_memory_utilization)
            if train_need > avail:
                out.append(f"GPU {i}: training needs about {_gib(train_need)} but only {_gib(avail)} is left"
                           + (" after the server's gpu_memory_utilization share" if i in hs.gpus else "")
                           + "; lower training.total_seq_len or give training its own GPU")
    return out
