"""Will the run fit? Predicted peak memory of the trainer per GPU and the vLLM server's need.

Pure arithmetic (no torch): shapes in, bytes out. The caller supplies each GPU's memory (NVML, or
the hardware the user declared), so the check works the same on a laptop planning a cluster run.

The trainer's model counts what the code keeps alive at its peak (the end of the forward of the
last TTT step, when the backward starts), part by part:
- static: fp32 master parameters, gradients (the previous step's are alive during the forward:
  the loop zeroes them after it) and AdamW's two moments, each sharded over the FSDP ranks;
  FSDP's gathered copy of the parameters (bf16 with the mixed-precision policy, fp32 without) and
  the unsharded gradient it reduce-scatters; the frozen embedding and verifier head;
- per batch: the packed row on the device (aux states and the verifier's last layer), the target
  distribution over the draft vocabulary;
- per TTT step and decoder layer, the tensors autograd saves (counted op by op from
  model/layers.py and model/eagle3.py: norms in fp32, the projections' inputs, the attention
  kernel's inputs/outputs, the TTT key/value list, the MLP's four [T, I] tensors), the logits, and
  for the dense-mask path the attention bias the memory-efficient kernel keeps;
- transient: the backward's first gradient of the logits.
`code="before"` models main before issue 14 (fp32 frozen tensors, no mixed-precision policy, dense
mask attention with repeated K/V, two fp32 [T, vocab] log-softmaxes kept per step); `"current"` the
code now. Verified against measured peaks on the CPU (tests/train/test_memory_fit.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

GIB = 1024 ** 3


@dataclass(frozen=True)
class TrainerShape:
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    draft_vocab: int
    seq_len: int                 # total_seq_len: tokens per packed row
    ttt_steps: int = 3
    layers: int = 1              # drafter decoder layers
    num_aux: int = 3
    world: int = 1               # training processes (FSDP ranks)
    dtype: str = "bf16"          # compute dtype: bf16 | fp16 | fp32
    device: str = "cuda"         # cuda | cpu
    attention: str = "auto"      # auto | flex | dense | blocked (model.attention)
    code: str = "current"        # current | before


@dataclass
class MemoryEstimate:
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def describe(self) -> str:
        top = sorted(self.parts.items(), key=lambda kv: -kv[1])[:4]
        return f"{gib(self.total)} (" + ", ".join(f"{k} {gib(v)}" for k, v in top) + ")"


def gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def drafter_params(s: TrainerShape) -> int:
    H, I, hd = s.hidden, s.intermediate, s.head_dim
    attn = lambda inp: inp * (s.heads + 2 * s.kv_heads) * hd + s.heads * hd * H  # noqa: E731
    layer0 = attn(2 * H) + 3 * H * I + 3 * H
    later = attn(H) + 3 * H * I + 2 * H
    return s.num_aux * H * H + layer0 + (s.layers - 1) * later + H + s.draft_vocab * H


def _attention_kind(s: TrainerShape) -> str:
    if s.code == "before":
        return "blocked" if (s.attention in ("auto", "blocked") and s.device == "cpu") else "dense"
    if s.attention == "auto":
        return "flex" if s.device == "cuda" else "blocked"
    return s.attention


def trainer_peak(s: TrainerShape) -> MemoryEstimate:
    """Predicted peak bytes of one training process (one GPU)."""
    P = drafter_params(s)
    H, I, T, Vd, hd = s.hidden, s.intermediate, s.seq_len, s.draft_vocab, s.head_dim
    E = 4 if s.dtype == "fp32" else 2            # activation bytes
    F32 = 4
    W = max(1, s.world)
    before = s.code == "before"
    kind = _attention_kind(s)
    parts: dict[str, int] = {}
    parts["params+grads+adam (sharded fp32)"] = 16 * P // W
    if W > 1:  # FSDP: the gathered parameters and the unsharded gradients before reduce-scatter
        gathered = 4 if (before or E == 4) else 2
        parts["fsdp gathered params+grads"] = 2 * gathered * P
    frozen_bytes = 2 if (not before and s.device == "cuda" and E == 2) else 4
    parts["frozen embedding+verifier head"] = (s.vocab + Vd) * H * frozen_bytes
    # the packed row: fp32 before; now bf16 on a GPU training in bf16 (training.source, trainer._batch_dtype)
    batch_bytes = 2 if (not before and s.device == "cuda" and E == 2) else 4
    parts["batch on device"] = T * (s.num_aux + 1) * H * batch_bytes
    # the target distribution: before, the bf16/fp32 logits kept all forward; now p in fp32
    parts["targets"] = T * Vd * (E if before else F32)

    parts["batch on device"] += T * H * E            # fc(aux), the first step's hidden state
    kvh_kernel = s.heads if kind in ("dense", "blocked") else s.kv_heads
    norm = (F32 if E == 2 else 0) + F32           # RMSNorm: an fp32 copy (bf16 input) + the normalised x
    act = 0
    for k in range(s.ttt_steps):
        steps = k + 1
        for layer in range(s.layers):
            per_tok = 0
            if layer == 0:
                per_tok += E * H + norm * H           # embedding, input_layernorm
                per_tok += norm * H                   # hidden_norm
                per_tok += E * 2 * H                  # cat, saved by q/k/v
            else:
                per_tok += norm * H + E * H           # input_layernorm + its output
            per_tok += E * s.heads * hd               # q after rope
            per_tok += E * 2 * steps * kvh_kernel * hd   # keys/values the kernel saves
            per_tok += E * 2 * steps * s.kv_heads * hd   # the TTT key/value list
            per_tok += E * 2 * s.heads * hd           # kernel output + o_proj's input
            per_tok += F32 * s.heads                  # log-sum-exp
            per_tok += E * H + norm * H + E * H       # residual, post_attention_layernorm, its output
            per_tok += E * 4 * I                      # MLP: gate, silu, up, product
            per_tok += E * H                          # layer output
            if kind == "dense":
                per_tok += E * steps * T + steps * T  # the bias the kernel keeps + the bool mask
            act += per_tok * T
        act += T * (norm * H + E * H)                 # final norm
        if before:                                   # fp32 log_softmax of drafter and target kept
            act += T * Vd * (E + 2 * F32)
        else:
            act += T * Vd * E                         # logits kept by the chunked loss
    parts["activations (all TTT steps)"] = act
    parts["backward transient"] = T * Vd * (F32 if before else E) + (0 if kind != "dense" else T * T)
    return MemoryEstimate(parts)


@dataclass(frozen=True)
class ServerShape:
    weight_bytes: int            # the target's weights (all of them)
    tensor_parallel: int = 1
    gpu_memory_utilization: float = 0.9


def vllm_need(s: ServerShape, gpu_total_bytes: int) -> MemoryEstimate:
    """vLLM takes gpu_memory_utilization of the GPU: weights / TP and the KV cache in the rest.
    It fits when the weights leave at least 1 GiB of that share for the KV cache and activations."""
    share = int(gpu_total_bytes * s.gpu_memory_utilization)
    w = s.weight_bytes // max(1, s.tensor_parallel)
    return MemoryEstimate({"weights / TP": w, "kv cache + activations": max(0, share - w)})


@dataclass
class Fit:
    gpu: int
    total_bytes: int
    need_bytes: int
    role: str                    # "train" | "serve"

    @property
    def ok(self) -> bool:
        return self.need_bytes <= self.total_bytes * (0.92 if self.role == "train" else 1.0)

    def line(self) -> str:
        mark = "ok" if self.ok else "DOES NOT FIT"
        return f"GPU {self.gpu} ({self.role}): needs ~{gib(self.need_bytes)} of {gib(self.total_bytes)} — {mark}"


def check_fit(train_gpus: Sequence[int], serve_gpus: Sequence[int], gpu_memory: dict[int, int],
              trainer: MemoryEstimate, server: Optional[ServerShape] = None) -> list[Fit]:
    """One Fit per GPU with a known memory size (`gpu_memory`: index -> bytes). A training GPU keeps
    8% for the CUDA context and fragmentation; a serving GPU must leave vLLM >= 1 GiB of KV cache."""
    out = []
    for g in train_gpus:
        if g in gpu_memory:
            out.append(Fit(g, gpu_memory[g], trainer.total, "train"))
    if server is not None:
        for g in serve_gpus:
            if g in gpu_memory:
                share = int(gpu_memory[g] * server.gpu_memory_utilization)
                need = server.weight_bytes // max(1, server.tensor_parallel) + GIB
                out.append(Fit(g, share, need, "serve"))
    return out
