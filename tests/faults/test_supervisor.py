"""Fault cases of runs: a real supervisor process over fake stages (tiny scripts, real signals).

Every stage here starts a child that ignores SIGTERM (as torchrun's workers, vLLM's engine cores or a
stuck prepare worker may), so only a process-group SIGKILL gets rid of it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from speculators_core import config as cfgmod
from speculators_core import procs
from speculators_core.fsutil import read_jsonl
from speculators_core.plan.stages import Stage
from speculators_core.runs import rundir
from speculators_core.runs.control import is_running
from speculators_tui.cli import main as cli
from tests.supervisor.util import wait_for as _wait_for

PY = sys.executable
FAKES = Path(__file__).resolve().parents[1] / "supervisor" / "fakes"
GRACE = 1.0

# A stage that ignores SIGTERM, starts a child that inherits that, records both PIDs, then waits
# (forever, or only until its marker exists when it ran once already: "resuming" is a quick exit).
STUBBORN = """
import os, signal, subprocess, sys, time
pids, marker = sys.argv[1], sys.argv[2]
if os.path.exists(marker):
    print('already done'); sys.exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])
open(pids, 'w').write(f'{os.getpid()} {child.pid}')
open(marker + '.started', 'w').close()
while True:
    time.sleep(0.1)
