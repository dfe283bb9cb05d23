"""The drafter's TTT forward: document isolation, padding, step-k alignment, vocabulary mapping."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from speculators_core.model.config import DrafterConfig
from speculators_core.model.eagle3 import Eagle3Drafter
from speculators_core.model.vocab import mapping_tables, select_draft_tokens, selected_from_d2t
from speculators_core.training.data import Sample
from speculators_core.training.packing import collate, pack_rows, rank_steps

H, V, VD = 64, 96, 48


def tiny(ttt=3, layers=1) -> Eagle3Drafter:
    cfg = DrafterConfig(hidden_size=H, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                        intermediate_size=128, vocab_size=V, draft_vocab_size=VD, aux_layer_ids=[1, 2, 3],
                        num_layers=layers, ttt_steps=ttt)
    m = Eagle3Drafter(cfg)
    g = torch.Generator().manual_seed(1)
    sel = torch.arange(0, V, 2)
    d2t, t2d = mapping_tables(sel, V)
    m.set_frozen(torch.randn(V, H, generator=g), torch.ones(H), torch.randn(VD, H, generator=g), d2t, t2d)
    m.init_weights(0)
    with torch.no_grad():  # larger weights than the default init, so that any leak is visible
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return m.double().eval()


def batch(lengths, pad=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    samples = [Sample(i, torch.randint(0, V, (n,), generator=g), torch.randn(n, 3 * H, generator=g),
                      torch.randn(n, H, generator=g), torch.ones(n, dtype=torch.int64)) for i, n in enumerate(lengths)]
    b = collate(samples, 3 * H, H, dtype=torch.float64)
    if pad:
        assert b.input_ids.shape[1] >= sum(lengths) + pad or True
    return b


def run(m, b, **kw):
    return m(b.input_ids, b.aux, b.verifier_last, b.loss_mask, b.position_ids, b.doc_ids, return_logits=True, **kw)


def test_shapes_and_packed_layout():
    m = tiny()
    b = batch([7, 5])
    assert b.input_ids.shape == (1, 16)  # 12 tokens rounded up to a multiple of 8
    assert b.doc_ids[0].tolist() == [0] * 7 + [1] * 5 + [-1] * 4
    assert b.position_ids[0, :7].tolist() == list(range(1, 8)) and b.position_ids[0, 7:12].tolist() == list(range(1, 6))
    loss, stats, logits = run(m, b)
    assert len(stats) == 3 and len(logits) == 3
    assert all(lg.shape == (1, 16, VD) for lg in logits)
    assert loss.dim() == 0 and torch.isfinite(loss)


def test_document_two_never_sees_document_one():
    m = tiny(layers=2)
    b = batch([9, 8])
    _, _, base = run(m, b)
    b2 = batch([9, 8])
    g = torch.Generator().manual_seed(5)
    b2.input_ids[0, :9] = torch.randint(0, V, (9,), generator=g)
    b2.aux[0, :9] += torch.randn(9, 3 * H, generator=g, dtype=torch.float64)
    b2.verifier_last[0, :9] += 1.0
    _, _, moved = run(m, b2)
    for k in range(3):
        # document 2 = columns 9..16: identical at every step
        assert torch.allclose(base[k][0, 9:17], moved[k][0, 9:17], atol=1e-10), k
        # sanity: document 1 did change
        assert not torch.allclose(base[k][0, :9 - k], moved[k][0, :9 - k])


def test_causal_and_step_k_reads_the_id_k_ahead():
    m = tiny()
    b = batch([20])
    _, _, base = run(m, b)
    j = 10
    b.input_ids[0, j] = (b.input_ids[0, j] + 1) % V
    _, _, moved = run(m, b)
    for k in range(3):
        # step k at column i reads ids[i + k] (and the step-0 prefix): columns < j - k are untouched
        assert torch.allclose(base[k][0, :j - k], moved[k][0, :j - k], atol=1e-10), k
        assert not torch.allclose(base[k][0, j - k], moved[k][0, j - k]), k


def test_padding_gets_no_loss_and_loss_aligns_logits_with_targets_shifted_by_k():
    m = tiny()
    b = batch([11, 6])
    loss, stats, logits = run(m, b)
    targets = m.targets(b.verifier_last)
    T = b.input_ids.shape[1]
    for k in range(3):
        n = T - k
        valid = (b.loss_mask[0, k:] > 0) & (b.doc_ids[0, k:] >= 0) & (b.doc_ids[0, k:] == b.doc_ids[0, :n])
        assert int(valid.sum()) == (11 - k) + (6 - k)
        kl = F.kl_div(F.log_softmax(logits[k][0, :n], -1), F.log_softmax(targets[0, k:], -1),
                      log_target=True, reduction="none").sum(-1)
        assert torch.allclose(stats[k].loss_sum.double(), (kl * valid).sum(), rtol=1e-4)
        acc = (logits[k][0, :n].argmax(-1) == targets[0, k:].argmax(-1))
        if k == 0:
            assert int(stats[0].full_correct) == int((acc & valid).sum())
    # padding content does not matter
    b.aux[0, 17:] = 100.0
    b.verifier_last[0, 17:] = -50.0
    b.input_ids[0, 17:] = 3
    loss2, stats2, _ = run(m, b)
    assert torch.allclose(loss, loss2)
    # a zero loss mask removes a position from loss and counts
    b.loss_mask[0, 5] = 0
    _, stats3, _ = run(m, b)
    assert int(stats3[0].count) == int(stats[0].count) - 1


def test_targets_are_verifier_logits_of_the_draft_rows():
    m = tiny()
    x = torch.randn(1, 4, H, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    normed = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + m.cfg.rms_norm_eps)
    # the norm runs in fp32 (as in the verifier), so compare at fp32 precision
    assert torch.allclose(m.targets(x), normed @ m.verifier_lm_head.T, rtol=1e-5, atol=1e-5)


def test_vocab_mapping_by_hand():
    freq = {5: 10, 2: 10, 7: 3, 1: 1, 9: 0}
    # counts: 2 and 5 tie at 10 -> both; then 7 (3), then 1 (1): Vd=3 -> {2, 5, 7}
    sel = select_draft_tokens(freq, vocab_size=10, draft_vocab_size=3)
    assert sel.tolist() == [2, 5, 7]
    d2t, t2d = mapping_tables(sel, 10)
    assert d2t.tolist() == [2, 4, 5]
    assert t2d.tolist() == [False, False, True, False, False, True, False, True, False, False]
    # ties broken by the smaller id
    assert select_draft_tokens({4: 2, 3: 2, 8: 2}, 10, 2).tolist() == [3, 4]
    # fewer seen than Vd: fill with the smallest unused ids
    assert select_draft_tokens({6: 5, 2: 1}, 10, 5).tolist() == [0, 1, 2, 3, 6]
    # round trip: target = draft + d2t[draft]; t2d marks exactly those
    sel = select_draft_tokens({i: (i * 7919) % 13 for i in range(50)}, 50, 20)
    d2t, t2d = mapping_tables(sel, 50)
    draft = torch.arange(20)
    assert torch.equal(draft + d2t, sel) and torch.equal(selected_from_d2t(d2t), sel)
    assert torch.equal(torch.nonzero(t2d).flatten(), sel)
    assert torch.equal(torch.cumsum(t2d.long(), 0)[sel] - 1, draft)  # target -> draft id


def test_packing_fits_and_plans_agree_across_ranks():
    lens = [50, 30, 30, 20, 80, 10, 101, 5]
    bins = pack_rows(list(range(8)), lens, cap=100)
    assert sorted(r for b in bins for r in b) == list(range(8))
    assert all(sum(min(lens[r] - 1, 100) for r in b) <= 100 for b in bins)
    r0, r1 = rank_steps(bins, 2, 0, True), rank_steps(bins, 2, 1, True)
    assert len(r0) == len(r1)
    seen = [r for s in r0 + r1 if s.counted for r in s.rows]
    assert set(seen) == set(range(8))
    v1 = rank_steps(bins[:3], 2, 1, False)
    assert [s.counted for s in v1] == [True, False]


def _loss_logits_grads(m, b, attention):
    m.attention = attention
    m.zero_grad(set_to_none=True)
    loss, stats, logits = run(m, b)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in m.named_parameters() if p.grad is not None}
    return loss.detach(), [s.loss_sum.detach() for s in stats], [x.detach() for x in logits], grads


import pytest  # noqa: E402


@pytest.mark.parametrize("lengths, layers, seed", [
    ([7, 5], 1, 0),                    # two documents and padding
    ([30, 1, 12, 2, 17], 2, 1),        # single-token documents, two decoder layers
    ([64], 1, 2),                      # one document filling the row
    ([9, 40, 3, 11, 6, 25], 1, 3),     # many documents of mixed length
])
def test_blocked_attention_equals_dense(lengths, layers, seed):
    """The CPU's per-document attention is the dense masked attention, to fp32 rounding, for the loss
    of every TTT step, the logits at every position (padding included) and every gradient."""
    for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-12)):
        m = tiny(ttt=4, layers=layers).to(dtype).train()
        b = batch(lengths, seed=seed)
        b = type(b)(b.input_ids, b.aux.to(dtype), b.verifier_last.to(dtype), b.loss_mask, b.position_ids,
                    b.doc_ids, b.num_samples, b.num_tokens, b.counted)
        dense = _loss_logits_grads(m, b, "dense")
        blocked = _loss_logits_grads(m, b, "blocked")
        torch.testing.assert_close(blocked[0], dense[0], rtol=tol, atol=tol)
        for x, y in zip(blocked[1] + blocked[2], dense[1] + dense[2]):
            torch.testing.assert_close(x, y, rtol=tol, atol=tol * max(1.0, float(y.abs().max())))
        assert blocked[3].keys() == dense[3].keys() and len(dense[3]) > 5
        for name, g in dense[3].items():
            # to the rounding of the gradient's own scale
            torch.testing.assert_close(blocked[3][name], g, rtol=tol, atol=tol * max(1.0, float(g.abs().max())),
                                       msg=name)


def test_blocked_attention_falls_back_to_dense_when_a_document_is_split():
    from speculators_core.model.layers import doc_blocks

    assert doc_blocks(torch.tensor([[0, 0, 1, 1, 1, -1, -1]])) == [[(0, 2), (2, 5), (5, 7)]]
    assert doc_blocks(torch.tensor([[0, 0, 1, 0, -1]])) is None  # doc 0 in two pieces: only dense is exact
    m = tiny(ttt=2).float()
    b = batch([6, 6], seed=4)
    doc = b.doc_ids.clone()
    doc[0, 6:9] = 0  # doc 0 continues after doc 1 starts: not contiguous
    b = type(b)(b.input_ids, b.aux.float(), b.verifier_last.float(), b.loss_mask, b.position_ids, doc,
                b.num_samples, b.num_tokens, b.counted)
    m.attention = "dense"
    ref = run(m, b)[0]
    m.attention = "blocked"
    torch.testing.assert_close(run(m, b)[0], ref)
