"""Waiting for a hidden-states server: GET /health until it answers 200, the server dies, or time runs out.

`python -m speculators_core.wait_health` (exported scripts) and the supervisor use these functions.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from typing import Optional

from speculators_core.errors import ExitCode


def is_healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback URL from our config
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _running(pid: int) -> bool:
    """`pid` exists and is not a zombie (a dead server the shell has not reaped yet)."""
    if not os.path.exists("/proc/self/stat"):  # no procfs: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def wait(url: str, timeout: float, pid: Optional[int] = None, interval: float = 1.0) -> int:
    """ExitCode.OK when healthy, FAILED on timeout, PROCESS_DIED when `pid` exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_healthy(url):
            return ExitCode.OK
        if pid is not None and not _running(pid):
            return ExitCode.PROCESS_DIED
        time.sleep(interval)
    return ExitCode.FAILED


def wait_or_raise(url: str, proc, timeout: float, log=None, interval: float = 0.2) -> None:
    """Wait for `url` (served by the child `proc`); RuntimeError with the end of `log` if it dies or times out."""
    rc = wait(url, timeout, proc.pid, interval=interval)
    if rc == ExitCode.OK:
        return
    proc.poll()
    tail = log.read_text(errors="replace")[-4000:] if log is not None and log.exists() else ""
    if rc == ExitCode.PROCESS_DIED:
        raise RuntimeError(f"server exited with {proc.returncode} before {url} was healthy:\n{tail}")
    raise RuntimeError(f"{url} not healthy after {timeout} s:\n{tail}")
