"""The memory fixes of issue 14 change no math: chunked loss with the target distribution once per
batch, bf16-stored frozen tensors, FSDP2 as one unit with a mixed-precision policy, the process
group released after a failure."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import speculators_core.model.loss as L
from speculators_core.model.loss import soft_cross_entropy, target_probs
from tests.train.test_model import batch, tiny


def old_kl(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The loss before: two log-softmaxes per step."""
    logp = F.log_softmax(z.float(), dim=-1)
    tlogp = F.log_softmax(t.float(), dim=-1)
    return (tlogp.exp() * (tlogp - logp)).sum(-1)


# the loss is computed in fp32 whatever the logits' dtype (as before): fp32 rounding either way
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-6)])
def test_chunked_kl_equals_the_two_log_softmax_loss_in_value_and_gradient(dtype, tol, monkeypatch):
    monkeypatch.setattr(L, "CHUNK", 7)  # several chunks and a ragged last one
    g = torch.Generator().manual_seed(0)
    z = (torch.randn(1, 30, 50, generator=g) * 3).to(dtype).requires_grad_()
    t = (torch.randn(1, 30, 50, generator=g) * 3).to(dtype)
    w = torch.rand(1, 30, generator=g).to(dtype)
    ref = (old_kl(z, t) * w).sum()
    (gz_ref,) = torch.autograd.grad(ref, z)
    p, negent = target_probs(t)
    new = ((negent + soft_cross_entropy(z, p)) * w).sum()
    (gz,) = torch.autograd.grad(new, z)
    torch.testing.assert_close(new.to(ref.dtype), ref, rtol=tol, atol=tol)
    torch.testing.assert_close(gz, gz_ref, rtol=tol, atol=tol)
    assert gz.dtype == z.dtype


def test_bf16_logits_keep_bf16_gradients():
    z = torch.randn(1, 9, 20, dtype=torch.bfloat16, requires_grad=True)
    p, _ = target_probs(torch.randn(1, 9, 20))
    soft_cross_entropy(z, p).sum().backward()
    assert z.grad.dtype == torch.bfloat16 and torch.isfinite(z.grad.float()).all()


def test_model_loss_is_the_old_formula_at_every_step():
    """The drafter's per-step loss sums = the old two-log-softmax KL of its own logits (float64)."""
    m = tiny(ttt=3, layers=1)
    b = batch([9, 14, 5], seed=3)
    loss, stats, logits = m(b.input_ids, b.aux, b.verifier_last, b.loss_mask, b.position_ids, b.doc_ids,
                            return_logits=True)
    targets = m.targets(b.verifier_last)
    T = b.input_ids.shape[1]
    for k, (s, lg) in enumerate(zip(stats, logits)):
        n = T - k
        valid = ((b.loss_mask > 0) & (b.doc_ids >= 0))[:, k:] & (b.doc_ids[:, k:] == b.doc_ids[:, :n])
        ref = (old_kl(lg[:, :n], targets[:, k:]) * valid).sum()
        torch.testing.assert_close(s.loss_sum, ref.to(s.loss_sum.dtype), rtol=1e-6, atol=1e-6)  # fp32 loss


def _exact_bf16(m):
    with torch.no_grad():
        m.embed_tokens.copy_(m.embed_tokens.bfloat16().float())
        m.verifier_lm_head.copy_(m.verifier_lm_head.bfloat16().float())


def _loss_and_grads(m, b, autocast: bool):
    m.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss, _, _ = m(b.input_ids, b.aux, b.verifier_last, b.loss_mask, b.position_ids, b.doc_ids)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("autocast", [False, True])
def test_frozen_tensors_in_bf16_change_nothing_for_a_bf16_target(autocast):
    """A target's embedding and lm_head are bf16 in its checkpoint: storing them in bf16 (half the
    memory) gives the very same loss and gradients, plain fp32 or under bf16 autocast."""
    m = tiny(ttt=3).float().train()
    _exact_bf16(m)
    b = batch([11, 6, 20], seed=2)
    b = type(b)(b.input_ids, b.aux.float(), b.verifier_last.float(), b.loss_mask, b.position_ids, b.doc_ids,
                b.num_samples, b.num_tokens, b.counted)
    ref = _loss_and_grads(m, b, autocast)
    m.frozen_to(torch.bfloat16)
    assert m.embed_tokens.dtype == m.verifier_lm_head.dtype == torch.bfloat16
    got = _loss_and_grads(m, b, autocast)
    torch.testing.assert_close(got[0], ref[0], rtol=0, atol=0)
    for name, g in ref[1].items():
        torch.testing.assert_close(got[1][name], g, rtol=0, atol=0, msg=name)


@pytest.fixture
def one_rank_group():
    import torch.distributed as dist

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("param_dtype", [None, torch.bfloat16])
def test_fsdp_wraps_the_drafter_as_one_unit_with_the_mixed_precision_policy(one_rank_group, param_dtype):
    from torch.distributed.fsdp import FSDPModule

    from speculators_core.training.distributed import Dist, shard_model

    ref = tiny(ttt=3, layers=2).float().train()
    m = tiny(ttt=3, layers=2).float().train()
    b = batch([11, 6, 20], seed=2)
    b = type(b)(b.input_ids, b.aux.float(), b.verifier_last.float(), b.loss_mask, b.position_ids, b.doc_ids,
                b.num_samples, b.num_tokens, b.counted)
    m = shard_model(m, Dist(0, 2, 0, torch.device("cpu")), param_dtype=param_dtype)
    assert isinstance(m, FSDPModule)
    assert not any(isinstance(x, FSDPModule) for x in m.modules() if x is not m)  # no per-layer unit
    seen = []
    m.layers[0].mlp.register_forward_pre_hook(lambda mod, args: seen.append(mod.gate_proj.weight.dtype))
    loss, grads = _loss_and_grads(m, b, autocast=False)
    # the layer ran once per TTT step inside one gathered forward, with parameters in param_dtype
    assert seen == [param_dtype or torch.float32] * 3
    for p in m.parameters():  # the sharded master copy and its gradient stay fp32
        assert p.dtype == torch.float32 and p.grad.dtype == torch.float32
    ref_loss, ref_grads = _loss_and_grads(ref, b, autocast=False)
    tol = 1e-5 if param_dtype is None else 5e-2
    torch.testing.assert_close(loss, ref_loss, rtol=tol, atol=tol)
    if param_dtype is None:
        for name, g in ref_grads.items():
            full = grads[name].full_tensor() if hasattr(grads[name], "full_tensor") else grads[name]
            torch.testing.assert_close(full, g, rtol=1e-5, atol=1e-6, msg=name)


def test_a_failed_training_still_releases_the_process_group(monkeypatch, tmp_path):
    import speculators_core.train as train_mod
    from speculators_core.training import distributed

    released = []
    monkeypatch.setattr(distributed, "setup", lambda flag: distributed.Dist(0, 1, 0, torch.device("cpu")))
    monkeypatch.setattr(distributed, "cleanup", lambda d: released.append(d))

    def boom(self):
        raise RuntimeError("a bug in the middle of training")

    monkeypatch.setattr(train_mod.Trainer, "run", boom)
    argv = ["--verifier-name-or-path", "x", "--data-path", str(tmp_path), "--save-path", str(tmp_path / "ck")]
    with pytest.raises(RuntimeError, match="a bug"):
        train_mod.main(argv)
    assert len(released) == 1
    monkeypatch.setattr(train_mod.Trainer, "run", lambda self: None)
    assert train_mod.main(argv) == 0 and len(released) == 2