"""


def make_run(tmp_path: Path, port: int, stuck: str, name: str = "fault") -> Path:
    """A run directory whose recorded stages are fakes; `stuck` (prepare / server / train) is the stage
    that hangs, every stage before it finishes at once and leaves a marker."""
    cfg = cfgmod.RunConfig()
    cfg.model.target = "builtin:tiny-qwen3"
    cfg.hidden_states.engine, cfg.hidden_states.gpus, cfg.training.gpus = "hf", [], []
    cfg.hidden_states.port = port
    cfg.hidden_states.start_timeout = 30.0
    cfg.run.name = name
    run_dir = rundir.create_run_dir(cfg, source="test", parent=str(tmp_path / "runs"))
    health = f"http://127.0.0.1:{port}/health"
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    server_args = ["--ignore-term", "--spawn-child", str(work / "server.pid")]
    if stuck == "server":  # never healthy: the supervisor waits in "server start"
        server_args.append("--never-healthy")
    stages = [
        Stage("prepare", [PY, "-c", STUBBORN, str(work / "prepare.pid"), str(work / "prepare.done")],
              log="prepare.log", description="stubborn prepare"),
        Stage("server", [PY, str(FAKES / "fake_server.py"), "--port", str(port), *server_args], kind="server",
              log="server.log", health_url=health, description="fake server ignoring SIGTERM"),
        Stage("train", [PY, "-c", STUBBORN, str(work / "train.pid"), str(work / "train.done")],
              needs_server=True, log="train.log", description="stubborn trainer"),
    ]
    rundir.write_stages(run_dir, stages)
    if stuck in ("server", "train"):
        (work / "prepare.done").touch()
    return run_dir


def start_supervisor(run_dir: Path) -> subprocess.Popen:
    """The supervisor as its own process, in the foreground like `run --headless`."""
    return subprocess.Popen([PY, "-m", "speculators_core.runs.supervisor", str(run_dir), "--grace", str(GRACE)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])))


def wait_for(cond, timeout=30.0):
    return _wait_for(cond, timeout=timeout)


def wait_stuck_in(run_dir: Path, stage: str, tmp_path: Path) -> None:
    pidfile = tmp_path / "work" / f"{stage}.pid"
    want = 0 if stage == "server" else 1  # the fake server records only its child's pid
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip().count(" ") == want
             and pidfile.read_text().strip() != "")
    if stage == "server":
        wait_for(lambda: rundir.read_state(run_dir)["stages"]["server"].get("status") == "running")


def stage_groups(run_dir: Path) -> list[int]:
    return [s["pgid"] for s in rundir.read_state(run_dir)["stages"].values() if s.get("pgid")]


def left_over(groups) -> list[int]:
    return [pid for g in groups for pid in procs.group_members(g)]


def kill_groups(groups) -> None:
    for g in groups:
        procs.signal_group(g, signal.SIGKILL)


STAGES_AT = ["prepare", "server", "train"]


@pytest.mark.fault("runs")
@pytest.mark.parametrize("stage", STAGES_AT)
def test_kill_9_of_the_supervisor_takes_every_stage_process_along(tmp_path, port, stage):
    """Finding 15: after SIGKILL of the supervisor nothing of any stage survives, without `stop`."""
    run_dir = make_run(tmp_path, port, stage)
    p = start_supervisor(run_dir)
    groups: list[int] = []
    try:
        wait_stuck_in(run_dir, stage, tmp_path)
        groups = stage_groups(run_dir)
        assert left_over(groups), "the stuck stage should be running"
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        wait_for(lambda: not left_over(groups), timeout=GRACE + 10)
    finally:
        if p.poll() is None:
            p.kill()
        kill_groups(groups)
    assert not is_running(run_dir)


@pytest.mark.fault("runs")
@pytest.mark.parametrize("stage", STAGES_AT)
def test_kill_9_then_run_again_finishes(tmp_path, port, stage):
    """A new run of the same stages after a kill -9 finishes: the port is free again, done stages are quick."""
    first = make_run(tmp_path, port, stage, name="first")
    p = start_supervisor(first)
    groups: list[int] = []
    try:
        wait_stuck_in(first, stage, tmp_path)
        groups = stage_groups(first)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        wait_for(lambda: not left_over(groups), timeout=GRACE + 10)
        # The rerun: the interrupted work is now "done" (its marker), the server is healthy.
        for name in ("prepare", "train"):
            (tmp_path / "work" / f"{name}.done").touch()
        second = make_run(tmp_path, port, "none", name="second")
        q = start_supervisor(second)
        assert q.wait(timeout=60) == 0, (second / "events.jsonl").read_text()
    finally:
        if p.poll() is None:
            p.kill()
        kill_groups(groups)
    state = rundir.read_state(second)
    assert state["status"] == "completed"
    assert not left_over(stage_groups(second))


@pytest.mark.fault("runs")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("stage", STAGES_AT)
def test_signal_to_the_headless_supervisor_at_each_stage(tmp_path, port, stage, sig):
    run_dir = make_run(tmp_path, port, stage)
    p = start_supervisor(run_dir)
    groups: list[int] = []
    try:
        wait_stuck_in(run_dir, stage, tmp_path)
        groups = stage_groups(run_dir)
        os.kill(p.pid, sig)
        assert p.wait(timeout=GRACE + 20) == 128 + sig
    finally:
        if p.poll() is None:
            p.kill()
        kill_groups(groups)
    assert not left_over(groups)
    state = rundir.read_state(run_dir)
    assert state["status"] == "stopped"
    assert read_jsonl(run_dir / "events.jsonl")[0][-1]["event"] == "run_stopped"


def _finished_run(tmp_path: Path) -> Path:
    cfg = cfgmod.RunConfig()
    cfg.model.target = "builtin:tiny-qwen3"
    cfg.hidden_states.engine, cfg.hidden_states.gpus, cfg.training.gpus = "hf", [], []
    return rundir.create_run_dir(cfg, source="test", parent=str(tmp_path / "runs"))


@pytest.mark.fault("runs")
@pytest.mark.parametrize("damage", ["corrupt", "empty", "not-an-object", "missing"])
def test_stop_of_a_run_whose_state_is_damaged(tmp_path, capsys, damage):
    run_dir = _finished_run(tmp_path)
    state = run_dir / "state.json"
    if damage == "corrupt":
        state.write_text('{"status": "running", "pid": 12')
    elif damage == "empty":
        state.write_text("")
    elif damage == "not-an-object":
        state.write_text(json.dumps([1, 2, 3]))
    else:
        state.unlink()
    rc = cli(["stop", str(run_dir), "--grace", "0.5"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if damage == "missing":
        assert rc == 2 and "not a run directory" in err
    else:
        assert rc == 0 and "was not running" in out


@pytest.mark.fault("runs")
@pytest.mark.parametrize("verb", ["attach", "status", "stop"])
@pytest.mark.parametrize("what", ["missing", "not-a-run"])
def test_run_verbs_on_a_directory_that_is_not_a_run(tmp_path, capsys, verb, what):
    path = tmp_path / "nowhere"
    if what == "not-a-run":
        path.mkdir()
        (path / "notes.txt").write_text("hello")
    args = [verb, str(path)] + (["--headless"] if verb == "attach" else [])
    assert cli(args) == 2
    out, err = capsys.readouterr()
    assert str(path) in err and "Traceback" not in out + err
