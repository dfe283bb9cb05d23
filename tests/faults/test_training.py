"""Training faults: kills at every point of a checkpoint save, corrupt checkpoints and caches, torn
JSONL lines, a full disk, NaN losses, crafted pickles, bad flags. Every case ends with a usable
checkpoint, a clear message, or both, never a traceback or a silently lost record."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from speculators_core.training import checkpoint as ck
from tests.train.helpers import REPO, fill_cache, make_prepared, read_metrics, train_argv

pytestmark = pytest.mark.fault("training")


class Killed(BaseException):
    """A simulated kill -9: nothing after it runs (the save code's `except Exception` never sees it)."""


def _save(save, epoch, marker):
    return ck.save_checkpoint(save, epoch, tensors={"fc.weight": torch.full((2, 2), marker, dtype=torch.bfloat16)},
                              config={"epoch": epoch, "marker": marker}, optimizer_state={"m": torch.tensor(marker)},
                              scheduler_state={"last_epoch": 1}, trainer_state={"epoch": epoch, "step": 1,
                                                                                "marker": marker})


def _marker(path: Path) -> float:
    return json.loads((path / "config.json").read_text())["marker"]


def _dot_entries(save: Path) -> list[str]:
    return sorted(p.name for p in save.iterdir() if p.name.startswith("."))


# -- finding 3: every kill point of a checkpoint save ------------------------------------------------
@pytest.mark.parametrize("overwrite", [False, True], ids=["new-epoch", "overwrite"])
@pytest.mark.parametrize("kill_before", ["write", "rename-1", "rename-2", "rename-3", "remove-old"])
def test_kill_at_every_point_of_a_save_leaves_one_complete_checkpoint(tmp_path, monkeypatch, kill_before, overwrite):
    save = tmp_path / "ckpt"
    _save(save, 0, 1.0)
    if overwrite:
        _save(save, 1, 1.0)
    real_replace, real_rmtree, real_save = os.replace, ck.shutil.rmtree, torch.save
    calls = {"replace": 0}

    def replace(src, dst):
        calls["replace"] += 1
        if kill_before == f"rename-{calls['replace']}":
            raise Killed(kill_before)
        return real_replace(src, dst)

    def rmtree(p, *a, **k):
        if kill_before == "remove-old":
            raise Killed(kill_before)
        return real_rmtree(p, *a, **k)

    def tsave(obj, f, *a, **k):
        if kill_before == "write" and str(f).endswith("scheduler_state_dict.pt"):
            real_save(obj, f, *a, **k)
            Path(f).write_bytes(Path(f).read_bytes()[:5])  # torn, then killed
            raise Killed("write")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(ck.os, "replace", replace)
    monkeypatch.setattr(ck.shutil, "rmtree", rmtree)
    monkeypatch.setattr(torch, "save", tsave)
    try:
        _save(save, 1, 2.0)
    except Killed:
        pass
    monkeypatch.undo()
    ck.clean_stale(save)
    assert _dot_entries(save) == []
    latest = ck.latest_checkpoint(save)
    # a kill after the new copy was complete keeps the new one, before it the old one (or none)
    if kill_before == "write" or (kill_before == "rename-1"):
        if overwrite:
            assert latest[0] == 1 and _marker(latest[1]) == 1.0
        else:
            assert latest[0] == 0
    else:
        assert latest[0] == 1 and _marker(latest[1]) == 2.0
    assert ck.load_resumable(save).epoch == latest[0]
    _save(save, 2, 3.0)  # the next save works
    assert ck.latest_checkpoint(save)[0] == 2 and _dot_entries(save) == []


def test_kill_during_set_best_keeps_the_previous_best(tmp_path, monkeypatch):
    _save(tmp_path, 0, 1.0)
    _save(tmp_path, 1, 2.0)
    ck.set_best(tmp_path, 0)

    def replace(src, dst):
        raise Killed("set_best")

    monkeypatch.setattr(ck.os, "replace", replace)
    with pytest.raises(Killed):
        ck.set_best(tmp_path, 1)
    monkeypatch.undo()
    ck.clean_stale(tmp_path)
    assert os.readlink(tmp_path / "checkpoint_best") == "0" and _dot_entries(tmp_path) == []


def _corrupt(path: Path, how: str, marker: Path) -> None:
    if how == "truncated-safetensors":
        (path / "model.safetensors").write_bytes((path / "model.safetensors").read_bytes()[:20])
    elif how == "garbage-config":
        (path / "config.json").write_text("{not json")
    elif how == "truncated-trainer-state":
        (path / "trainer_state.pt").write_bytes((path / "trainer_state.pt").read_bytes()[:30])
    elif how == "empty-optimizer":
        (path / "optimizer_state_dict.pt").write_bytes(b"")
    elif how == "pickle-payload":
        torch.save({"epoch": 1, "x": _Payload(str(marker))}, path / "trainer_state.pt")
    elif how == "wrong-epoch":
        torch.save({"epoch": 7, "step": 1}, path / "trainer_state.pt")


class _Payload:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("how", ["truncated-safetensors", "garbage-config", "truncated-trainer-state",
                                 "empty-optimizer", "pickle-payload", "wrong-epoch"])
def test_resume_falls_back_from_a_corrupt_latest_checkpoint(tmp_path, how):
    save = tmp_path / "ckpt"
    _save(save, 0, 1.0)
    _save(save, 1, 2.0)
    marker = tmp_path / "pwned"
    _corrupt(save / "1", how, marker)
    lines: list[str] = []
    r = ck.load_resumable(save, log=lines.append)
    assert r.epoch == 0 and r.path == save / "0" and r.trainer_state["marker"] == 1.0
    assert r.optimizer_state["m"].item() == 1.0 and r.scheduler_state == {"last_epoch": 1}
    assert any("falling back" in x and str(save / "1") in x and "epoch 0" in x for x in lines), lines
    assert not marker.exists()


def test_resume_with_no_usable_checkpoint_says_so(tmp_path):
    save = tmp_path / "ckpt"
    _save(save, 0, 1.0)
    _corrupt(save / "0", "garbage-config", tmp_path / "m")
    with pytest.raises(ck.NoUsableCheckpoint, match="config.json") as got:
        ck.load_resumable(save)
    assert str(save / "0") in str(got.value) and "never trains from scratch" in got.value.fix


# -- finding 6: nothing the project loads with torch.load runs code -------------------------------
def test_crafted_token_freq_does_not_run_code(tmp_path):
    from speculators_core.model.vocab import load_token_freq

    marker = tmp_path / "pwned"
    torch.save({"x": _Payload(str(marker))}, tmp_path / "token_freq.pt")
    with pytest.raises(Exception) as ei:
        load_token_freq(tmp_path / "token_freq.pt")
    assert not marker.exists()
    assert "token_freq.pt" in str(ei.value)


def test_everything_a_real_checkpoint_holds_loads_weights_only(tmp_path, fault_data):
    data, cache, tiny = fault_data
    save = tmp_path / "ckpt"
    assert _train_inproc(train_argv(tiny, data, save, *_common(cache), "--epochs", "1")) == 0
    for name in ("trainer_state.pt", "optimizer_state_dict.pt", "scheduler_state_dict.pt"):
        torch.load(save / "0" / name, map_location="cpu", weights_only=True)
    torch.load(data / "token_freq.pt", weights_only=True)


# -- finding 4: torn JSONL lines ------------------------------------------------------------------
def test_torn_line_does_not_swallow_the_next_record(tmp_path):
    from speculators_core.fsutil import append_jsonl, read_jsonl, read_jsonl_counted

    p = tmp_path / "metrics.jsonl"
    append_jsonl(p, {"type": "train", "step": 1})
    with open(p, "a") as fh:
        fh.write('{"type": "train", "st')  # a crash or a full disk mid-line
    append_jsonl(p, {"type": "train", "step": 3})
    recs, off = read_jsonl(p)
    assert [r["step"] for r in recs] == [1, 3] and off == p.stat().st_size
    got = read_jsonl_counted(p)
    assert [r["step"] for r in got.records] == [1, 3] and got.skipped == 1 and got.offset == off


@pytest.mark.parametrize("garbage", [b"\x00\x00\x00\n", b"not json\n", b"[1, 2]\n"])
def test_unreadable_lines_are_counted(tmp_path, garbage):
    from speculators_core.fsutil import append_jsonl, read_jsonl_counted

    p = tmp_path / "events.jsonl"
    append_jsonl(p, {"event": "a"})
    with open(p, "ab") as fh:
        fh.write(garbage)
    append_jsonl(p, {"event": "b"})
    got = read_jsonl_counted(p)
    assert [r["event"] for r in got.records] == ["a", "b"] and got.skipped == 1


def test_a_record_is_one_write_on_an_append_fd(tmp_path, monkeypatch):
    from speculators_core import fsutil

    writes = []
    real = os.write
    monkeypatch.setattr(fsutil.os, "write", lambda fd, b: writes.append(b) or real(fd, b))
    p = tmp_path / "m.jsonl"
    fsutil.append_jsonl(p, {"a": 1, "b": "x" * 10000})
    assert len(writes) == 1 and writes[0].endswith(b"\n")


def test_disk_full_while_writing_metrics_keeps_earlier_records(tmp_path, monkeypatch):
    from speculators_core import fsutil

    p = tmp_path / "metrics.jsonl"
    fsutil.append_jsonl(p, {"step": 1})

    def full(fd, b):
        os.ftruncate(fd, os.fstat(fd).st_size)
        real_write(fd, b[:7])  # part of the line made it
        raise OSError(errno.ENOSPC, "No space left on device")

    real_write = os.write
    monkeypatch.setattr(fsutil.os, "write", full)
    with pytest.raises(OSError):
        fsutil.append_jsonl(p, {"step": 2})
    monkeypatch.undo()
    fsutil.append_jsonl(p, {"step": 3})  # space again
    got = fsutil.read_jsonl_counted(p)
    assert [r["step"] for r in got.records] == [1, 3] and got.skipped == 1


@pytest.mark.parametrize("what", ["model.safetensors", "trainer_state.pt"])
def test_disk_full_while_writing_a_checkpoint_keeps_the_previous(tmp_path, monkeypatch, what):
    save = tmp_path / "ckpt"
    _save(save, 0, 1.0)
    import safetensors.torch as st

    real_save, real_st = torch.save, st.save_file

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    if what == "model.safetensors":
        monkeypatch.setattr(st, "save_file", full)
    else:
        monkeypatch.setattr(torch, "save", lambda obj, f, *a, **k: full() if str(f).endswith(what)
                            else real_save(obj, f, *a, **k))
    with pytest.raises(OSError):
        _save(save, 1, 2.0)
    monkeypatch.undo()
    assert _dot_entries(save) == [] and ck.load_resumable(save).epoch == 0


# -- finding 5: non-finite losses -----------------------------------------------------------------
@pytest.mark.parametrize("val_loss,best,expect_best", [
    (float("nan"), (float("inf"), None), False),
    (float("inf"), (float("inf"), None), False),
    (1.0, (float("nan"), 0), True),      # an old checkpoint that recorded NaN as best
    (2.0, (1.0, 0), False),
    (0.5, (1.0, 0), True),
    (None, (float("inf"), None), True),  # no validation split: the latest is the best we know
])
def test_a_non_finite_val_loss_never_becomes_best(val_loss, best, expect_best):
    is_best, (b_loss, b_epoch) = ck.choose_best(val_loss, best, epoch=3)
    assert is_best == expect_best
    if is_best:
        assert b_epoch == 3
    else:
        assert (b_loss, b_epoch) == best or b_epoch == best[1]


def test_nan_loss_stops_with_a_clear_record_and_keeps_the_last_checkpoint(tmp_path, fault_data, monkeypatch):
    from speculators_core.training.trainer import Trainer

    data, cache, tiny = fault_data
    real = Trainer._forward
    n = {"calls": 0, "validated": False}

    def forward(self, b, counts):
        loss, stats = real(self, b, counts)
        if not self.model.training:
            n["validated"] = True
        elif n["validated"]:
            n["calls"] += 1
            if n["calls"] == 2:  # the second step of epoch 1
                loss = loss * float("nan")
        return loss, stats

    monkeypatch.setattr(Trainer, "_forward", forward)
    save = tmp_path / "ckpt"
    rc = _train_inproc(train_argv(tiny, data, save, *_common(cache), "--epochs", "2"))
    assert rc != 0
    end = read_metrics(save)[-1]
    bad_step = read_metrics(save)[0]["steps_per_epoch"] + 2
    assert end["type"] == "end" and end["status"] == "failed"
    assert f"step {bad_step}" in end["message"] and "rows" in end["message"] and "non-finite" in end["message"]
    assert ck.latest_checkpoint(save)[0] == 0 and not (save / "1").exists()
    assert os.readlink(save / "checkpoint_best") == "0"
    assert not [r for r in read_metrics(save) if r["type"] == "train" and r["step"] == bad_step]


# -- finding 17 and --api-key-env: expected failures end without a traceback ---------------------
def test_generate_mode_without_storage_is_a_clear_usage_error_subprocess(tmp_path, fault_data):
    data, cache, tiny = fault_data
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, "-m", "speculators_core.train",
                        *train_argv(tiny, data, tmp_path / "s", "--on-missing", "generate",
                                    "--vllm-endpoint", "http://127.0.0.1:9/v1")],
                       cwd=str(REPO), env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and "--hidden-states-storage" in p.stderr and "fix:" in p.stderr


