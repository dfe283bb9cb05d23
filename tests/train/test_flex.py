"""FlexAttention (the GPU path) gives the dense masked attention's loss and gradients, every TTT step.

On the CPU, torch refuses flex's backward up front (`_validate_device`); its eager implementation
(the reference math, the scores materialised) does run it, so the CPU tests lift that check for the
test only. They prove the mask (documents, padding, the TTT diagonal), the padding of the row, GQA
without repeating K/V and the loss plumbing; the block structure the fused kernel reads is proven
separately (`test_block_mask_*`) and by the compiled forward (slow). On a CUDA machine the same
tests run the compiled kernel unchanged, forward and backward.
"""

from __future__ import annotations

import pytest
import torch

from speculators_core.model.flex import TTTBlockMask, ttt_mask_mod
from tests.train.test_model import batch, tiny

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture
def flex_backward_on_cpu(monkeypatch):
    import torch.nn.attention.flex_attention as fa

    real = fa._validate_device

    def allow_cpu_backward(q, k, v):
        if q.device.type != "cpu":
            real(q, k, v)

    monkeypatch.setattr(fa, "_validate_device", allow_cpu_backward)


def _dense_element_mask(doc_ids: torch.Tensor, k: int) -> torch.Tensor:
    """The dense path's mask (eagle3.forward) of step k, [B, T, (k+1)T]."""
    T = doc_ids.shape[1]
    block0 = (doc_ids[:, :, None] == doc_ids[:, None, :]) & torch.ones(T, T, dtype=torch.bool).tril()
    diag = torch.eye(T, dtype=torch.bool).expand_as(block0)
    return torch.cat([block0] + [diag] * k, dim=-1)


def _doc_layout(lengths, T):
    doc = torch.full((1, T), -1, dtype=torch.int64)
    o = 0
    for d, n in enumerate(lengths):
        doc[0, o:o + n] = d
        o += n
    return doc


@pytest.mark.parametrize("lengths, T, block", [
    ([7, 5], 16, 4), ([30, 1, 12, 2, 17], 64, 16), ([64], 64, 16), ([9, 40, 3, 11, 6, 25], 128, 16), ([100], 128, 32),
])
def test_block_mask_lists_exactly_the_blocks_with_a_visible_pair(lengths, T, block):
    """Every step's BlockMask (step 0 built, later steps extended by one diagonal block per query
    block): a block is listed iff some pair in it may attend, 'full' only when every pair may, and
    the element mask is the dense path's with padding queries reading nothing in step 0."""
    doc = _doc_layout(lengths, T)
    masks = TTTBlockMask(doc, block)
    mm = ttt_mask_mod(doc)
    for k in range(4):
        bm = masks.step(k)
        assert bm.shape[-2:] == (T, (k + 1) * T)
        q = torch.arange(T)[:, None]
        kv = torch.arange((k + 1) * T)[None, :]
        elem = mm(torch.zeros((), dtype=torch.int64), 0, q, kv)          # [T, (k+1)T]
        dense = _dense_element_mask(doc, k)[0]
        real = doc[0] >= 0
        assert torch.equal(elem[real], dense[real])                         # real queries: the dense mask
        assert not elem[~real, :T].any()                                    # padding reads nothing in step 0
        nq, nkv = T // block, (k + 1) * T // block
        blocks = elem.view(nq, block, nkv, block).permute(0, 2, 1, 3)
        any_, all_ = blocks.any(-1).any(-1), blocks.all(-1).all(-1)
        listed = bm.to_dense()[0, 0].bool()                                 # partial or full
        assert torch.equal(listed, any_), f"step {k}"
        nfull = bm.full_kv_num_blocks[0, 0]
        full = torch.zeros(nq, nkv, dtype=torch.bool)
        for i in range(nq):
            full[i, bm.full_kv_indices[0, 0, i, :int(nfull[i])].long()] = True
        assert not (full & ~all_).any(), f"step {k}: a block marked full has a masked pair"


