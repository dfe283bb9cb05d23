"""Process-group setup (single process or torchrun; NCCL on GPUs, gloo on CPU) and FSDP2 wrapping."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Optional

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup(device_flag: str = "auto") -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_flag == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA device is visible (check CUDA_VISIBLE_DEVICES / drivers)")
    use_cuda = device_flag == "cuda" or (device_flag == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=timedelta(minutes=30),
                                **({"device_id": device} if use_cuda else {}))
    return Dist(rank, world, local_rank, device)


def all_reduce_sum(t: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def shard_model(model: torch.nn.Module, d: Dist, param_dtype: Optional[torch.dtype] = None) -> torch.nn.Module:
    """FSDP2 with the whole drafter as one unit: its decoder layers run once per TTT step, so a unit
    per layer would be all-gathered (and resharded) ttt_steps times per forward; one unit is gathered
    once per forward and once per backward. `param_dtype` (bf16 training): the gathered parameters
    and the gradients' compute in bf16, gradients reduced in fp32, the sharded master copy fp32."""
    if not d.enabled:
        return model
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32) if param_dtype is not None \
        else MixedPrecisionPolicy()
    fully_shard(model, mp_policy=mp)
    return model


def cleanup(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()