def test_train_help_documents_exit_codes(capsys):
    from speculators_core import train

    with pytest.raises(SystemExit):
        train.main(["--help"])
    out = capsys.readouterr().out
    assert "exit codes" in out.lower() and "2" in out


def test_generate_help_documents_exit_codes(capsys):
    from speculators_core import generate

    with pytest.raises(SystemExit):
        generate.main(["--help"])
    assert "exit codes" in capsys.readouterr().out.lower()


def test_rows_failing_in_a_row_stop_cleanly(tmp_path, fault_data, capsys):
    data, cache, tiny = fault_data
    bad = tmp_path / "bad-cache"
    bad.mkdir()
    from safetensors.torch import save_file

    from speculators_core.hidden_states import cache_path

    for r in range(24):
        save_file({"hidden_states": torch.zeros(3, 4, 8), "token_ids": torch.zeros(3, dtype=torch.int64)},
                  str(cache_path(bad, r)))
    save = tmp_path / "ckpt"
    rc = _train_inproc(train_argv(tiny, data, save, *_common(bad)))
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and "fix:" in err and "in a row" in err
    end = read_metrics(save)[-1]
    assert end["status"] == "failed" and "HiddenStatesFailing" in end["message"]


@pytest.mark.parametrize("case", ["unset", "empty", "crlf"])
def test_api_key_env_unset_is_a_clear_error(tmp_path, fault_data, capsys, monkeypatch, case):
    """The trainer reads the key by the servers' rules: a CRLF .env's "\r" would get 401 from every server."""
    data, cache, tiny = fault_data
    if case == "unset":
        monkeypatch.delenv("SPEC_TEST_KEY", raising=False)
    else:
        monkeypatch.setenv("SPEC_TEST_KEY", "" if case == "empty" else "s3cret\r")
    rc = _train_inproc(train_argv(tiny, data, tmp_path / "s", "--on-missing", "generate", "--vllm-endpoint",
                                  "http://127.0.0.1:9/v1", "--hidden-states-storage", str(tmp_path),
                                  "--api-key-env", "SPEC_TEST_KEY"))
    err = capsys.readouterr().err
    assert rc == 2 and "SPEC_TEST_KEY" in err and "Traceback" not in err
    assert case != "crlf" or ("whitespace" in err and "s3cret" not in err)