def _run(m, b, attention):
    m.attention = attention
    m.zero_grad(set_to_none=True)
    loss, stats, logits = m(b.input_ids, b.aux, b.verifier_last, b.loss_mask, b.position_ids, b.doc_ids,
                            return_logits=True)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in m.named_parameters() if p.grad is not None}
    return loss.detach(), [s.loss_sum.detach() for s in stats], [s.count for s in stats], logits, grads


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("lengths, layers, seed", [
    ([7, 5], 1, 0),                    # two documents and padding
    ([30, 1, 12, 2, 17], 2, 1),        # single-token documents, two decoder layers
    ([64], 1, 2),                      # one document filling the row
    ([9, 40, 3, 11, 6, 25], 1, 3),     # many documents of mixed length, several blocks
])
def test_flex_equals_dense_loss_and_gradients_every_ttt_step(device, lengths, layers, seed, flex_backward_on_cpu):
    tol = 1e-5
    m = tiny(ttt=4, layers=layers).float().train().to(device)
    # the CPU: several blocks per row (24: rows of 16 and 64 get padded); CUDA: the kernel's tile
    m.flex_block = 24 if device == "cpu" else 128
    b = batch(lengths, seed=seed)
    b = type(b)(b.input_ids, b.aux.float(), b.verifier_last.float(), b.loss_mask, b.position_ids,
                b.doc_ids, b.num_samples, b.num_tokens, b.counted).to(device)
    dense = _run(m, b, "dense")
    flex = _run(m, b, "flex")
    torch.testing.assert_close(flex[0], dense[0], rtol=tol, atol=tol)
    for x, y in zip(flex[1], dense[1]):                     # every step's loss sum
        torch.testing.assert_close(x, y, rtol=tol, atol=tol * max(1.0, float(y.abs().max())))
    assert [float(c) for c in flex[2]] == [float(c) for c in dense[2]]
    real = b.doc_ids[0] >= 0                               # padding's logits are never used
    for x, y in zip(flex[3], dense[3]):
        assert x.shape == y.shape
        torch.testing.assert_close(x[0, real], y[0, real], rtol=tol, atol=tol * max(1.0, float(y.abs().max())))
    assert flex[4].keys() == dense[4].keys() and len(dense[4]) > 5
    for name, g in dense[4].items():
        torch.testing.assert_close(flex[4][name], g, rtol=tol, atol=tol * max(1.0, float(g.abs().max())), msg=name)


def test_auto_picks_flex_on_cuda_and_blocked_on_the_cpu():
    m = tiny()
    assert m.attention_mode(torch.device("cpu")) == "blocked"
    assert m.attention_mode(torch.device("cuda")) == "flex"
    m.attention = "dense"
    assert m.attention_mode(torch.device("cuda")) == "dense"
    m.attention = "fast"
    with pytest.raises(ValueError, match="auto, dense, blocked or flex"):
        m.attention_mode(torch.device("cpu"))


@pytest.mark.slow
def test_compiled_flex_kernel_reads_the_extended_block_mask():
    """The fused (compiled) kernel uses the block lists, not the element mask: on the CPU (forward
    only) its loss per step equals the dense path's, which fails if a needed block were missing."""
    m = tiny(ttt=3, layers=1).float().eval()
    m.flex_block = 16
    b = batch([9, 40, 3, 11, 6, 25, 10], seed=5)  # 104 tokens
    b = type(b)(b.input_ids, b.aux.float(), b.verifier_last.float(), b.loss_mask, b.position_ids,
                b.doc_ids, b.num_samples, b.num_tokens, b.counted)
    import speculators_core.model.flex as flex

    real_fn = flex.flex_attention
    calls = []

    def compiled(q, k, v, bm, compiled=None):
        calls.append(k.shape[2])
        return real_fn(q, k, v, bm, compiled=True)

    with torch.no_grad():
        m.attention = "dense"
        ref = m(b.input_ids, b.aux, b.verifier_last, b.loss_mask, b.position_ids, b.doc_ids)
        m.attention = "flex"
        flex.flex_attention = compiled
        try:
            out = m(b.input_ids, b.aux, b.verifier_last, b.loss_mask, b.position_ids, b.doc_ids)
        finally:
            flex.flex_attention = real_fn
    assert calls == [112, 224, 336]   # padded to 112 = 7 blocks of 16, one key block more per step
    for x, y in zip(out[1], ref[1]):
        torch.testing.assert_close(x.loss_sum, y.loss_sum, rtol=1e-5, atol=1e-5)


def test_fixed_row_length_for_the_compiled_kernel(flex_backward_on_cpu):
    """`flex_pad_to` (the trainer's total_seq_len rounded up to the block): every row is padded to
    one length (one compiled kernel) and the loss is unchanged."""
    import speculators_core.model.flex as flex

    m = tiny(ttt=2, layers=1).float().eval()
    m.flex_block = 16
    lengths_seen = []
    real_fn = flex.flex_attention

    def spy(q, k, v, bm, compiled=None):
        lengths_seen.append(q.shape[2])
        return real_fn(q, k, v, bm, compiled=False)

    flex.flex_attention = spy
    try:
        with torch.no_grad():
            for lengths in ([7, 5], [30, 9]):
                b = batch(lengths, seed=1)
                b = type(b)(b.input_ids, b.aux.float(), b.verifier_last.float(), b.loss_mask, b.position_ids,
                            b.doc_ids, b.num_samples, b.num_tokens, b.counted)
                m.attention, m.flex_pad_to = "dense", None
                ref = m(b.input_ids, b.aux, b.verifier_last, b.loss_mask, b.position_ids, b.doc_ids)[0]
                m.attention, m.flex_pad_to = "flex", 64
                got = m(b.input_ids, b.aux, b.verifier_last, b.loss_mask, b.position_ids, b.doc_ids)[0]
                torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    finally:
        flex.flex_attention = real_fn
    assert set(lengths_seen) == {64}
