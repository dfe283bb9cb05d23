"""Planning for hardware the app is not running on: GPUs declared in `[cluster]` (N nodes x G GPUs
x memory) stand in for the probed ones, and a split over whole nodes for runs of several nodes.

`plan_gpus` / `gpu_memory_for_plan` are what planning reads: the declared GPUs when
`cluster.gpus_per_node` and `cluster.gpu_memory_gb` are set, else this machine's (NVML). Pure
functions besides the probe (no torch), like `runs.advice`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from speculators_core.config import RunConfig
from speculators_core.runs.advice import Advice, GiB, drafter_training_bytes, min_tensor_parallel, suggest_split
from speculators_core.runs.gpu import GpuInfo, GpuProbe
from speculators_core.target import DTYPE_BYTES, TargetInfo


def declared_gpus(cfg: RunConfig) -> list[GpuInfo]:
    """One node's declared GPUs (CUDA indices 0..G-1, idle), or [] when none are declared."""
    c = cfg.cluster
    if not c.declared:
        return []
    mb = float(c.gpu_memory_gb) * 1024
    return [GpuInfo(index=i, name=f"declared GPU ({c.gpu_memory_gb:g} GB)", mem_total_mb=mb, mem_used_mb=0.0,
                    util=None, power_w=None, temp_c=None) for i in range(c.gpus_per_node)]


def plan_gpus(cfg: RunConfig, probe: Optional[GpuProbe] = None) -> list[GpuInfo]:
    """The GPUs of one node to plan for: declared ones when declared, else this machine's
    (`probe`, or NVML now)."""
    if cfg.cluster.declared:
        return declared_gpus(cfg)
    if probe is None:
        from speculators_core.runs.gpu import probe_gpus

        probe = probe_gpus()
    return list(probe.gpus)


def gpu_memory_for_plan(cfg: RunConfig, probe: Optional[GpuProbe] = None) -> list[float]:
    """Memory of each GPU of a node in GiB: the declared size when declared, else what NVML reports."""
    return [g.mem_total_mb / 1024 for g in plan_gpus(cfg, probe)]


def gpu_memory_map(cfg: RunConfig, probe: Optional[GpuProbe] = None, probe_now: bool = False) -> dict[int, int]:
    """GPU index -> total bytes, what the memory-fit check compares with: the declared GPUs when
    hardware is declared ([cluster]), else `probe`'s (NVML); without a probe, NVML is asked only
    when `probe_now` (the app passes its own probe and never blocks on NVML)."""
    if not cfg.cluster.declared and probe is None and not probe_now:
        return {}
    from speculators_core.config.memory_checks import gpu_memory_of_probe

    return gpu_memory_of_probe(GpuProbe(plan_gpus(cfg, probe)))


@dataclass
class ClusterAdvice(Advice):
    serving_nodes: int = 0
    training_nodes: int = 1

    def fix_config(self) -> dict[str, object]:
        return {**super().fix_config(), "cluster.serving_nodes": self.serving_nodes,
                "cluster.training_nodes": self.training_nodes}


def suggest_cluster_split(gpus: list[GpuInfo], target: Optional[TargetInfo], cfg: RunConfig) -> ClusterAdvice:
    """The split for `cluster.nodes` nodes of `gpus` each: on one node, `suggest_split` of its GPUs;
    on several, whole nodes per role (about half serve, the rest train: generating hidden states
    and training cost about the same per token), every GPU of a node in its node's role."""
    nodes = max(1, cfg.cluster.nodes)
    if nodes == 1 or not gpus:
        a = suggest_split(gpus, target, cfg)
        return ClusterAdvice(a.server_gpus, a.training_gpus, a.data_parallel_size, a.tensor_parallel_size,
                             a.reasons, a.warnings, serving_nodes=0, training_nodes=1)
    hs = cfg.hidden_states
    G = len(gpus)
    idx = [g.index for g in gpus]
    reasons, warnings = [], []
    weights = target.weight_bytes() if target is not None else None
    if weights is not None:
        reasons.append(f"the target's weights take {weights / GiB:.1f} GiB ({target.num_parameters() / 1e9:.2f}B "
                       f"parameters x {DTYPE_BYTES.get(target.dtype, 2)} bytes, {target.dtype})")
    if hs.engine == "hf":
        serving, tp, dp, server = 1, 1, 1, idx[:1]
        reasons.append("the built-in hf engine serves from one GPU: one serving node (use engine = 'vllm' "
                       "to serve from every GPU of a node)")
    else:
        serving = max(1, nodes // 2)
        tp = min_tensor_parallel(target, gpus, cfg)
        if tp > G:
            warnings.append(f"one server replica needs tensor parallel {tp}, more than the {G} GPUs of a node; "
                            f"use GPUs with more memory or a lower-precision checkpoint")
            tp = G
        dp = max(1, G // tp)
        server = idx[:dp * tp]
        reasons.append(f"{nodes} nodes split about evenly by whole nodes: generating hidden states (a prefill of "
                       f"the target) and training the drafter cost about the same per token")
    training = nodes - serving
    reasons.append(f"{serving} serving node(s), each one server on GPU {','.join(map(str, server))} (data "
                   f"parallel {dp} x tensor parallel {tp}); {training} training node(s) x {G} GPUs = "
                   f"{training * G} training processes")
    need = drafter_training_bytes(target, cfg)
    if need is not None:
        reasons.append(f"training needs about {need / GiB:.1f} GiB per GPU (drafter + Adam + activations)")
        small = min(g.mem_total_mb for g in gpus) / 1024
        if need > small * GiB * 0.9:
            warnings.append(f"training needs about {need / GiB:.1f} GiB but a GPU has {small:.0f} GiB; "
                            f"lower training.total_seq_len")
    return ClusterAdvice(server, idx, dp, tp, reasons, warnings, serving_nodes=serving, training_nodes=training)


def plan_warnings(cfg: RunConfig, gpus: list[GpuInfo], target: Optional[TargetInfo]) -> list[str]:
    """`assignment_warnings` per node: with serving nodes, the server's GPUs and the training GPUs
    are on different machines (the same indices are no sharing), so each role is checked alone."""
    from speculators_core.runs.advice import assignment_warnings

    if cfg.cluster.serving_nodes <= 0:
        return assignment_warnings(cfg, gpus, target)
    serving, training = cfg.copy(), cfg.copy()
    serving.training.gpus, training.hidden_states.gpus = [], []
    return ([f"serving node: {w}" for w in assignment_warnings(serving, gpus, target)]
            + [f"training node: {w}" for w in assignment_warnings(training, gpus, target)])