def test_api_key_env_is_passed_to_the_client(tmp_path, fault_data, monkeypatch):
    import speculators_core.hidden_states as hs

    seen = {}

    class Client:
        def __init__(self, **kw):
            seen.update(kw)
            raise hs.ServerUnavailable("stop here")

    monkeypatch.setattr(hs, "SyncHiddenStatesClient", Client)
    monkeypatch.setenv("SPEC_TEST_KEY", "s3cret")
    data, cache, tiny = fault_data
    rc = _train_inproc(train_argv(tiny, data, tmp_path / "s", "--on-missing", "generate", "--vllm-endpoint",
                                  "http://127.0.0.1:9/v1", "--hidden-states-storage", str(tmp_path),
                                  "--api-key-env", "SPEC_TEST_KEY"))
    assert rc == 1 and seen["api_key"] == "s3cret"


def test_generate_api_key_env_unset_and_bad_data_path(tmp_path, capsys, monkeypatch):
    from speculators_core import generate

    monkeypatch.delenv("SPEC_TEST_KEY", raising=False)
    base = ["--hidden-states-path", str(tmp_path / "c"), "--vllm-endpoint", "http://127.0.0.1:9/v1",
            "--hidden-states-storage", str(tmp_path)]
    assert generate.main(["--data-path", str(tmp_path), *base, "--api-key-env", "SPEC_TEST_KEY"]) == 2
    assert "SPEC_TEST_KEY" in capsys.readouterr().err
    assert generate.main(["--data-path", str(tmp_path / "nope"), *base]) == 2
    err = capsys.readouterr().err
    assert "no such directory" in err and "fix:" in err


