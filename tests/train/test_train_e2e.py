"""The trainer as a real process: learning with the hf engine server, FSDP (2-process gloo torchrun)
equivalence, and resume after kill -9."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.train.helpers import REPO, fill_cache, make_prepared, read_metrics, run_train, train_argv
from tests.vllm_fixtures import free_port, start_server, stop_server, wait_health

TRAIN_KEYS = {"type", "time", "step", "epoch", "epoch_progress", "loss", "lr", "grad_norm", "tokens", "tokens_per_s",
              "samples_per_s", "data_wait_s", "compute_s", "step_time_s", "skipped_rows", "hs_requests", "hs_mb",
              "hs_latency_s", "hs_queue_wait_s"}
START_KEYS = {"type", "time", "epochs", "steps_per_epoch", "total_steps", "train_rows", "val_rows", "world_size",
              "ttt_steps", "resumed_from_epoch", "draft_vocab_size", "dtype", "dtype_reason"}
VAL_KEYS = {"type", "time", "step", "epoch", "loss", "samples", "acceptance_length", "acceptance_length_estimate",
            "per_position_acceptance", "replay_drafts", "replay_accepted_tokens"}
CKPT_KEYS = {"type", "time", "step", "epoch", "path", "val_loss", "best"}


def per_step_keys(kind: str, k: int) -> set[str]:
    return {f"{kind}_{i}" for i in range(k)}


@pytest.mark.slow
def test_learns_on_demo_data_with_hf_engine(tiny_target, demo_prepared, tmp_path):
    storage = tmp_path / "hs"
    storage.mkdir()
    port = free_port()
    log = tmp_path / "server.log"
    proc = start_server([sys.executable, "-m", "speculators_core.hf_server", str(tiny_target), "--port", str(port),
                         "--hidden-states-path", str(storage), "--target-layer-ids", "2", "4", "5", "8",
                         "--device", "cpu"], log)
    try:
        wait_health(f"http://127.0.0.1:{port}/health", proc, timeout=120, log=log)
        save = tmp_path / "ckpt"
        run_dir = tmp_path / "run"
        run_train(train_argv(tiny_target, demo_prepared, save, "--epochs", "2", "--total-seq-len", "1024",
                             "--draft-vocab-size", "1024", "--lr", "2e-3", "--vllm-endpoint",
                             f"http://127.0.0.1:{port}/v1", "--hidden-states-storage", str(storage),
                             "--on-missing", "generate", "--on-generate", "delete", "--run-dir", str(run_dir)),
                  timeout=900)
    finally:
        stop_server(proc)
    recs = read_metrics(run_dir)
    kinds = [r["type"] for r in recs]
    assert kinds[0] == "start" and kinds[-1] == "end" and recs[-1]["status"] == "completed"
    assert START_KEYS <= set(recs[0])
    from speculators_core.precision import choose_dtype

    # auto: bf16 only where this CPU runs it natively (AVX512_BF16/AMX), else fp32; said in the log too
    assert recs[0]["dtype"] == choose_dtype("auto", "cpu").dtype
    assert recs[0]["dtype_reason"] == choose_dtype("auto", "cpu").reason
    trains = [r for r in recs if r["type"] == "train"]
    vals = [r for r in recs if r["type"] == "val"]
    ckpts = [r for r in recs if r["type"] == "checkpoint"]
    for r in trains:
        assert TRAIN_KEYS | per_step_keys("loss", 3) | per_step_keys("full_acc", 3) | per_step_keys("cond_acc", 3) <= set(r)
    assert [r["step"] for r in trains] == list(range(1, len(trains) + 1))
    assert sum(r["hs_requests"] for r in trains) > 0  # the server really produced the states
    assert trains[-1]["skipped_rows"] == 0
    assert len(vals) == 2 and all(VAL_KEYS <= set(v) for v in vals)
    assert len(ckpts) == 2 and all(CKPT_KEYS <= set(c) for c in ckpts)
    # learning: validation loss falls and full_acc_0 is far above chance (1/1024)
    assert vals[1]["loss"] < vals[0]["loss"]
    assert vals[1]["full_acc_0"] > 0.05, vals[1]  # chance: 1/1024
    assert os.path.realpath(save / "checkpoint_best") == str((save / str(min(ckpts, key=lambda c: c["val_loss"])["epoch"])).resolve())
    assert not list(storage.glob("*.safetensors"))  # online mode deletes the server's files


def _equal_length_data(tmp_path: Path, tiny_target: Path, n_rows=8, length=65) -> tuple[Path, Path]:
    g = torch.Generator().manual_seed(3)
    rows = [torch.randint(3, 2000, (length,), generator=g).tolist() for _ in range(n_rows)]
    data = make_prepared(tmp_path / "data", rows)
    cache = tmp_path / "cache"
    fill_cache(tiny_target, data, cache)
    return data, cache


@pytest.mark.slow
def test_fsdp_two_processes_match_one_process(tiny_target, tmp_path):
    data, cache = _equal_length_data(tmp_path, tiny_target)
    common = ["--epochs", "1", "--val-split", "0", "--draft-vocab-size", "512", "--lr", "1e-3", "--warmup-ratio", "0",
              "--on-missing", "raise", "--hidden-states-path", str(cache), "--seed", "7"]
    # one process packs two 64-token samples per row; two processes take one each per step
    run_train(train_argv(tiny_target, data, tmp_path / "one", *common, "--total-seq-len", "128"))
    run_train(train_argv(tiny_target, data, tmp_path / "two", *common, "--total-seq-len", "64"), nproc=2)
    one = [r for r in read_metrics(tmp_path / "one") if r["type"] == "train"]
    two = [r for r in read_metrics(tmp_path / "two") if r["type"] == "train"]
    assert [r["step"] for r in one] == [r["step"] for r in two] == [1, 2, 3, 4]
    assert read_metrics(tmp_path / "two")[0]["world_size"] == 2
    for a, b in zip(one, two):
        assert a["tokens"] == b["tokens"] == 128
        assert math.isclose(a["loss"], b["loss"], rel_tol=2e-3), (a["loss"], b["loss"])
        assert math.isclose(a["grad_norm"], b["grad_norm"], rel_tol=5e-3), (a["grad_norm"], b["grad_norm"])
    # the weights after training agree too (saved bf16)
    from safetensors.torch import load_file

    w1, w2 = load_file(str(tmp_path / "one" / "0" / "model.safetensors")), load_file(str(tmp_path / "two" / "0" / "model.safetensors"))
    assert w1.keys() == w2.keys()
    for k in w1:
        if w1[k].is_floating_point():
            assert torch.allclose(w1[k].float(), w2[k].float(), atol=2e-2, rtol=2e-2), k


@pytest.mark.slow
def test_resume_after_kill_9(tiny_target, tmp_path):
    data, cache = _equal_length_data(tmp_path, tiny_target, n_rows=24, length=65)
    save = tmp_path / "ckpt"
    argv = train_argv(tiny_target, data, save, "--epochs", "3", "--total-seq-len", "64", "--draft-vocab-size", "512",
                      "--on-missing", "raise", "--hidden-states-path", str(cache), "--val-split", "0.1")
    from tests.vllm_fixtures import thread_counts

    env = dict(os.environ, OMP_NUM_THREADS=str(thread_counts().train))
    log = open(tmp_path / "train1.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "speculators_core.train", *argv], cwd=str(REPO), env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:  # mid-epoch 1: checkpoint 0 exists
            recs = read_metrics(save) if (save / "metrics.jsonl").exists() else []
            if any(r["type"] == "train" and r["epoch"] == 1 and r["epoch_progress"] >= 0.3 for r in recs):
                break
            time.sleep(0.05)
        assert proc.poll() is None, (tmp_path / "train1.log").read_text()[-3000:]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    assert (save / "0" / "model.safetensors").exists() and not (save / "2").exists()
    before = [r for r in read_metrics(save) if r["type"] == "train"]
    out = run_train(argv + ["--resume"])
    recs = read_metrics(save)
    starts = [r for r in recs if r["type"] == "start"]
    assert starts[-1]["resumed_from_epoch"] in (0, 1)  # 1 if the kill came after epoch 1's save
    resumed = recs[recs.index(starts[-1]):]
    first = next(r for r in resumed if r["type"] == "train")
    done = starts[-1]["resumed_from_epoch"]
    assert first["epoch"] == done + 1
    assert first["step"] == max(r["step"] for r in before if r["epoch"] == done) + 1
    # the continued run repeats the interrupted steps exactly: same lr, same loss (fp32 master
    # weights, optimizer state and the per-row data order/noise come back from the checkpoint)
    same = [r for r in before if r["step"] == first["step"]]
    assert same, "the kill came before the first step after the checkpoint was recorded"
    assert math.isclose(same[-1]["lr"], first["lr"], rel_tol=1e-9)
    assert math.isclose(same[-1]["loss"], first["loss"], rel_tol=1e-4), (same[-1]["loss"], first["loss"])
    assert resumed[-1] == {**resumed[-1], "type": "end", "status": "completed"}
    # every checkpoint directory is complete and loadable; nothing temporary is left
    from safetensors.torch import load_file

    for e in range(3):
        files = {p.name for p in (save / str(e)).iterdir()}
        assert {"config.json", "model.safetensors", "optimizer_state_dict.pt", "scheduler_state_dict.pt"} <= files
        assert "fc.weight" in load_file(str(save / str(e) / "model.safetensors"))
        json.loads((save / str(e) / "config.json").read_text())
    assert not [p for p in save.iterdir() if p.name.startswith(".")]
    # resuming a finished run says so and exits 0
    again = run_train(argv + ["--resume"])
    assert "already done" in again.stdout
    assert out.returncode == 0


@pytest.mark.slow
def test_from_pretrained_starts_from_the_checkpoint_and_bad_input_fails_clearly(tiny_target, tmp_path):
    data, cache = _equal_length_data(tmp_path, tiny_target, n_rows=4)
    common = ["--total-seq-len", "128", "--draft-vocab-size", "512", "--on-missing", "raise",
              "--hidden-states-path", str(cache), "--val-split", "0", "--epochs", "1"]
    run_train(train_argv(tiny_target, data, tmp_path / "a", *common, "--lr", "1e-2"))
    run_train(train_argv(tiny_target, data, tmp_path / "b", *common, "--lr", "0", "--from-pretrained",
                         str(tmp_path / "a" / "0")))
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "a" / "0" / "model.safetensors")), load_file(str(tmp_path / "b" / "0" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # lr 0: unchanged
    # offline mode without a cache entry: a clear error, an `end` record with status failed, exit != 0
    bad = run_train(train_argv(tiny_target, data, tmp_path / "c", *common[:4], "--on-missing", "raise",
                               "--hidden-states-path", str(tmp_path / "empty")), check=False)
    assert bad.returncode != 0
    assert "no cached hidden states" in bad.stderr
    end = read_metrics(tmp_path / "c")[-1]
    assert end["type"] == "end" and end["status"] == "failed" and "MissingHiddenStates" in end["message"]
