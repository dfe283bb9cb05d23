"""Process-group helpers: start a child in its own session, stop a whole group, check liveness.

Every stage runs in its own session (so its own process group, pgid == pid): a terminal's Ctrl-C
reaches only the supervisor, which then stops each group itself, and killing a group also reaches
the grandchildren a stage starts (torchrun workers, vLLM engine cores).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import IO, Mapping, Optional, Sequence


def _die_with_parent_hook():
    """A preexec hook: the child gets SIGTERM when the process that started it dies (Linux), so a
    supervisor killed with SIGKILL (OOM killer, kill -9) does not leave its stages running. The libc
    function is looked up here, before fork; the child only makes the one system call."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    sigterm = int(signal.SIGTERM)

    def hook() -> None:
        prctl(pr_set_pdeathsig, sigterm, 0, 0, 0)

    return hook


def spawn(argv: Sequence[str], env: Mapping[str, str], log: IO[bytes] | int | None = None,
          cwd: Optional[str] = None, die_with_parent: bool = False) -> subprocess.Popen:
    """Start `argv` (never through a shell) in a new session with stdout+stderr into `log`.

    die_with_parent: SIGTERM the child when this process dies (stages; never a detached supervisor).
    Spawn from a thread that lives as long as the process: Linux ties this to the forking thread.
    """
    return subprocess.Popen(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log if log is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        close_fds=True,
        preexec_fn=_die_with_parent_hook() if die_with_parent else None,
    )


def start_ticks(pid: int) -> Optional[int]:
    """The process's start time in clock ticks since boot (tells a reused PID apart), None if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == "Z":  # a zombie is as good as dead
        return None
    return int(fields[19])


def pid_alive(pid: Optional[int], ticks: Optional[int] = None) -> bool:
    """True if `pid` runs (and, when `ticks` is given, is the same process that was recorded)."""
    if not pid or pid <= 0:
        return False
    now = start_ticks(pid)
    if now is None:
        if not os.path.exists("/proc/self/stat"):  # no procfs: ask the kernel directly
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        return False
    return ticks is None or now == ticks


def group_members(pgid: int) -> list[int]:
    """PIDs of live (non-zombie) processes whose process group is `pgid` (Linux /proc scan)."""
    out: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(name))
    return out


def group_alive(pgid: Optional[int]) -> bool:
    if not pgid or pgid <= 0:
        return False
    if os.path.exists("/proc/self/stat"):
        return bool(group_members(pgid))
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def stop_group(pgid: int, grace: float = 15.0, proc: Optional[subprocess.Popen] = None,
               poll: float = 0.1) -> Optional[int]:
    """SIGTERM the group, wait up to `grace` s for all of it to exit, then SIGKILL what is left.

    `proc` (the group leader we started) is reaped so it leaves no zombie. Returns its exit code
    when known.
    """
    signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()
        if not group_alive(pgid):
            break
        time.sleep(poll)
    else:
        signal_group(pgid, signal.SIGKILL)
        kill_deadline = time.monotonic() + 5.0
        while group_alive(pgid) and time.monotonic() < kill_deadline:
            if proc is not None:
                proc.poll()
            time.sleep(poll)
    if proc is not None:
        try:
            return proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            return None
    return None