# -- cases that pass by design: corrupt cache rows, bad --from-pretrained, kill -9 then resume -----
@pytest.mark.parametrize("how", ["nan", "wrong-shape", "truncated"])
def test_a_bad_cache_row_is_skipped_and_counted(tmp_path, fault_data, how):
    data, cache, tiny = fault_data
    import shutil

    from safetensors.torch import load_file, save_file

    from speculators_core.hidden_states import cache_path

    mine = tmp_path / "cache"
    shutil.copytree(cache, mine)
    p = cache_path(mine, 2)
    t = load_file(str(p))
    if how == "nan":
        t["hidden_states"][0, 0, 0] = float("nan")
        save_file(t, str(p))
    elif how == "wrong-shape":
        save_file({**t, "hidden_states": t["hidden_states"][:, :2].contiguous()}, str(p))
    else:
        p.write_bytes(p.read_bytes()[:100])
    save = tmp_path / "ckpt"
    assert _train_inproc(train_argv(tiny, data, save, *_common(mine), "--epochs", "1")) == 0
    recs = read_metrics(save)
    assert recs[-1]["status"] == "completed"
    assert max(r["skipped_rows"] for r in recs if r["type"] == "train") >= 1


@pytest.mark.parametrize("how", ["missing-dir", "no-safetensors", "garbage-config"])
def test_bad_from_pretrained_is_a_clear_error(tmp_path, fault_data, capsys, how):
    data, cache, tiny = fault_data
    pre = tmp_path / "pre"
    if how != "missing-dir":
        pre.mkdir()
        (pre / "config.json").write_text("{}" if how == "no-safetensors" else "{oops")
    save = tmp_path / "ckpt"
    rc = _train_inproc(train_argv(tiny, data, save, *_common(cache), "--from-pretrained", str(pre)))
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and str(pre) in err and "fix:" in err
    assert read_metrics(save)[-1]["status"] == "failed"


