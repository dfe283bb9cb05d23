"""The EAGLE-3 drafter and its test-time-training (TTT) forward (spec sections 3-4).

One packed row holds several documents: `doc_ids` [B, T] (-1 on padding). Attention is causal
within a document. For TTT step k >= 1 a query attends to the causal prefix of step 0 and to its
own column in every later step (the key/value list grows by one block per step), exactly what the
drafter sees in vLLM when it drafts k tokens past the last verified one.

Frozen, not trained and not saved: the token embedding (a copy of the target's), the verifier's
final norm and the verifier lm_head rows of the draft vocabulary (used to compute the targets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from speculators_core.model.config import DrafterConfig
from speculators_core.model.layers import DecoderLayer, RMSNorm, doc_blocks, rope_cos_sin, rope_inv_freq
from speculators_core.model.loss import soft_cross_entropy, target_probs


@dataclass
class StepStats:
    """Sums for one TTT step (reduce them across ranks before dividing)."""
    loss_sum: torch.Tensor      # sum over valid positions of KL (fp32, differentiable)
    count: torch.Tensor         # valid positions
    full_correct: torch.Tensor  # valid positions correct at every step 0..k
    prev_full: torch.Tensor     # valid positions correct at every step 0..k-1 (= count for k = 0)
    hit: Optional[torch.Tensor] = None  # bool [B, T-k]: step k right at column i (its target column valid)


class Eagle3Drafter(nn.Module):
    def __init__(self, cfg: DrafterConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        H, V, Vd = cfg.hidden_size, cfg.vocab_size, cfg.draft_vocab_size
        self.fc = nn.Linear(cfg.num_aux * H, H, bias=False)
        self.layers = nn.ModuleList([DecoderLayer(cfg, first=(i == 0)) for i in range(cfg.num_layers)])
        self.norm = RMSNorm(H, cfg.rms_norm_eps)
        self.lm_head = nn.Linear(H, Vd, bias=False)
        # Frozen tensors: buffers, so FSDP leaves them whole and state_dict() holds trainables only.
        self.register_buffer("embed_tokens", torch.zeros(V, H), persistent=False)
        self.register_buffer("verifier_norm", torch.ones(H), persistent=False)
        self.register_buffer("verifier_lm_head", torch.zeros(Vd, H), persistent=False)
        self.register_buffer("inv_freq", rope_inv_freq(cfg), persistent=False)
        self.register_buffer("d2t", torch.zeros(Vd, dtype=torch.int64), persistent=False)
        self.register_buffer("t2d", torch.zeros(V, dtype=torch.bool), persistent=False)
        #: "dense" (one masked attention over the packed row), "blocked" (per document, see
        #: layers.blocked_attention; the same result), "flex" (FlexAttention with a block-sparse
        #: mask, model/flex.py; the same result) or "auto" = flex on CUDA, blocked on the CPU.
        self.attention = "auto"
        #: flex: the kernel's block size (rows are padded to a multiple of it)
        self.flex_block = 128
        #: flex: pad every row to this length (the trainer: total_seq_len rounded up to the block) so
        #: the compiled kernel sees one row length, not one per multiple of 128 (each a recompile);
        #: padding blocks are skipped by the block mask. None = the next multiple of the block.
        self.flex_pad_to: Optional[int] = None

    # -- frozen parts -----------------------------------------------------------------------------
    @torch.no_grad()
    def set_frozen(self, embed: torch.Tensor, verifier_norm: torch.Tensor, verifier_lm_head_rows: torch.Tensor,
                   d2t: torch.Tensor, t2d: torch.Tensor) -> None:
        for name, t in (("embed_tokens", embed), ("verifier_norm", verifier_norm),
                        ("verifier_lm_head", verifier_lm_head_rows), ("d2t", d2t), ("t2d", t2d)):
            buf = getattr(self, name)
            if tuple(t.shape) != tuple(buf.shape):
                raise ValueError(f"frozen tensor {name}: shape {tuple(t.shape)}, expected {tuple(buf.shape)}")
            buf.copy_(t.to(buf.dtype))

    @torch.no_grad()
    def init_weights(self, seed: int = 0) -> None:
        """Deterministic init (same on every rank): normal(0, 0.02) linears, ones for norms.
        The draft lm_head starts as the verifier's rows (a good starting point for the KL loss)."""
        g = torch.Generator().manual_seed(seed)
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
        self.lm_head.weight.copy_(self.verifier_lm_head.float())
        self.norm.weight.copy_(self.verifier_norm.float())

    def attention_mode(self, device: torch.device) -> str:
        if self.attention == "auto":
            return "flex" if device.type == "cuda" else "blocked"
        if self.attention not in ("dense", "blocked", "flex"):
            raise ValueError(f"attention {self.attention!r}: use auto, dense, blocked or flex")
        return self.attention

    @torch.no_grad()
    def frozen_to(self, dtype: torch.dtype) -> None:
        """Store the frozen embedding and verifier head in `dtype` (bf16 on a GPU: the target's own
        checkpoint dtype, so lossless for a bf16 target; half the memory of fp32)."""
        self.embed_tokens = self.embed_tokens.to(dtype)
        self.verifier_lm_head = self.verifier_lm_head.to(dtype)

    # -- forward ----------------------------------------------------------------------------------
    def targets(self, verifier_last: torch.Tensor) -> torch.Tensor:
        """Verifier logits restricted to the draft vocabulary [B, T, Vd] (no grad)."""
        with torch.no_grad():
            x = verifier_last.float()
            x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg.rms_norm_eps) * self.verifier_norm.float()
            w = self.verifier_lm_head
            if torch.is_autocast_enabled(x.device.type):
                return F.linear(x, w)  # autocast runs it in its dtype (bf16), whatever w is stored in
            dt = torch.promote_types(x.dtype, w.dtype)  # bf16-stored head: fp32; a float64 model: float64
            return F.linear(x.to(dt), w.to(dt))

    def forward(self, input_ids: torch.Tensor, aux: torch.Tensor, verifier_last: torch.Tensor,
                loss_mask: torch.Tensor, position_ids: torch.Tensor, doc_ids: torch.Tensor,
                ttt_steps: Optional[int] = None, counts: Optional[list[float]] = None,
                step_weights: Optional[list[float]] = None, return_logits: bool = False):
        """Returns (loss, [StepStats per step], logits list if asked).

        input_ids/loss_mask/position_ids/doc_ids [B, T]; aux [B, T, n*H]; verifier_last [B, T, H]
        (already shifted: column t holds token t+1 and the hidden states of token t).
        `counts[k]`: the normaliser of step k's loss (default: this batch's valid count; the
        trainer passes the global count across ranks so sharding does not change the gradient).
        """
        steps = ttt_steps or self.cfg.ttt_steps
        B, T = input_ids.shape
        mode = self.attention_mode(input_ids.device)
        T_out = T
        if mode == "flex":  # pad the row to the kernel's block (padding: doc -1, no loss, never read)
            from speculators_core.model.flex import padded_len

            Tp = padded_len(max(T, self.flex_pad_to or 0), self.flex_block)
            if Tp != T:
                extra = Tp - T
                input_ids, loss_mask, position_ids = (F.pad(x, (0, extra)) for x in (input_ids, loss_mask, position_ids))
                doc_ids = F.pad(doc_ids, (0, extra), value=-1)
                aux, verifier_last = (F.pad(x, (0, 0, 0, extra)) for x in (aux, verifier_last))
                T = Tp
        targets = self.targets(verifier_last)
        target_ids = targets.argmax(-1)
        # the target's probabilities and negative entropy: once per batch, shared by every step
        tprobs, negent = target_probs(targets)
        del targets
        valid_base = (loss_mask > 0) & (doc_ids >= 0)

        blocks = doc_blocks(doc_ids) if mode == "blocked" else None
        flex_masks = None
        if mode == "flex":
            from speculators_core.model.flex import TTTBlockMask

            flex_masks = TTTBlockMask(doc_ids, self.flex_block)
        elif blocks is None:
            same_doc = (doc_ids[:, :, None] == doc_ids[:, None, :])
            causal = torch.ones(T, T, dtype=torch.bool, device=input_ids.device).tril()
            block0 = (same_doc & causal)[:, None]                      # [B, 1, T, T]
            diag = torch.eye(T, dtype=torch.bool, device=input_ids.device).expand(B, 1, T, T)

        h = self.fc(aux)
        past: list = [None] * len(self.layers)   # per layer: (keys, values) of the steps so far
        total = h.new_zeros((), dtype=torch.float32)
        stats: list[StepStats] = []
        logits_out = []
        full_prev: Optional[torch.Tensor] = None
        for k in range(steps):
            ids_k = input_ids if k == 0 else F.pad(input_ids[:, k:], (0, k), value=0)
            emb = F.embedding(ids_k, self.embed_tokens).to(h.dtype)  # a bf16-stored table: exact in fp32
            cos, sin = rope_cos_sin(self.inv_freq, position_ids + k)
            if flex_masks is not None:
                mask = flex_masks.step(k)
            elif blocks is not None:
                mask = blocks
            else:
                mask = block0 if k == 0 else torch.cat([block0] + [diag] * k, dim=-1)
            x = h
            for i, layer in enumerate(self.layers):
                x, (k_new, v_new) = layer(x, emb if i == 0 else None, cos, sin, past[i], mask)
                past[i] = (k_new, v_new) if past[i] is None else (torch.cat([past[i][0], k_new], dim=2),
                                                                  torch.cat([past[i][1], v_new], dim=2))
            h = x
            logits = self.lm_head(self.norm(h))
            if return_logits:
                logits_out.append(logits[:, :T_out])
            # step k at column i predicts the target of column i + k (same document only)
            n = T - k
            valid = valid_base[:, k:] & (doc_ids[:, k:] == doc_ids[:, :n])
            # KL(p || q) = sum p log p - sum p log q, without an fp32 [T, vocab] per step
            kl = negent[:, k:] + soft_cross_entropy(logits[:, :n], tprobs[:, k:])
            vf = valid.float()
            loss_sum = (kl * vf).sum()
            count = vf.sum()
            norm = counts[k] if counts is not None else float(count.item())
            w = step_weights[k] if step_weights is not None else 1.0
            total = total + w * loss_sum / (norm + 1e-5)
            with torch.no_grad():
                correct = logits[:, :n].argmax(-1) == target_ids[:, k:]
                full = correct if full_prev is None else (full_prev[:, :n] & correct)
                prev = valid if full_prev is None else (full_prev[:, :n] & valid)
                stats.append(StepStats(loss_sum=loss_sum.detach(), count=count,
                                       full_correct=(full & valid).float().sum(), prev_full=prev.float().sum(),
                                       hit=correct & valid))
                full_prev = full
        return total, stats, logits_out

    # -- saving -----------------------------------------------------------------------------------
    def export_tensors(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The safetensors content from a full (gathered) trainable state dict: bf16 floats, plus
        d2t/t2d unless the draft vocabulary is the whole target vocabulary (vLLM then has no table)."""
        out = {k: v.detach().to("cpu", torch.bfloat16).contiguous() for k, v in state.items()}
        if self.cfg.draft_vocab_size != self.cfg.vocab_size:
            out["d2t"] = self.d2t.detach().cpu().to(torch.int64).contiguous()
            out["t2d"] = self.t2d.detach().cpu().to(torch.bool).contiguous()
        return out

