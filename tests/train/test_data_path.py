"""The GPU data path (noise after the copy, bf16 batches, a side-stream copy) gives the batches of
the old path (noise per sample on the CPU, fp32 collate): the same values, or on a GPU the same
values up to the device's own random numbers. Runs on the CPU; on a CUDA machine also on the GPU."""

from __future__ import annotations

import pytest
import torch

from speculators_core.training.data import PreparedData
from speculators_core.training.packing import StepItem, collate
from speculators_core.training.source import Prefetcher, RowSource, noise_on_device
from tests.train.helpers import make_prepared
from tests.train.test_data import H

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
ROWS = [[1, 2, 3, 4, 5, 6], [7, 8, 9], [10, 11, 12, 13, 14], [15, 16, 17, 18]]
PLAN = [StepItem([0, 1], True), StepItem([2, 3], True)]


@pytest.fixture
def source(tmp_path):
    data = PreparedData(make_prepared(tmp_path / "d", ROWS))
    cache = tmp_path / "cache"
    cache.mkdir()
    for r, ids in enumerate(ROWS):  # bf16 states, as every server writes them
        hs = torch.randn(len(ids), 4, H).to(torch.bfloat16)
        from safetensors.torch import save_file

        from speculators_core.hidden_states import cache_path

        save_file({"hidden_states": hs, "token_ids": torch.tensor(ids)}, str(cache_path(cache, r)))
    src = RowSource(data, on_missing="raise", on_generate="delete", cache_dir=str(cache), num_aux=3, max_len=100)
    yield src
    src.close()


def batches(src, **kw):
    pf = Prefetcher(src, PLAN, aux_size=3 * H, hidden_size=H, seed=7, epoch=2, **kw)
    try:
        return [b for b, _ in pf]
    finally:
        pf.close()


def test_noise_after_collate_is_the_per_sample_noise_exactly(source):
    old = batches(source, noise=0.05)
    new = [noise_on_device(b, 0.05, 7, 2) for b in batches(source, noise=0.05, device_noise=True)]
    plain = batches(source)
    for o, n, p in zip(old, new, plain):
        assert n.spans and [s[0] for s in n.spans] == [s[0] for s in o.spans]
        for x, y in zip(o.tensors(), n.tensors()):
            assert x.dtype == y.dtype and torch.equal(x, y)
        assert not torch.equal(n.aux, p.aux) and (n.aux - p.aux).abs().max() <= 0.05


def test_bf16_batches_are_what_autocast_feeds_the_model(source):
    """bf16 collate + noise on the batch == the old fp32 batch as bf16 autocast casts it; the
    verifier's states (used in fp32 for the targets) are the same numbers."""
    old = batches(source, noise=0.05)
    new = [noise_on_device(b, 0.05, 7, 2) for b in batches(source, noise=0.05, device_noise=True,
                                                             dtype=torch.bfloat16)]
    for o, n in zip(old, new):
        assert n.aux.dtype == n.verifier_last.dtype == torch.bfloat16
        assert torch.equal(n.aux, o.aux.to(torch.bfloat16))
        assert torch.equal(n.verifier_last.float(), o.verifier_last)
        assert torch.equal(n.input_ids, o.input_ids) and torch.equal(n.doc_ids, o.doc_ids)


@pytest.mark.parametrize("device", DEVICES)
def test_batches_on_the_device_match_the_host_path(source, device):
    """With device=cuda the prefetcher copies on a side stream and yields device batches; on the CPU
    (device=cpu) it yields host batches: either way the values are the host path's."""
    dev = torch.device(device)
    host = batches(source)
    got = [noise_on_device(b, 0.05, 7, 2) for b in batches(source, noise=0.05, device_noise=True, device=dev,
                                                             pin_memory=device == "cuda")]
    for h, g in zip(host, got):
        assert g.aux.device.type == device
        for name in ("input_ids", "verifier_last", "loss_mask", "position_ids", "doc_ids"):
            assert torch.equal(getattr(g, name).cpu(), getattr(h, name)), name
        diff = (g.aux.cpu() - h.aux)
        assert diff.abs().max() <= 0.05 + 1e-6 and diff.abs().max() > 0  # noised, within the bound
        again = noise_on_device(batches(source, device_noise=True, noise=0.05, device=dev,
                                        pin_memory=device == "cuda")[0], 0.05, 7, 2)
    assert torch.equal(again.aux, got[0].aux)  # reproducible per (seed, epoch, row)


def test_samples_noise_is_per_row_not_per_position(source):
    b = batches(source)[0]
    first = noise_on_device(b, 0.05, 7, 2)
    swapped = collate(list(reversed([source.request(r).result() for r in PLAN[0].rows])), 3 * H, H)
    second = noise_on_device(swapped, 0.05, 7, 2)
    (r0, s0, l0), (r1, s1, l1) = first.spans
    (q1, t1, m1), (q0, t0, m0) = second.spans
    assert (r0, r1) == (q0, q1)
    torch.testing.assert_close(first.aux[0, s0:s0 + l0] - b.aux[0, s0:s0 + l0],
                               second.aux[0, t0:t0 + m0] - swapped.aux[0, t0:t0 + m0], rtol=0, atol=1e-6)


def test_fast_finite_check_is_isfinite():
    from speculators_core.hidden_states.files import all_finite

    g = torch.Generator().manual_seed(0)
    for dtype in (torch.bfloat16, torch.float16, torch.float32):
        x = torch.randn(50, 4, 16, generator=g).to(dtype)
        assert all_finite(x)
        for bad in (float("nan"), float("inf"), float("-inf")):
            y = x.clone()
            y[17, 2, 5] = bad
            assert not all_finite(y)
        big = torch.full((4, 1, 2), torch.finfo(dtype).max, dtype=dtype)  # finite, but its sum overflows
        assert all_finite(big) == bool(torch.isfinite(big).all()) is True
        assert all_finite(x[:0])
