"""The validation replay inside real training processes: the `val` record carries the replayed
acceptance length next to the old estimate, summed across ranks (1 and 2 torchrun processes count
the same drafts), and `--select-best-by acceptance_length` points checkpoint_best at the epoch with
the highest replayed figure."""

from __future__ import annotations

import os

import pytest
import torch

from tests.train.helpers import fill_cache, make_prepared, read_metrics, run_train, train_argv


@pytest.mark.slow
def test_replayed_acceptance_is_summed_over_ranks_and_picks_checkpoint_best(tiny_target, tmp_path):
    g = torch.Generator().manual_seed(5)
    rows = [torch.randint(3, 2000, (49,), generator=g).tolist() for _ in range(8)]
    masks = [[0] * 9 + [1] * 40 for _ in rows]  # a prompt, then a 40-token reply per row
    data = make_prepared(tmp_path / "data", rows, masks)
    cache = tmp_path / "cache"
    fill_cache(tiny_target, data, cache)
    common = ["--epochs", "2", "--val-split", "0.25", "--draft-vocab-size", "512", "--lr", "3e-3",
              "--on-missing", "raise", "--hidden-states-path", str(cache), "--total-seq-len", "64",
              "--select-best-by", "acceptance_length"]
    run_train(train_argv(tiny_target, data, tmp_path / "one", *common))
    run_train(train_argv(tiny_target, data, tmp_path / "two", *common), nproc=2)
    for name in ("one", "two"):
        vals = [r for r in read_metrics(tmp_path / name) if r["type"] == "val"]
        assert len(vals) == 2
        for v in vals:
            assert v["replay_drafts"] > 0 and len(v["per_position_acceptance"]) == 3
            assert v["acceptance_length"] == pytest.approx(1 + v["replay_accepted_tokens"] / v["replay_drafts"])
            assert v["acceptance_length_estimate"] == pytest.approx(1 + sum(v[f"full_acc_{k}"] for k in range(3)))
        best = max(vals, key=lambda v: (v["acceptance_length"], -v["epoch"]))["epoch"]
        assert os.readlink(tmp_path / name / "checkpoint_best") == str(best)
    one = [r for r in read_metrics(tmp_path / "one") if r["type"] == "val"]
    two = [r for r in read_metrics(tmp_path / "two") if r["type"] == "val"]
    # 2 validation rows, one per rank in the 2-process run: the counts are summed across ranks
    # (each reply has 40 trainable columns: at most 39 drafts, at least 39 / (K + 1))
    for a, b in zip(one, two):
        assert 2 * 39 // 4 <= b["replay_drafts"] <= 2 * 39
        assert abs(a["replay_drafts"] - b["replay_drafts"]) <= 0.1 * a["replay_drafts"], (a, b)
