"""The TTT loss without fp32 [T, vocab] tensors per step (spec section 4: forward KL to the verifier).

KL(p || q) at a position = sum_v p_v (log p_v - log q_v) = negent - sum_v p_v log q_v, where the
target's p and negent = sum_v p_v log p_v depend only on the batch: `target_probs` computes them
once per batch (not per TTT step). `soft_cross_entropy` gives -sum_v p_v log softmax(z)_v per row in
row chunks and saves only the logits z (in their own dtype, bf16 under autocast) and p; its backward
recomputes the softmax chunk by chunk: d/dz = g * (softmax(z) * sum(p) - p). The old path kept two
fp32 log-softmaxes of [T, vocab] per step for the backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: rows per chunk: a [CHUNK, vocab] fp32 temporary (32000 words: 128 MiB) instead of [T, vocab]
CHUNK = 1024


def target_probs(target_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(p fp32 [..., V], negent fp32 [...]) from the verifier's logits; no grad."""
    with torch.no_grad():
        flat = target_logits.reshape(-1, target_logits.shape[-1])
        p = torch.empty(flat.shape, dtype=torch.float32, device=flat.device)
        negent = torch.empty(flat.shape[0], dtype=torch.float32, device=flat.device)
        for s in range(0, flat.shape[0], CHUNK):
            lp = F.log_softmax(flat[s:s + CHUNK].float(), dim=-1)
            p[s:s + CHUNK] = lp.exp()
            negent[s:s + CHUNK] = (p[s:s + CHUNK] * lp).sum(-1)
        return p.view(target_logits.shape), negent.view(target_logits.shape[:-1])


class _SoftCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        zf, pf = z.reshape(-1, z.shape[-1]), p.reshape(-1, p.shape[-1])
        out = torch.empty(zf.shape[0], dtype=torch.float32, device=z.device)
        for s in range(0, zf.shape[0], CHUNK):
            lq = F.log_softmax(zf[s:s + CHUNK].float(), dim=-1)
            out[s:s + CHUNK] = -(pf[s:s + CHUNK] * lq).sum(-1)
        ctx.save_for_backward(z, p)
        return out.view(z.shape[:-1])

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        z, p = ctx.saved_tensors
        zf, pf, gf = z.reshape(-1, z.shape[-1]), p.reshape(-1, p.shape[-1]), g.reshape(-1)
        dz = torch.empty_like(zf)
        for s in range(0, zf.shape[0], CHUNK):
            pc = pf[s:s + CHUNK]
            sm = F.softmax(zf[s:s + CHUNK].float(), dim=-1)
            dz[s:s + CHUNK] = ((sm * pc.sum(-1, keepdim=True) - pc) * gf[s:s + CHUNK, None].float()).to(dz.dtype)
        return dz.view(z.shape), None


def soft_cross_entropy(logits: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """-sum_v p_v log softmax(logits)_v over the last dim, fp32 [...]; gradient to the logits only."""
    return _SoftCE.apply(logits, p)
