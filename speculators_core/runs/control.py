"""Runs seen from outside: start one detached, tell whether it is running, stop it."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Optional

from speculators_core import procs
from speculators_core.runs import layout, rundir


def start_detached(cfg, source: Optional[str] = None, parent: Optional[str] = None,
                   wait: float = 15.0) -> Path:
    """Create a run directory and run its supervisor in a new session (it survives the caller).

    Returns the run directory once the supervisor has recorded itself in state.json.
    """
    run_dir = rundir.create_run_dir(cfg, source, parent)
    log = open(run_dir / layout.SUPERVISOR_LOG, "ab")
    try:
        proc = procs.spawn([sys.executable, "-m", "speculators_core.runs.supervisor", str(run_dir)],
                           os.environ, log, cwd=os.getcwd())
    finally:
        log.close()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if rundir.read_state(run_dir).get("pid") == proc.pid:
            break
        if proc.poll() is not None:
            tail = "\n".join(rundir.tail_lines(run_dir / layout.SUPERVISOR_LOG, 20))
            raise RuntimeError(f"the supervisor of {run_dir} exited with code {proc.returncode}:\n{tail}")
        time.sleep(0.05)
    return run_dir


def is_running(run_dir) -> bool:
    """True while the run's supervisor process is alive (PID reuse is told apart by start time)."""
    st = rundir.read_state(run_dir)
    if st.get("status") not in layout.RUN_ACTIVE:
        return False
    return procs.pid_alive(st.get("pid"), st.get("pid_start"))


def supervisor_gone(st: dict) -> bool:
    """True when `st` (a run's state.json) calls the run active and names a supervisor on this host
    that no longer runs (killed with SIGKILL, out of memory, the machine restarted). A run not
    started yet (no pid) or supervised on another host is never judged from here."""
    if st.get("status") not in layout.RUN_ACTIVE or not st.get("pid"):
        return False
    if st.get("host") and st["host"] != socket.gethostname():
        return False
    return not procs.pid_alive(st.get("pid"), st.get("pid_start"))


def _live_child_groups(st: dict) -> list[int]:
    out = []
    for s in (st.get("stages") or {}).values():
        pid = s.get("pgid") or s.get("pid")
        if not pid:
            continue
        if procs.pid_alive(pid, s.get("pid_start")) or (not procs.pid_alive(pid) and procs.group_alive(pid)):
            out.append(int(pid))
    return out


def stop_run(run_dir, grace: float = 15.0) -> bool:
    """Stop a run: SIGTERM its supervisor (which stops its children within its own grace period);
    if the supervisor does not exit within `grace` + 15 s, or is gone already, stop the recorded
    child process groups directly. Returns True if anything was running."""
    run_dir = Path(run_dir)
    st = rundir.read_state(run_dir)
    pid, ticks = st.get("pid"), st.get("pid_start")
    found = False
    if pid and procs.pid_alive(pid, ticks) and pid != os.getpid():
        found = True
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace + 15.0
        while time.monotonic() < deadline and procs.pid_alive(pid, ticks):
            time.sleep(0.1)
        if procs.pid_alive(pid, ticks):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    st = rundir.read_state(run_dir)
    groups = _live_child_groups(st)
    for g in groups:
        found = True
        procs.signal_group(g, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while groups and time.monotonic() < deadline and any(procs.group_alive(g) for g in groups):
        time.sleep(0.1)
    for g in groups:
        if procs.group_alive(g):
            procs.signal_group(g, signal.SIGKILL)
    if st.get("status") in layout.RUN_ACTIVE and not procs.pid_alive(pid, ticks):
        layout.mark_interrupted(st, "stopped")
        rundir.write_state(run_dir, st)
        rundir.append_event(run_dir, "run_stopped", "stopped by `stop` (the supervisor was gone or did not exit)")
    return found
