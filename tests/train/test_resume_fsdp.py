"""Resume under torchrun: rank 0 alone reads the checkpoint; the weights and the optimizer state
reach rank 1 by broadcast. The resumed epoch is exactly the uninterrupted run's."""

from __future__ import annotations

import math

import pytest

from tests.train.helpers import read_metrics, run_train, train_argv
from tests.train.test_train_e2e import _equal_length_data


@pytest.mark.slow
def test_two_process_resume_repeats_the_uninterrupted_run(tiny_target, tmp_path):
    data, cache = _equal_length_data(tmp_path, tiny_target, n_rows=8, length=65)
    common = ["--val-split", "0", "--draft-vocab-size", "512", "--lr", "1e-3", "--warmup-ratio", "0",
              "--scheduler", "constant", "--on-missing", "raise", "--hidden-states-path", str(cache),
              "--seed", "7", "--total-seq-len", "64"]
    run_train(train_argv(tiny_target, data, tmp_path / "straight", *common, "--epochs", "2"), nproc=2)
    run_train(train_argv(tiny_target, data, tmp_path / "resumed", *common, "--epochs", "1"), nproc=2)
    out = run_train(train_argv(tiny_target, data, tmp_path / "resumed", *common, "--epochs", "2", "--resume"), nproc=2)
    assert "resumed from" in out.stdout
    straight = [r for r in read_metrics(tmp_path / "straight") if r["type"] == "train" and r["epoch"] == 1]
    recs = read_metrics(tmp_path / "resumed")
    start = [r for r in recs if r["type"] == "start"][-1]
    assert start["resumed_from_epoch"] == 0 and start["world_size"] == 2
    resumed = [r for r in recs[recs.index(start):] if r["type"] == "train"]
    assert [r["step"] for r in resumed] == [r["step"] for r in straight] and resumed
    for a, b in zip(straight, resumed):  # a rank with stale weights or Adam moments would differ at once
        assert math.isclose(a["loss"], b["loss"], rel_tol=1e-4), (a["loss"], b["loss"])
        assert math.isclose(a["grad_norm"], b["grad_norm"], rel_tol=1e-3), (a["grad_norm"], b["grad_norm"])


def test_a_single_process_loads_as_before(tmp_path):
    from speculators_core.training import checkpoint as ck
    from speculators_core.training.distributed import Dist

    import torch

    assert ck.load_resumable_on_rank0(tmp_path, Dist(0, 1, 0, torch.device("cpu"))) is None
