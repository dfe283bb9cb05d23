"""The TTT attention mask as a FlexAttention `BlockMask` (the GPU path; spec section 4).

Step 0: causal within a document, padding (doc id -1) attends to nothing. Step k >= 1: the keys
are the k+1 step blocks side by side ([T, (k+1)T]); a query also sees its own column in every later
block (`kv % T == q`). The block mask of step 0 is built once per batch (`create_block_mask`); step
k's is step k-1's with one diagonal block appended per query block (the block of column range of
the query block inside step k's key block), so the block-sparse kernel skips every masked block:
~T^2/2 pairs in step 0 plus T*block per later step, instead of the dense path's (k+1)T^2.

T must be a multiple of the block size (the model pads the row, `padded_len`), which also keeps the
compiled kernel's shapes to a few (one per multiple of 128).
"""

from __future__ import annotations

from typing import Optional

import torch

#: FlexAttention's tile on the GPU; rows are padded to a multiple of it
FLEX_BLOCK = 128


def padded_len(T: int, block: int = FLEX_BLOCK) -> int:
    return max(block, -(-T // block) * block)


def ttt_mask_mod(doc_ids: torch.Tensor):
    """The element mask for any step: True = the query at q may read the key at kv."""
    T = doc_ids.shape[1]

    def mask_mod(b, h, q, kv):
        kv0 = kv % T
        same = (doc_ids[b, q] == doc_ids[b, kv0]) & (doc_ids[b, q] >= 0)
        first = (kv < T) & (kv <= q) & same
        return first | ((kv >= T) & (kv0 == q))

    return mask_mod


class TTTBlockMask:
    """One batch's block masks: `step(k)` for the keys of steps 0..k (built once per step count)."""

    def __init__(self, doc_ids: torch.Tensor, block: int = FLEX_BLOCK) -> None:
        from torch.nn.attention.flex_attention import create_block_mask

        B, T = doc_ids.shape
        if T % block:
            raise ValueError(f"flex attention: row length {T} is not a multiple of the block size {block}")
        self.T, self.block, self.nb = T, block, T // block
        self.mask_mod = ttt_mask_mod(doc_ids)
        base = create_block_mask(self.mask_mod, B, None, T, T, device=doc_ids.device, BLOCK_SIZE=block)
        self._masks = [base]

    def step(self, k: int):
        while len(self._masks) <= k:
            self._masks.append(self._extend(self._masks[-1], len(self._masks)))
        return self._masks[k]

    def _extend(self, prev, k: int):
        """Step k's mask from step k-1's: query block i gains the partial block k*nb + i."""
        from torch.nn.attention.flex_attention import BlockMask

        num, idx = prev.kv_num_blocks, prev.kv_indices
        B, Hm, nq, _ = idx.shape
        idx = torch.cat([idx, idx.new_zeros(B, Hm, nq, self.nb)], dim=-1)
        diag = (k * self.nb + torch.arange(nq, device=idx.device, dtype=idx.dtype)).view(1, 1, nq, 1)
        idx.scatter_(-1, num.unsqueeze(-1).long(), diag.expand(B, Hm, nq, 1))
        full_num, full_idx = prev.full_kv_num_blocks, prev.full_kv_indices
        if full_idx is not None:
            full_idx = torch.cat([full_idx, full_idx.new_zeros(B, Hm, nq, self.nb)], dim=-1)
        return BlockMask.from_kv_blocks(num + 1, idx, full_num, full_idx, BLOCK_SIZE=self.block,
                                        mask_mod=self.mask_mod, seq_lengths=(self.T, (k + 1) * self.T))


_compiled = None


def flex_attention(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, block_mask,
                   compiled: Optional[bool] = None) -> torch.Tensor:
    """q [B, h, T, d]; keys/values [B, kv_h, (k+1)T, d] (GQA without repeating them). Compiled on
    CUDA (the eager kernel materialises the scores); eager elsewhere (the CPU runs it forward only)."""
    global _compiled
    from torch.nn.attention import flex_attention as fa

    if compiled is None:
        compiled = q.is_cuda
    fn = fa.flex_attention
    if compiled:
        if _compiled is None:
            import torch._dynamo

            # one graph per (row length, TTT step) forward and backward: more than dynamo's default
            # 8 when rows vary; past the limit dynamo would run flex eagerly (the scores materialised)
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
            _compiled = torch.compile(fa.flex_attention)
        fn = _compiled
    return fn(q, keys, values, block_mask=block_mask, enable_gqa=keys.shape[1] != q.shape[1])
