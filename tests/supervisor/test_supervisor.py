"""The supervisor with real child processes: tiny fake stages (a real HTTP server, a real trainer loop)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .util import port_free, wait_for
from stages import FAKES, fake_stages
from speculators_core import procs
from speculators_core.runs import rundir
from speculators_core.fsutil import read_jsonl
from speculators_core.runs.supervisor import Supervisor
from speculators_core.runs.control import is_running, stop_run


def events(run_dir):
    return read_jsonl(Path(run_dir) / "events.jsonl")[0]


def names(run_dir):
    return [(e["event"], e.get("stage")) for e in events(run_dir)]


def sup(run_dir, stages, **kw):
    kw.setdefault("grace", 5.0)
    kw.setdefault("restart_backoff", 0.2)
    return Supervisor(run_dir, stages=stages, skip_check=kw.pop("skip_check", lambda s: None), **kw)


def test_pipeline_runs_stages_in_order_and_stops_the_server(run_dir, port):
    rc = sup(run_dir, fake_stages(run_dir, port, trainer_args=["--steps", "5"], with_generate=True)).run()
    assert rc == 0
    seq = names(run_dir)
    assert seq[0] == ("run_started", None)
    assert seq.index(("stage_finished", "prepare")) < seq.index(("stage_started", "server"))
    assert seq.index(("server_healthy", "server")) < seq.index(("stage_started", "generate"))
    assert seq.index(("stage_finished", "generate")) < seq.index(("stage_started", "train"))
    assert seq[-2:] == [("stage_finished", "server"), ("run_finished", None)]
    state = rundir.read_state(run_dir)
    assert state["status"] == "completed"
    assert {n: s["status"] for n, s in state["stages"].items()} == {
        "prepare": "done", "server": "done", "generate": "done", "train": "done"}
    assert state["stages"]["train"]["returncode"] == 0
    assert state["pid"] == os.getpid()
    # Each stage's output is in its log; the server is gone and its port free.
    assert "prepared" in (run_dir / "prepare.log").read_text()
    assert "step 5" in (run_dir / "train.log").read_text()
    assert "listening" in (run_dir / "server.log").read_text()
    assert port_free(port)
    assert not procs.pid_alive(state["stages"]["server"]["pid"])
    assert len([r for r in read_jsonl(run_dir / "metrics.jsonl")[0] if r["type"] == "train"]) == 5


def test_complete_stage_is_skipped(run_dir, port):
    stages = fake_stages(run_dir, port, trainer_args=["--steps", "1"], prepare_code="raise SystemExit(9)")
    rc = sup(run_dir, stages, skip_check=lambda s: "already prepared" if s.name == "prepare" else None).run()
    assert rc == 0
    ev = [e for e in events(run_dir) if e["event"] == "stage_skipped"]
    assert [(e["stage"], e["message"]) for e in ev] == [("prepare", "already prepared")]
    assert rundir.read_state(run_dir)["stages"]["prepare"]["status"] == "skipped"


def test_failed_task_fails_the_run_before_the_server_starts(run_dir, port):
    stages = fake_stages(run_dir, port, prepare_code="import sys; print('bad data line 3'); sys.exit(4)")
    rc = sup(run_dir, stages).run()
    assert rc == 4
    failed = [e for e in events(run_dir) if e["event"] == "stage_failed"]
    assert failed[0]["stage"] == "prepare" and "bad data line 3" in failed[0]["message"]
    assert ("stage_started", "server") not in names(run_dir)
    state = rundir.read_state(run_dir)
    assert state["status"] == "failed" and state["stages"]["train"]["status"] == "pending"


def test_server_that_fails_to_start_shows_its_last_log_lines(run_dir, port):
    rc = sup(run_dir, fake_stages(run_dir, port, server_args=["--fail"])).run()
    assert rc != 0
    failed = [e for e in events(run_dir) if e["event"] == "stage_failed"][0]
    assert failed["stage"] == "server"
    assert "exited with code 3" in failed["message"] and "boom: cannot load the model weights" in failed["message"]
    assert ("stage_started", "train") not in names(run_dir)
    assert rundir.read_state(run_dir)["stages"]["train"]["status"] == "pending"


def test_server_health_timeout(run_dir, port):
    from speculators_core import config as cfgmod

    cfg = cfgmod.load(run_dir / "run.toml")
    cfg.hidden_states.start_timeout = 1.5
    (run_dir / "run.toml").write_text(cfgmod.dumps(cfg, include_defaults=True))
    t0 = time.monotonic()
    rc = sup(run_dir, fake_stages(run_dir, port, server_args=["--never-healthy"])).run()
    assert rc != 0 and time.monotonic() - t0 < 15
    failed = [e for e in events(run_dir) if e["event"] == "stage_failed"][0]
    assert "within 2s" in failed["message"] or "within 1s" in failed["message"]
    assert "hidden_states.start_timeout" in failed["message"]
    assert port_free(port)


def test_port_already_in_use_is_refused(run_dir, port):
    other = subprocess.Popen([sys.executable, str(FAKES / "fake_server.py"), "--port", str(port)],
                             stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: not port_free(port))
        rc = sup(run_dir, fake_stages(run_dir, port)).run()
        assert rc != 0
        failed = [e for e in events(run_dir) if e["event"] == "stage_failed"][0]
        assert "already in use" in failed["message"] and "hidden_states.port" in failed["message"]
    finally:
        procs.stop_group(other.pid, grace=2, proc=other)


def test_server_crash_during_training_is_restarted(run_dir, port):
    stages = fake_stages(run_dir, port, trainer_args=["--steps", "30", "--step-time", "0.1"])
    s = sup(run_dir, stages)
    killed = []

    def killer():
        st = wait_for(lambda: (rundir.read_state(run_dir).get("stages", {}).get("train", {}).get("status") == "running"
                               and rundir.read_state(run_dir)))
        wait_for(lambda: len(read_jsonl(run_dir / "metrics.jsonl")[0]) >= 4)
        pid = rundir.read_state(run_dir)["stages"]["server"]["pid"]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    t = threading.Thread(target=killer)
    t.start()
    rc = s.run()
    t.join()
    assert rc == 0, names(run_dir)
    ev = events(run_dir)
    restarted = [e for e in ev if e["event"] == "server_restarted"]
    assert len(restarted) == 1 and restarted[0]["restarts"] == 1
    state = rundir.read_state(run_dir)
    assert state["stages"]["server"]["restarts"] == 1
    assert state["stages"]["server"]["pid"] != killed[0]
    steps = [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl")[0] if r["type"] == "train"]
    assert steps == list(range(1, 31))
    assert port_free(port)


def test_hung_server_is_restarted(run_dir, port):
    """A server process that stays alive but stops answering /health is restarted like a dead one."""
    sick = run_dir / "sick"
    stages = fake_stages(run_dir, port, server_args=["--unhealthy-file", str(sick)],
                         trainer_args=["--steps", "40", "--step-time", "0.05"])
    s = sup(run_dir, stages, hang_timeout=0.5, health_interval=0.1)

    def make_sick():
        wait_for(lambda: len(read_jsonl(run_dir / "metrics.jsonl")[0]) >= 3)
        sick.write_text("x")
        wait_for(lambda: any(e.get("kind") == "server_hung" for e in events(run_dir)))
        sick.unlink()

    t = threading.Thread(target=make_sick)
    t.start()
    rc = s.run()
    t.join()
    assert rc == 0, names(run_dir)
    ev = events(run_dir)
    assert [e["event"] for e in ev].count("server_restarted") == 1
    hung = [e for e in ev if e.get("kind") == "server_hung"]
    assert len(hung) == 1 and "has not answered /health" in hung[0]["message"]
    assert len([r for r in read_jsonl(run_dir / "metrics.jsonl")[0] if r["type"] == "train"]) == 40


def test_server_restarts_are_bounded(run_dir, port):
    stages = fake_stages(run_dir, port, trainer_args=["--steps", "200", "--step-time", "0.05"])
    s = sup(run_dir, stages, max_restarts=2)

    def killer():
        kills = 0
        while kills < 3:
            st = rundir.read_state(run_dir)
            if st.get("status") in ("completed", "failed", "stopped"):
                return
            up = [e for e in events(run_dir) if e["event"] in ("server_healthy", "server_restarted")]
            train_running = st.get("stages", {}).get("train", {}).get("status") == "running"
            if train_running and len(up) > kills:  # kill each server once it is healthy
                os.kill(st["stages"]["server"]["pid"], signal.SIGKILL)
                kills += 1
            time.sleep(0.05)

    t = threading.Thread(target=killer)
    t.start()
    rc = s.run()
    t.join()
    assert rc != 0
    ev = events(run_dir)
    assert len([e for e in ev if e["event"] == "server_restarted"]) == 2
    failed = [e for e in ev if e["event"] == "stage_failed"]
    assert failed[0]["stage"] == "server" and "restarted 2 time(s)" in failed[0]["message"]
    state = rundir.read_state(run_dir)
    assert state["status"] == "failed"
    assert not procs.pid_alive(state["stages"]["train"]["pid"])


def test_trainer_failure_stops_the_server(run_dir, port):
    server_child = run_dir / "server_child.pid"
    stages = fake_stages(run_dir, port, server_args=["--spawn-child", str(server_child)],
                         trainer_args=["--steps", "2", "--exit-code", "7"])
    rc = sup(run_dir, stages).run()
    assert rc == 7
    failed = [e for e in events(run_dir) if e["event"] == "stage_failed"][0]
    assert failed["stage"] == "train" and "fake training failure" in failed["message"]
    assert port_free(port)
    state = rundir.read_state(run_dir)
    assert not procs.pid_alive(state["stages"]["server"]["pid"])
    assert not procs.pid_alive(int(server_child.read_text()))  # the server's own child too


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_everything_and_leaves_no_process(run_dir, port, sig):
    """A real supervisor process (as `run --headless`) gets Ctrl-C / SIGTERM mid-training."""
    server_child, trainer_child = run_dir / "s.pid", run_dir / "t.pid"
    opts = {"server_args": ["--spawn-child", str(server_child), "--ignore-term"],
            "trainer_args": ["--steps", "1000", "--spawn-child", str(trainer_child)], "grace": 1.0}
    p = subprocess.Popen([sys.executable, str(FAKES / "stages.py"), str(run_dir), str(port), json.dumps(opts)],
                         start_new_session=True)
    try:
        wait_for(lambda: len(read_jsonl(run_dir / "metrics.jsonl")[0]) >= 3, timeout=30)
        assert is_running(run_dir)
        state = rundir.read_state(run_dir)
        pids = [state["stages"]["server"]["pid"], state["stages"]["train"]["pid"],
                int(server_child.read_text()), int(trainer_child.read_text())]
        assert all(procs.pid_alive(x) for x in pids)
        os.kill(p.pid, sig)
        assert p.wait(timeout=20) == 128 + sig
    finally:
        if p.poll() is None:
            p.kill()
    assert not any(procs.pid_alive(x) for x in pids), [x for x in pids if procs.pid_alive(x)]
    assert port_free(port)
    state = rundir.read_state(run_dir)
    assert state["status"] == "stopped" and not is_running(run_dir)
    assert events(run_dir)[-1]["event"] == "run_stopped"


def test_a_killed_supervisor_takes_every_stage_process_along(run_dir, port):
    """kill -9 of the supervisor: its watchdog stops every stage group, grandchildren included, even
    processes that ignore SIGTERM, without `stop`; `stop_run` then only records the run as stopped."""
    server_child, trainer_child = run_dir / "s.pid", run_dir / "t.pid"
    opts = {"server_args": ["--ignore-term", "--spawn-child", str(server_child)],  # the child ignores it too
            "trainer_args": ["--steps", "1000", "--spawn-child", str(trainer_child)], "grace": 1.0}
    p = subprocess.Popen([sys.executable, str(FAKES / "stages.py"), str(run_dir), str(port), json.dumps(opts)],
                         start_new_session=True)
    groups = []
    try:
        wait_for(lambda: len(read_jsonl(run_dir / "metrics.jsonl")[0]) >= 2, timeout=30)
        assert is_running(run_dir)
        state = rundir.read_state(run_dir)
        groups = [state["stages"]["server"]["pgid"], state["stages"]["train"]["pgid"]]
        pids = [state["stages"]["server"]["pid"], state["stages"]["train"]["pid"],
                int(server_child.read_text()), int(trainer_child.read_text())]
        assert all(procs.pid_alive(x) for x in pids)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        assert not is_running(run_dir)
        wait_for(lambda: not any(procs.group_members(g) for g in groups), timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
        for g in groups:
            procs.signal_group(g, signal.SIGKILL)
    assert not any(procs.pid_alive(x) for x in pids)
    assert port_free(port)
    assert stop_run(run_dir, grace=1.0) is False  # nothing left to stop; the run is marked stopped
    assert rundir.read_state(run_dir)["status"] == "stopped"
    assert events(run_dir)[-1]["event"] == "run_stopped"


def _files_writer(storage):
    """A stage that writes what a server leaves behind when requests time out or are cancelled."""
    from speculators_core.plan.stages import Stage

    code = (f"import pathlib; d = pathlib.Path({str(storage)!r}); (d / 'sub').mkdir();"
            f"(d / 'sub' / 'cmpl-0123456789abcdef.safetensors').write_bytes(b'k');"
            f"(d / 'cmpl-0123456789abcdef0123456789abcdef.safetensors').write_bytes(b'y' * 10);"
            f"(d / 'cmpl-0123456789abcdef-0-01234567.safetensors.lock').touch();"
            f"(d / 'hs_3.safetensors').write_bytes(b'c'); (d / 'notes.txt').write_text('keep')")
    return Stage("generate", [sys.executable, "-c", code], needs_server=True, log="generate.log",
                 description="leaves server files behind")


def _storage_with_an_old_file(run_dir):
    storage = Path(rundir.load_config(run_dir).storage_dir)
    storage.mkdir(parents=True)
    old = storage / "before.safetensors"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    return storage


def _left(storage):
    return sorted(p.relative_to(storage).as_posix() for p in storage.rglob("*") if p.is_file())


def test_server_files_no_request_took_are_deleted_after_the_run(run_dir, port):
    storage = _storage_with_an_old_file(run_dir)
    stages = fake_stages(run_dir, port, trainer_args=["--steps", "1"], with_generate=True)
    stages[2] = _files_writer(storage)
    assert sup(run_dir, stages).run() == 0
    # this run's request files are gone; files from before the server started, cache files, others and
    # anything in a subdirectory (e.g. a checkpoint directory) stay
    assert _left(storage) == ["before.safetensors", "hs_3.safetensors", "notes.txt",
                              "sub/cmpl-0123456789abcdef.safetensors"]
    swept = [e for e in events(run_dir) if e["event"] == "scratch_swept"]
    assert len(swept) == 1 and swept[0]["files"] == 2 and swept[0]["bytes"] == 10
    assert events(run_dir)[-1]["event"] == "run_finished"  # still the last word


def test_server_files_are_kept_while_another_live_run_shares_the_directory(run_dir, port):
    storage = _storage_with_an_old_file(run_dir)
    other = rundir.create_run_dir(rundir.load_config(run_dir), source="test")
    rundir.write_state(other, {"status": "running", "pid": os.getpid(), "pid_start": procs.start_ticks(os.getpid())})
    assert is_running(other)
    stages = fake_stages(run_dir, port, trainer_args=["--steps", "1"], with_generate=True)
    stages[2] = _files_writer(storage)
    assert sup(run_dir, stages).run() == 0
    assert "cmpl-0123456789abcdef0123456789abcdef.safetensors" in _left(storage)
    kept = [e for e in events(run_dir) if e["event"] == "scratch_kept"]
    assert len(kept) == 1 and other.name in kept[0]["message"]


def _watchdogs() -> list[int]:
    """Watchdog processes this test process started (children: PPID = us)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
            ppid = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"speculators_core.procs" in cmd and b"watchdog" in cmd:
            out.append(int(name))
    return out


def test_the_watchdog_exits_when_the_run_ends_normally(run_dir, port):
    s = sup(run_dir, fake_stages(run_dir, port, trainer_args=["--steps", "2"]))
    seen = []
    t = threading.Thread(target=lambda: seen.append(wait_for(_watchdogs, timeout=20)))
    t.start()
    assert s.run() == 0
    t.join()
    assert seen and seen[0]  # it ran during the run
    assert not _watchdogs()  # and is gone (reaped) once the run is over
