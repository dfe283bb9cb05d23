"""The real pipeline on the tiny CPU demo through the real CLI: prepare, the built-in hf server,
training, checkpoints; a killed server is restarted; Ctrl-C and `stop` leave no process; a second run
resumes instead of starting over."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from speculators_core import config as cfgmod
from speculators_core import procs
from speculators_core.runs import rundir
from speculators_core.fsutil import read_jsonl

from .util import port_free, wait_for

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "speculators_tui"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """One small demo config shared by the tests of this module (prepared data is reused)."""
    from tests.conftest import free_port

    d = tmp_path_factory.mktemp("demo")
    cfg = cfgmod.load(Path(__file__).resolve().parents[2] / "speculators_core" / "presets" / "tiny-cpu-demo.toml")
    cfg.data.max_samples = 24
    cfg.data.seq_length = 384
    cfg.data.output = str(d / "data")
    cfg.hidden_states.port = free_port()
    cfg.hidden_states.start_timeout = 120.0
    cfg.training.epochs = 2
    cfg.training.total_seq_len = 1024
    cfg.training.checkpoint_dir = str(d / "ckpt")
    cfg.run.dir = str(d / "runs")
    cfgmod.save(cfg, d / "demo.toml")
    return d


def _env(demo_dir):
    # A fresh model cache: the first run builds the demo target (the assets stage), as on a new machine.
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", SPECULATORS_TUI_CACHE=str(demo_dir / "cache"))


def _start(demo_dir, *extra):
    return subprocess.Popen([*CLI, "run", str(demo_dir / "demo.toml"), *extra], cwd=demo_dir, env=_env(demo_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _latest_run(demo_dir):
    runs = rundir.list_runs(demo_dir / "runs")
    return runs[0] if runs else None


def _events(run_dir):
    return read_jsonl(run_dir / "events.jsonl")[0]


def _all_pids(state):
    return [s["pid"] for s in state["stages"].values() if s.get("pid")]


def test_demo_runs_survives_a_server_kill_and_resumes(demo_dir):
    port = cfgmod.load(demo_dir / "demo.toml").hidden_states.port
    p = _start(demo_dir, "--headless")
    try:
        run_dir = wait_for(lambda: _latest_run(demo_dir), timeout=30)
        wait_for(lambda: any(r.get("type") == "train" for r in read_jsonl(run_dir / "metrics.jsonl")[0]), timeout=240)
        killed = rundir.read_state(run_dir)["stages"]["server"]["pid"]
        os.kill(killed, signal.SIGKILL)
        out, _ = p.communicate(timeout=400)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 0, out
    ev = [e["event"] for e in _events(run_dir)]
    assert ("stage_finished", "assets") in [(e["event"], e.get("stage")) for e in _events(run_dir)]
    assert (demo_dir / "cache" / "models" / "tiny-qwen3" / "config.json").exists()
    assert "server_restarted" in ev and ev[-1] == "run_finished", ev
    state = rundir.read_state(run_dir)
    assert state["status"] == "completed" and state["stages"]["server"]["restarts"] == 1
    metrics = read_jsonl(run_dir / "metrics.jsonl")[0]
    ends = [r for r in metrics if r["type"] == "end"]
    assert ends and ends[-1]["status"] == "completed"
    # the demo's evaluate stage (hf engine) measured checkpoint_best after training: a K sweep
    evals = [r for r in metrics if r["type"] == "eval"]
    assert [r["num_speculative_tokens"] for r in evals] == [1, 2, 3] and all(r["acceptance_length"] >= 1 for r in evals)
    assert (run_dir / "eval.json").exists() and "serve with K = " in out
    assert [r for r in metrics if r["type"] == "checkpoint"]
    assert (demo_dir / "ckpt" / "checkpoint_best").exists()
    assert "server_restarted" in out and "run tiny-cpu-demo" in out  # the headless display
    assert port_free(port) and not any(procs.pid_alive(x) for x in _all_pids(state))
    assert (run_dir / "run.sh").read_text() == subprocess.run(
        [*CLI, "export", str(run_dir)], env=_env(demo_dir), capture_output=True, text=True, check=True).stdout

    # A second run of the same config: the data is not prepared again and training resumes (all done).
    p2 = _start(demo_dir, "--headless")
    out2, _ = p2.communicate(timeout=300)
    assert p2.returncode == 0, out2
    run2 = _latest_run(demo_dir)
    assert run2 != run_dir
    skipped = {e["stage"] for e in _events(run2) if e["event"] == "stage_skipped"}
    assert {"assets", "prepare"} <= skipped
    assert not [r for r in read_jsonl(run2 / "metrics.jsonl")[0] if r.get("type") == "train"]
    assert "already done" in (run2 / "train.log").read_text()


@pytest.mark.parametrize("how", ["ctrl-c", "detach-stop"])
def test_stopping_a_real_run_leaves_no_process(demo_dir, how):
    port = cfgmod.load(demo_dir / "demo.toml").hidden_states.port
    for ck in (demo_dir / "ckpt").glob("*"):  # make sure there is training left to do
        subprocess.run(["rm", "-rf", str(ck)], check=True)
    before = set(rundir.list_runs(demo_dir / "runs"))
    p = _start(demo_dir, "--headless" if how == "ctrl-c" else "--detach")
    try:
        run_dir = wait_for(lambda: (set(rundir.list_runs(demo_dir / "runs")) - before or {None}).pop(), timeout=30)
        wait_for(lambda: rundir.read_state(run_dir).get("stages", {}).get("train", {}).get("status") == "running",
                 timeout=240)
        state = rundir.read_state(run_dir)
        pids = _all_pids(state) + [state["pid"]]
        groups = [s["pid"] for s in state["stages"].values() if s.get("status") == "running"]
        if how == "ctrl-c":
            os.kill(p.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends to the foreground process
            assert p.wait(timeout=60) == 130
        else:
            assert p.wait(timeout=30) == 0  # --detach returns at once; the run goes on
            assert procs.pid_alive(state["pid"])
            status = subprocess.run([*CLI, "status", str(run_dir)], env=_env(demo_dir), capture_output=True, text=True)
            assert "running" in status.stdout and "train" in status.stdout
            stop = subprocess.run([*CLI, "stop", str(run_dir)], env=_env(demo_dir), capture_output=True, text=True,
                                  timeout=90)
            assert stop.returncode == 0 and "stopped" in stop.stdout
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    wait_for(lambda: not any(procs.pid_alive(x) for x in pids), timeout=10)
    assert not any(procs.group_members(g) for g in groups)
    assert port_free(port)
    assert rundir.read_state(run_dir)["status"] == "stopped"
    assert _events(run_dir)[-1]["event"] == "run_stopped"