def test_resume_from_a_corrupt_latest_checkpoint_trains_on(tmp_path, fault_data, capsys):
    data, cache, tiny = fault_data
    save = tmp_path / "ckpt"
    argv = train_argv(tiny, data, save, *_common(cache), "--epochs", "2")
    assert _train_inproc(argv + ["--max-steps", "8"]) == 0  # both epochs' checkpoints
    (save / "1" / "model.safetensors").write_bytes(b"\x00" * 16)
    capsys.readouterr()
    assert _train_inproc(argv + ["--resume"]) == 0
    out = capsys.readouterr().out
    assert "falling back" in out and "epoch 0" in out
    starts = [r for r in read_metrics(save) if r["type"] == "start"]
    assert starts[-1]["resumed_from_epoch"] == 0 and read_metrics(save)[-1]["status"] == "completed"
    from safetensors.torch import load_file

    assert "fc.weight" in load_file(str(save / "1" / "model.safetensors"))


_KILLER = r"""
import os, signal, sys
point = os.environ["KILL_AT"]
from speculators_core.training import checkpoint as ck
real_replace = os.replace
n = {"r": 0}
def replace(src, dst):
    n["r"] += 1
    if point == "between-renames" and os.path.basename(str(src)).startswith(".ready-ckpt-1"):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst)
ck.os.replace = replace
if point == "metrics-write":
    from speculators_core import fsutil
    real_write = os.write
    def write(fd, b):
        if b'"epoch":1' in b and b'"type":"train"' in b:
            real_write(fd, b[: len(b) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        return real_write(fd, b)
    fsutil.os.write = write
from speculators_core import train
sys.exit(train.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("point", ["mid-epoch", "between-renames", "metrics-write"])
def test_kill_9_then_resume_completes(tmp_path, fault_data, point):
    data, cache, tiny = fault_data
    save = tmp_path / "ckpt"
    argv = train_argv(tiny, data, save, *_common(cache), "--epochs", "2")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), KILL_AT=point)
    log = open(tmp_path / "train1.log", "wb")
    proc = subprocess.Popen([sys.executable, "-c", _KILLER, *argv], cwd=str(REPO), env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while point == "mid-epoch" and time.monotonic() < deadline and proc.poll() is None:
            recs = read_metrics(save) if (save / "metrics.jsonl").exists() else []
            if any(r["type"] == "train" and r["epoch"] == 1 for r in recs):
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait(120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "train1.log").read_text()[-2000:]
    assert _train_inproc(argv + ["--resume"]) == 0
    from speculators_core.fsutil import read_jsonl_counted

    got = read_jsonl_counted(save / "metrics.jsonl")
    assert got.records[-1]["type"] == "end" and got.records[-1]["status"] == "completed"
    assert got.skipped == (1 if point == "metrics-write" else 0)
    assert [e for e, _ in ck.epoch_dirs(save)] == [0, 1] and _dot_entries(save) == []
    assert ck.load_resumable(save).epoch == 1


# -- helpers --------------------------------------------------------------------------------------
def _common(cache: Path) -> list[str]:
    return ["--total-seq-len", "64", "--draft-vocab-size", "256", "--on-missing", "raise",
            "--hidden-states-path", str(cache), "--val-split", "0.2", "--device", "cpu", "--dtype", "fp32"]


def _train_inproc(argv: list[str]) -> int:
    from speculators_core import train

    try:
        return train.main(argv)
    except SystemExit as e:  # argparse
        return int(e.code or 0)


@pytest.fixture(scope="module")
def fault_data(tiny_target, tmp_path_factory):
    """10 rows of 33 tokens, their hidden states cached: 4 training steps per epoch of 64 tokens."""
    root = tmp_path_factory.mktemp("fault-train")
    g = torch.Generator().manual_seed(5)
    rows = [torch.randint(3, 2000, (33,), generator=g).tolist() for _ in range(10)]
    data = make_prepared(root / "data", rows)
    cache = root / "cache"
    fill_cache(tiny_target, data, cache)
    return data, cache, tiny_target


@pytest.mark.fault("runs")
@pytest.mark.parametrize("torn", ['{"type": "train", "step": 3, "lo', "\x00\x00\x00", "[1, 2]"])
def test_status_reports_torn_metrics_lines(tmp_path, capsys, torn):
    """A torn metrics line (crash, full disk) is skipped, never silently: `status` says how many."""
    from speculators_core import config as cfgmod
    from speculators_core.runs import rundir
    from speculators_tui.cli import main

    cfg = cfgmod.RunConfig()
    cfg.model.target = "builtin:tiny-qwen3"
    cfg.hidden_states.engine, cfg.hidden_states.gpus, cfg.training.gpus = "hf", [], []
    run_dir = rundir.create_run_dir(cfg, parent=str(tmp_path / "runs"))
    with open(run_dir / "metrics.jsonl", "w") as fh:
        fh.write(json.dumps({"type": "start", "total_steps": 10, "epochs": 1}) + "\n")
        fh.write(torn + "\n")
        fh.write(json.dumps({"type": "train", "step": 4, "epoch": 0, "loss": 0.5, "step_time_s": 1.0,
                             "data_wait_s": 0.0}) + "\n")
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "step 4/10" in out  # the record after the torn line is kept
    assert "1 unreadable line(s) skipped in metrics.jsonl" in out


# -- review: --resume never trains from scratch over checkpoints it could not read -----------------
@pytest.mark.parametrize("exc", [PermissionError(errno.EACCES, "Permission denied"), OSError(errno.EIO, "I/O error"),
                                 MemoryError()], ids=["EACCES", "EIO", "MemoryError"])
def test_an_io_error_while_loading_is_not_corruption(tmp_path, monkeypatch, exc):
    save = tmp_path / "ckpt"
    _save(save, 0, 1.0)

    def load(*a, **k):
        raise exc

    monkeypatch.setattr(torch, "load", load)
    with pytest.raises(type(exc) if isinstance(exc, MemoryError) else ck.CheckpointReadError) as got:
        ck.load_resumable(save)
    assert not isinstance(got.value, ck.CorruptCheckpoint)
    if not isinstance(exc, MemoryError):
        assert "trainer_state.pt" in str(got.value) and got.value.fix


def test_an_io_error_reading_config_is_not_corruption(tmp_path):
    save = tmp_path / "ckpt"
    _save(save, 0, 1.0)
    (save / "0" / "config.json").unlink()
    (save / "0" / "config.json").mkdir()  # reading it: IsADirectoryError, an OSError
    with pytest.raises(ck.CheckpointReadError):
        ck.load_resumable(save)


def test_resume_fails_when_no_epoch_directory_is_usable(tmp_path, fault_data, capsys):
    data, cache, tiny = fault_data
    save = tmp_path / "ckpt"
    argv = train_argv(tiny, data, save, *_common(cache), "--epochs", "2")
    assert _train_inproc(argv + ["--max-steps", "8"]) == 0
    for e in ("0", "1"):
        (save / e / "config.json").write_text("{not json")
    before = {e: (save / e / "model.safetensors").read_bytes() for e in ("0", "1")}
    capsys.readouterr()
    assert _train_inproc(argv + ["--resume"]) != 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err and str(save / "0") in err and str(save / "1") in err and "fix:" in err
    assert {e: (save / e / "model.safetensors").read_bytes() for e in ("0", "1")} == before
    assert "starting from scratch" not in out and read_metrics(save)[-1]["status"] == "failed"


# -- review: checkpoint_best agrees with the resumed best_epoch after a fallback --------------------
def test_best_link_follows_the_resumed_best_epoch_after_a_fallback(tmp_path, fault_data, monkeypatch):
    data, cache, tiny = fault_data
    save = tmp_path / "ckpt"
    argv = train_argv(tiny, data, save, *_common(cache), "--epochs", "2")
    assert _train_inproc(argv + ["--max-steps", "8"]) == 0
    ck.set_best(save, 1)  # epoch 1 was the best ...
    (save / "1" / "model.safetensors").write_bytes(b"\x00" * 16)  # ... and is corrupted
    assert ck.load_trainer_state(save / "0")["best_epoch"] == 0
    monkeypatch.setattr(ck, "choose_best", lambda val_loss, best, epoch: (False, best))  # retrained 1: not better
    assert _train_inproc(argv + ["--resume"]) == 0
    assert ck.load_trainer_state(save / "1")["best_epoch"] == 0
    assert os.readlink(save / "checkpoint_best") == "0"


def test_sync_best_removes_a_link_to_a_missing_epoch(tmp_path):
    save = tmp_path / "ckpt"
    _save(save, 0, 1.0)
    ck.set_best(save, 3)
    ck.sync_best(save, 5)
    assert not (save / "checkpoint_best").is_symlink()
    ck.sync_best(save, 0)
    assert os.readlink(save / "checkpoint_best") == "0"


# -- review: clean_stale leaves a live trainer's in-progress save alone --------------------------
def test_clean_stale_skips_a_live_writers_entries(tmp_path):
    save = tmp_path / "ckpt"
    _save(save, 0, 1.0)
    live = subprocess.Popen(["sleep", "60"])
    try:
        dead = subprocess.Popen(["true"])
        dead.wait()
        for pid in (live.pid, dead.pid):
            (save / f"{ck.TMP_PREFIX}4-{pid}").mkdir()
            (save / f".{ck.BEST_LINK}.tmp-{pid}").symlink_to("0")
        import shutil

        shutil.copytree(save / "0", save / f"{ck.READY_PREFIX}1-{live.pid}")
        shutil.copytree(save / "0", save / f"{ck.OLD_PREFIX}0-{live.pid}")
        ck.clean_stale(save)
        assert _dot_entries(save) == sorted([f"{ck.TMP_PREFIX}4-{live.pid}", f".{ck.BEST_LINK}.tmp-{live.pid}",
                                             f"{ck.READY_PREFIX}1-{live.pid}", f"{ck.OLD_PREFIX}0-{live.pid}"])
        assert not (save / "1").exists()
    finally:
        live.kill()
        live.wait()


# -- review: with fp16 loss scaling an overflow skips the step; only a run of them stops -----------
def test_loss_guard_with_a_scaler_stops_only_after_a_run_of_non_finite_losses():
    from speculators_core.training import preflight

    d = _single()
    nan, ok = torch.tensor(float("nan")), torch.tensor(1.0)
    g = preflight.LossGuard(scaler_enabled=True, limit=3)
    for step in range(1, 3):
        g.check(nan, d, step, 0, [1])  # the scaler skips these steps
    g.check(ok, d, 3, 0, [1])  # a finite loss resets the run
    g.check(nan, d, 4, 0, [1])
    g.check(nan, d, 5, 0, [1])
    with pytest.raises(preflight.NonFiniteLoss, match="3 consecutive"):
        g.check(nan, d, 6, 0, [2])
    with pytest.raises(preflight.NonFiniteLoss, match="step 1 "):
        preflight.LossGuard(scaler_enabled=False).check(nan, d, 1, 0, [1])


def test_fp16_training_skips_an_overflow_and_saves_the_scaler(tmp_path, fault_data, monkeypatch):
    from speculators_core.training.trainer import Trainer

    data, cache, tiny = fault_data
    real = Trainer._forward
    n = {"calls": 0}

    def forward(self, b, counts):
        loss, stats = real(self, b, counts)
        if self.model.training:
            n["calls"] += 1
            if n["calls"] == 2:
                loss = loss * float("inf")
        return loss, stats

    monkeypatch.setattr(Trainer, "_forward", forward)
    save = tmp_path / "ckpt"
    argv = [x if x != "fp32" else "fp16" for x in train_argv(tiny, data, save, *_common(cache), "--epochs", "2")]
    assert _train_inproc(argv + ["--max-steps", "4"]) == 0
    assert read_metrics(save)[-1]["status"] == "completed"
    state = torch.load(save / "0" / "trainer_state.pt", map_location="cpu", weights_only=True)
    assert state["scaler"]["scale"] < 65536.0  # the overflow halved the initial scale
    got = {}
    real_load = torch.amp.GradScaler.load_state_dict
    monkeypatch.setattr(torch.amp.GradScaler, "load_state_dict",
                        lambda self, sd: (got.update(sd), real_load(self, sd))[1])
    assert _train_inproc(argv + ["--resume"]) == 0
    assert got.get("scale") == state["scaler"]["scale"]


def _single():
    class D:
        world, rank, is_main, enabled = 1, 0, True, False
        device = torch.device("cpu")

    return D()
