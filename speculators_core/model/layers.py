"""Building blocks of the drafter: RMSNorm, rotary embedding, attention over a key/value list, SwiGLU.

Parameter names match the Llama layout vLLM loads (`self_attn.q_proj`, `mlp.gate_proj`, ...).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from speculators_core.model.config import DrafterConfig


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return (self.weight.float() * x).to(dtype)


def rope_inv_freq(cfg: DrafterConfig) -> torch.Tensor:
    """Inverse frequencies [head_dim/2] for the target's rotary embedding (default, linear, llama3)."""
    dim = cfg.head_dim
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    s = cfg.rope_scaling or {}
    kind = cfg.rope_type
    if kind == "linear":
        inv = inv / float(s["factor"])
    elif kind == "llama3":
        factor = float(s["factor"])
        low = float(s.get("low_freq_factor", 1.0))
        high = float(s.get("high_freq_factor", 4.0))
        old_len = float(s.get("original_max_position_embeddings", 8192))
        low_wavelen, high_wavelen = old_len / low, old_len / high
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
        inv = torch.where(medium, smoothed, scaled)
    return inv.float()


def rope_cos_sin(inv_freq: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [B, T, head_dim] (fp32) for integer position ids [B, T]."""
    freqs = position_ids.float()[..., None] * inv_freq.to(position_ids.device)[None, None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, heads, T, hd]; cos/sin [B, T, hd] (the HF 'rotate half' convention vLLM also uses)."""
    cos, sin = cos[:, None].to(x.dtype), sin[:, None].to(x.dtype)
    return x * cos + _rotate_half(x) * sin


def doc_blocks(doc_ids: torch.Tensor) -> Optional[list[list[tuple[int, int]]]]:
    """Per row, the [start, end) runs of equal doc id (padding's -1 included), or None when a doc id
    occurs in two runs of a row (attention would cross between them: only the dense path is exact)."""
    out = []
    for row in doc_ids.detach().cpu():
        T = row.numel()
        cuts = (torch.nonzero(row[1:] != row[:-1]).flatten() + 1).tolist()
        bounds = [0, *cuts, T]
        runs = list(zip(bounds[:-1], bounds[1:]))
        if len({int(row[s]) for s, _ in runs}) != len(runs):
            return None
        out.append(runs)
    return out


def fast_sdpa(q: torch.Tensor):
    """On CUDA, SDPA limited to the fused kernels: with the TTT mask a silent fallback to the math
    kernel would keep fp32 [heads, T, (k+1)T] scores (an OOM at 8192 tokens), so it fails loudly
    instead. Elsewhere (the CPU) no restriction."""
    import contextlib

    if not q.is_cuda:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION])


def blocked_attention(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                      blocks: list[list[tuple[int, int]]]) -> torch.Tensor:
    """What `scaled_dot_product_attention(q, keys, values, mask)` gives for the TTT mask (causal
    within a document in step 0, the own column in each later step), computed one document at a
    time: each document's [L, steps*L] block instead of the row's [T, steps*T], of which all but the
    blocks are masked. On a CPU with packed rows of several documents this does a fraction of the
    work (the sum of L^2 instead of T^2 per step). q [B, h, T, d]; keys/values [B, h, steps*T, d]."""
    B, _, T, _ = q.shape
    steps = keys.shape[2] // T
    rows = []
    for b in range(B):
        pieces = []
        for s, e in blocks[b]:
            qs = q[b:b + 1, :, s:e]
            if steps == 1:
                with fast_sdpa(qs):
                    pieces.append(F.scaled_dot_product_attention(qs, keys[b:b + 1, :, s:e], values[b:b + 1, :, s:e],
                                                                 is_causal=True))
                continue
            ks = torch.cat([keys[b:b + 1, :, j * T + s:j * T + e] for j in range(steps)], dim=2)
            vs = torch.cat([values[b:b + 1, :, j * T + s:j * T + e] for j in range(steps)], dim=2)
            L = e - s
            causal = torch.ones(L, L, dtype=torch.bool, device=q.device).tril()
            eye = torch.eye(L, dtype=torch.bool, device=q.device)
            with fast_sdpa(qs):
                pieces.append(F.scaled_dot_product_attention(qs, ks, vs, attn_mask=torch.cat([causal] + [eye] * (steps - 1), -1)))
        rows.append(torch.cat(pieces, dim=2))
    return torch.cat(rows, dim=0)


class Attention(nn.Module):
    def __init__(self, cfg: DrafterConfig, in_size: int) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.q_proj = nn.Linear(in_size, self.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(in_size, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(in_size, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.heads * self.head_dim, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                past: Optional[tuple[torch.Tensor, torch.Tensor]], mask: torch.Tensor):
        """x [B, T, in]; `past` = this layer's keys/values of the earlier TTT steps, concatenated
        along the sequence ([B, kv_heads, k*T, hd]) or None; mask [B, 1, T, (k+1)*T] bool, True = may
        attend, or the rows' document blocks (`doc_blocks`: the same mask, computed per document by
        `blocked_attention`). Returns (output, (k, v) of this step). No mutable state, so FSDP's
        hooks see plain arguments."""
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        keys = k if past is None else torch.cat([past[0], k], dim=2)
        values = v if past is None else torch.cat([past[1], v], dim=2)
        if not isinstance(mask, (torch.Tensor, list)):  # a flex BlockMask: GQA without repeating K/V
            from speculators_core.model.flex import flex_attention

            out = flex_attention(q, keys, values, mask)
            return self.o_proj(out.transpose(1, 2).reshape(B, T, self.heads * self.head_dim)), (k, v)
        if self.kv_heads != self.heads:
            rep = self.heads // self.kv_heads
            keys = keys.repeat_interleave(rep, dim=1)
            values = values.repeat_interleave(rep, dim=1)
        if isinstance(mask, torch.Tensor):
            with fast_sdpa(q):
                out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        else:
            out = blocked_attention(q, keys, values, mask)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.heads * self.head_dim)), (k, v)


class MLP(nn.Module):
    def __init__(self, cfg: DrafterConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    """Layer 0 (`first=True`) reads cat(input_layernorm(embedding), hidden_norm(h)) of width 2H, with
    the residual taken after hidden_norm when `norm_before_residual`; later layers are plain Llama."""

    def __init__(self, cfg: DrafterConfig, first: bool) -> None:
        super().__init__()
        H = cfg.hidden_size
        self.first = first
        self.norm_before_residual = cfg.norm_before_residual
        self.input_layernorm = RMSNorm(H, cfg.rms_norm_eps)
        if first:
            self.hidden_norm = RMSNorm(H, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg, 2 * H if first else H)
        self.post_attention_layernorm = RMSNorm(H, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, h: torch.Tensor, emb: Optional[torch.Tensor], cos, sin, past, mask):
        if self.first:
            normed = self.hidden_norm(h)
            residual = normed if self.norm_before_residual else h
            x = torch.cat([self.input_layernorm(emb), normed], dim=-1)
        else:
            residual = h
            x = self.input_layernorm(h)
        attn, kv = self.self_attn(x, cos, sin, past, mask)
        h = residual + attn
        return h + self.mlp(self.post_attention_layernorm(h)), kv
