"""Wait until a server answers GET /health with 200 (used by exported scripts and the supervisor).

    python -m speculators_core.wait_health http://127.0.0.1:8000/health --timeout 900 [--pid PID]

Exits 0 when healthy, 1 on timeout, 2 when the watched process died first (`errors.ExitCode`).
The functions live in `speculators_core.serving.health`.
"""

from __future__ import annotations

import argparse
import sys

from speculators_core.errors import ExitCode
from speculators_core.serving.health import wait


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m speculators_core.wait_health", description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--pid", type=int, default=None, help="fail early when this process exits")
    a = p.parse_args(argv)
    rc = wait(a.url, a.timeout, a.pid)
    if rc == ExitCode.FAILED:
        print(f"error: {a.url} not healthy after {a.timeout:.0f}s", file=sys.stderr)
    elif rc == ExitCode.PROCESS_DIED:
        print(f"error: the server process {a.pid} exited before {a.url} became healthy; see its log", file=sys.stderr)
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
