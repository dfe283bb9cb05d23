"""Wait until a server answers GET /health with 200 (used by exported scripts and the supervisor).

    python -m speculators_core.wait_health http://127.0.0.1:8000/health --timeout 900 [--pid PID]

Exits 0 when healthy, 1 on timeout, 2 when the watched process died first.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request

from speculators_core.procs import pid_alive


def is_healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback URL from our config
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait(url: str, timeout: float, pid: int | None = None, interval: float = 1.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_healthy(url):
            return 0
        if pid is not None and not pid_alive(pid):
            return 2
        time.sleep(interval)
    return 1


def wait_or_raise(url: str, proc, timeout: float, log=None, interval: float = 0.2) -> None:
    """Wait for `url` (served by the child `proc`); RuntimeError with the end of `log` if it dies or times out."""
    rc = wait(url, timeout, proc.pid, interval=interval)
    if rc == 0:
        return
    proc.poll()
    tail = log.read_text(errors="replace")[-4000:] if log is not None and log.exists() else ""
    if rc == 2:
        raise RuntimeError(f"server exited with {proc.returncode} before {url} was healthy:\n{tail}")
    raise RuntimeError(f"{url} not healthy after {timeout} s:\n{tail}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m speculators_core.wait_health", description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--pid", type=int, default=None, help="fail early when this process exits")
    a = p.parse_args(argv)
    rc = wait(a.url, a.timeout, a.pid)
    if rc == 1:
        print(f"error: {a.url} not healthy after {a.timeout:.0f}s", file=sys.stderr)
    elif rc == 2:
        print(f"error: the server process {a.pid} exited before {a.url} became healthy; see its log", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
