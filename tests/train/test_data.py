"""Row source and prefetcher: cached rows, skipped rows are counted (never zero-filled), offline mode
fails on a missing row, noise is reproducible; verifier tensors from (tied, sharded) safetensors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from speculators_core.hidden_states import cache_path
from speculators_core.model.verifier import load_verifier_tensors
from speculators_core.training.data import PreparedData
from speculators_core.training.packing import StepItem
from speculators_core.training.source import MissingHiddenStates, Prefetcher, RowSource
from tests.train.helpers import make_prepared

H = 8


def _write_hs(cache, row, ids, layers=4, value=None):
    hs = torch.randn(len(ids), layers, H) if value is None else torch.full((len(ids), layers, H), value)
    save_file({"hidden_states": hs, "token_ids": torch.tensor(ids)}, str(cache_path(cache, row)))
    return hs


def test_prefetcher_builds_batches_and_skips_bad_rows(tmp_path):
    rows = [[1, 2, 3, 4, 5], [6, 7, 8], [9, 10, 11, 12], [13, 14]]
    data = PreparedData(make_prepared(tmp_path / "d", rows))
    cache = tmp_path / "cache"
    cache.mkdir()
    hs0 = _write_hs(cache, 0, rows[0])
    _write_hs(cache, 1, [99, 7, 8])                        # other token ids: a stale file
    cache_path(cache, 2).write_bytes(b"not a safetensors file")  # corrupt
    _write_hs(cache, 3, rows[3], layers=2)                 # wrong number of layers
    src = RowSource(data, on_missing="raise", on_generate="delete", cache_dir=str(cache), num_aux=3, max_len=100)
    pf = Prefetcher(src, [StepItem([0, 1], True), StepItem([2, 3], True)], aux_size=3 * H, hidden_size=H)
    got = list(pf)
    pf.close()
    src.close()
    assert len(got) == 2
    b0, b1 = got[0][0], got[1][0]
    assert b0.num_samples == 1 and b0.num_tokens == 4
    assert b0.input_ids[0, :4].tolist() == [2, 3, 4, 5]
    assert torch.equal(b0.aux[0, :4], hs0[:4, :3].reshape(4, -1))       # aux[:-1]
    assert torch.equal(b0.verifier_last[0, :4], hs0[1:, 3])             # verifier_last[1:]
    assert b1.num_samples == 0 and int(b1.loss_mask.sum()) == 0 and (b1.doc_ids == -1).all()
    assert src.skipped == 3


def test_offline_missing_row_is_fatal_and_skip_mode_counts(tmp_path):
    rows = [[1, 2, 3], [4, 5, 6]]
    data = PreparedData(make_prepared(tmp_path / "d", rows))
    cache = tmp_path / "cache"
    cache.mkdir()
    _write_hs(cache, 0, rows[0])
    src = RowSource(data, on_missing="raise", on_generate="delete", cache_dir=str(cache), num_aux=3, max_len=100)
    pf = Prefetcher(src, [StepItem([0, 1], True)], aux_size=3 * H, hidden_size=H)
    with pytest.raises(MissingHiddenStates, match="row 1"):
        list(pf)
    pf.close()
    src = RowSource(data, on_missing="skip", on_generate="delete", cache_dir=str(cache), num_aux=3, max_len=100)
    pf = Prefetcher(src, [StepItem([0, 1], True)], aux_size=3 * H, hidden_size=H, noise=0.05, seed=1, epoch=2)
    (b, _), = list(pf)
    pf.close()
    assert b.num_samples == 1 and src.skipped == 1
    with pytest.raises(ValueError, match="vllm-endpoint"):
        RowSource(data, on_missing="generate", on_generate="delete", cache_dir=None, num_aux=3, max_len=10)


def test_noise_is_uniform_bounded_and_reproducible(tmp_path):
    rows = [[1, 2, 3, 4, 5, 6, 7, 8]]
    data = PreparedData(make_prepared(tmp_path / "d", rows))
    cache = tmp_path / "cache"
    cache.mkdir()
    _write_hs(cache, 0, rows[0], value=1.0)
    out = []
    for _ in range(2):
        src = RowSource(data, on_missing="raise", on_generate="delete", cache_dir=str(cache), num_aux=3, max_len=100)
        pf = Prefetcher(src, [StepItem([0], True)], aux_size=3 * H, hidden_size=H, noise=0.05, seed=4, epoch=1)
        out.append(list(pf)[0][0])
        pf.close()
    d = out[0].aux[0, :7] - 1.0
    assert d.abs().max() <= 0.05 and d.abs().max() > 0.03 and d.std() > 0.01
    assert torch.equal(out[0].aux, out[1].aux)
    assert torch.equal(out[0].verifier_last[0, :7], torch.ones(7, H))   # no noise on the targets


def test_verifier_tensors_tied_and_sharded(tmp_path):
    V = 10
    emb = torch.randn(V, H)
    save_file({"model.embed_tokens.weight": emb}, str(tmp_path / "a.safetensors"))
    save_file({"model.norm.weight": torch.full((H,), 2.0), "model.layers.0.mlp.weight": torch.zeros(2)},
              str(tmp_path / "b.safetensors"))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "model.embed_tokens.weight": "a.safetensors", "model.norm.weight": "b.safetensors"}}))
    sel = torch.tensor([1, 4, 7])
    t = load_verifier_tensors(tmp_path, tie_word_embeddings=True, selected=sel)
    assert torch.equal(t["lm_head_rows"], emb[sel]) and torch.equal(t["embed"], emb)
    assert torch.equal(t["norm"], torch.full((H,), 2.0))
    save_file({"lm_head.weight": torch.ones(V, H)}, str(tmp_path / "c.safetensors"))
    idx = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    idx["weight_map"]["lm_head.weight"] = "c.safetensors"
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(idx))
    t = load_verifier_tensors(tmp_path, tie_word_embeddings=False, selected=sel)
    assert torch.equal(t["lm_head_rows"], torch.ones(3, H))


def test_rows_failing_in_a_row_stop_training_with_the_last_error(tmp_path):
    from speculators_core.training import source as source_mod

    n = source_mod.MAX_FAILURES_IN_A_ROW
    rows = [[1, 2, 3, i + 4] for i in range(n + 3)]
    data = PreparedData(make_prepared(tmp_path / "d", rows))
    cache = tmp_path / "cache"
    cache.mkdir()
    # a few bad rows between good ones are skipped and counted; the run goes on
    for i in range(4):
        if i % 2:
            cache_path(cache, i).write_bytes(b"corrupt")
        else:
            _write_hs(cache, i, rows[i])
    src = RowSource(data, on_missing="raise", on_generate="delete", cache_dir=str(cache), num_aux=3, max_len=100)
    got = list(Prefetcher(src, [StepItem([0, 1, 2, 3], True)], aux_size=3 * H, hidden_size=H))
    assert got[0][0].num_samples == 2 and src.skipped == 2 and src.failures_in_a_row == 1
    # then every row fails: training stops at the limit, naming the cause
    for i in range(4, n + 3):
        cache_path(cache, i).write_bytes(b"corrupt")
    src = RowSource(data, on_missing="raise", on_generate="delete", cache_dir=str(cache), num_aux=3, max_len=100)
    pf = Prefetcher(src, [StepItem(list(range(n + 3)), True)], aux_size=3 * H, hidden_size=H)
    with pytest.raises(source_mod.HiddenStatesFailing, match=f"last {n} rows in a row.*do not fit"):
        list(pf)
    pf.close()
