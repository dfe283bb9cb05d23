"""The memory-fit check of a configuration: `memory_fit`'s predictions for this run's shapes,
against each assigned GPU's memory (from NVML or declared hardware: the caller's `gpu_memory`),
as `Problem` warnings with the fix."""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

from speculators_core import memory_fit as mf
from speculators_core.config.schema import RunConfig


@dataclasses.dataclass
class RunMemory:
    trainer: mf.MemoryEstimate
    shape: mf.TrainerShape
    server: Optional[mf.ServerShape]
    fits: list[mf.Fit]

    def per_gpu(self) -> dict[int, mf.Fit]:
        return {f.gpu: f for f in self.fits}

    def lines(self) -> list[str]:
        out = [f"trainer: ~{self.trainer.describe()} per GPU"]
        if self.server is not None:
            out.append(f"vLLM: weights ~{mf.gib(self.server.weight_bytes // max(1, self.server.tensor_parallel))} per GPU "
                       f"(+ KV cache within gpu_memory_utilization {self.server.gpu_memory_utilization})")
        return out + [f.line() for f in self.fits]


def gpu_memory_of_probe(probe) -> dict[int, int]:
    """GPU index -> total bytes from a `runs.gpu.GpuProbe` (NVML)."""
    return {g.index: int(g.mem_total_mb * 1024 * 1024) for g in getattr(probe, "gpus", []) if g.mem_total_mb}


def trainer_shape(cfg: RunConfig, target) -> mf.TrainerShape:
    t = cfg.training
    world = len(t.gpus) if t.gpus else max(1, t.cpu_processes)
    dtype = t.dtype if t.dtype != "auto" else ("bf16" if t.gpus else "fp32")
    return mf.TrainerShape(
        hidden=target.hidden_size, intermediate=target.intermediate_size or 4 * target.hidden_size,
        heads=target.num_attention_heads, kv_heads=target.num_key_value_heads, head_dim=target.head_dim,
        vocab=target.vocab_size, draft_vocab=min(t.draft_vocab_size, target.vocab_size),
        seq_len=t.total_seq_len, ttt_steps=t.ttt_steps, layers=t.num_layers, world=world, dtype=dtype,
        device="cuda" if t.gpus else "cpu")


def run_memory(cfg: RunConfig, target, gpu_memory: Mapping[int, int]) -> Optional[RunMemory]:
    """None when the target's facts are unknown (no config.json)."""
    if target is None or not target.hidden_size or not target.vocab_size:
        return None
    try:
        shape = trainer_shape(cfg, target)
        trainer = mf.trainer_peak(shape)
    except (TypeError, ValueError, ZeroDivisionError):  # a bad field: validate's own problem says it
        return None
    hs = cfg.hidden_states
    server = None
    if hs.engine == "vllm" and hs.gpus:
        server = mf.ServerShape(weight_bytes=target.weight_bytes(), tensor_parallel=max(1, hs.tensor_parallel_size),
                                gpu_memory_utilization=hs.gpu_memory_utilization)
    fits = mf.check_fit(cfg.training.gpus, hs.gpus if server else [], dict(gpu_memory), trainer, server)
    return RunMemory(trainer, shape, server, fits)


def _fitting_seq_len(shape: mf.TrainerShape, budget: int) -> Optional[int]:
    n = shape.seq_len
    while n > 512:
        n //= 2
        if mf.trainer_peak(dataclasses.replace(shape, seq_len=n)).total <= budget:
            return n
    return None


def memory_problems(cfg: RunConfig, target, gpu_memory: Mapping[int, int]) -> list:
    from speculators_core.config.checks import Problem

    rm = run_memory(cfg, target, gpu_memory)
    if rm is None:
        return []
    P = []
    for f in rm.fits:
        if f.ok:
            continue
        if f.role == "train":
            shorter = _fitting_seq_len(rm.shape, int(f.total_bytes * 0.92))
            fix = (f"lower training.total_seq_len (e.g. {shorter})" if shorter else "lower training.total_seq_len") + \
                  ", train on more GPUs (FSDP shards the optimizer state) or lower training.draft_vocab_size"
            P.append(Problem("training.total_seq_len",
                             f"predicted trainer peak ~{mf.gib(f.need_bytes)} per GPU does not fit GPU {f.gpu} "
                             f"({mf.gib(f.total_bytes)})", fix, "warning"))
        else:
            P.append(Problem("hidden_states.tensor_parallel_size",
                             f"the target's weights need ~{mf.gib(f.need_bytes - mf.GIB)} per GPU (+1 GiB KV cache), "
                             f"GPU {f.gpu} offers {mf.gib(f.total_bytes)} at gpu_memory_utilization "
                             f"{cfg.hidden_states.gpu_memory_utilization}",
                             "raise hidden_states.tensor_parallel_size (split the weights over more GPUs) or "
                             "gpu_memory_utilization", "warning"))
    return P
