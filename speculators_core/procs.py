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


# ------------------------------------------------------------------------------ group watchdog
# The parent-death signal reaches only a stage's first process: torchrun's workers, the vLLM API
# server's engine cores, prepare's workers are its children and may ignore SIGTERM. The watchdog is
# a separate process (its own session, in no stage's group) holding the read end of a pipe whose
# write end only the supervisor holds. The supervisor writes "+PGID" when it starts a stage group,
# "-PGID" when it has reaped it and "done" when the run is over. EOF without "done" means the
# supervisor died, however: the watchdog then SIGTERMs every group still registered, SIGKILLs what
# is left after the grace period, and exits.

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class GroupWatchdog:
    """The supervisor's end of the watchdog (`start()`, `add(pgid)`, `remove(pgid)`, `close()`)."""

    def __init__(self, grace: float = 15.0):
        self.grace = grace
        self.proc: Optional[subprocess.Popen] = None
        self._fd: Optional[int] = None

    def start(self) -> "GroupWatchdog":
        r, w = os.pipe()  # both non-inheritable: no stage ever holds the write end
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "speculators_core.procs", "watchdog", str(r), str(self.grace)],
                env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                    x for x in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if x)),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, close_fds=True, pass_fds=(r,))
        except OSError:
            os.close(w)
            raise
        finally:
            os.close(r)
        self._fd = w
        return self

    def _send(self, line: str) -> None:
        if self._fd is None:
            return
        try:
            os.write(self._fd, (line + "\n").encode("ascii"))
        except OSError:  # the watchdog is gone: nothing to tell
            pass

    def add(self, pgid: int) -> None:
        self._send(f"+{int(pgid)}")

    def remove(self, pgid: int) -> None:
        self._send(f"-{int(pgid)}")

    def close(self) -> None:
        """The run is over (its groups are stopped): the watchdog exits without killing anything."""
        if self._fd is None:
            return
        self._send("done")
        os.close(self._fd)
        self._fd = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:  # pragma: no cover - it exits on "done" at once
                self.proc.kill()
                self.proc.wait()


def _watch(fd: int, grace: float) -> int:
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):  # only the pipe ends the watch
        signal.signal(sig, signal.SIG_IGN)
    groups: set[int] = set()
    buf = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            text = line.decode("ascii", "replace").strip()
            if text == "done":
                return 0
            if text[:1] in "+-" and text[1:].isdigit():
                (groups.add if text[0] == "+" else groups.discard)(int(text[1:]))
    # EOF without "done": the supervisor died. Stop every group it had running.
    live = [g for g in groups if group_alive(g)]
    for g in live:
        signal_group(g, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while live and time.monotonic() < deadline:
        live = [g for g in live if group_alive(g)]
        time.sleep(0.1)
    for g in live:
        signal_group(g, signal.SIGKILL)
    return 0


if __name__ == "__main__":  # python -m speculators_core.procs watchdog FD GRACE
    if len(sys.argv) != 4 or sys.argv[1] != "watchdog":
        sys.exit("usage: python -m speculators_core.procs watchdog FD GRACE")
    sys.exit(_watch(int(sys.argv[2]), float(sys.argv[3])))
