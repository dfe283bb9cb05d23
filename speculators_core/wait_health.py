"""Wait until servers answer GET /health with 200 (used by exported scripts and the supervisor).

    python -m speculators_core.wait_health http://127.0.0.1:8000/health [URL ...] --timeout 900 [--pid PID]

Several URLs (one hidden-states server per serving node) are waited on together, within one timeout.
Exits 0 when every one is healthy, 1 on timeout, 2 when the watched process died first
(`errors.ExitCode`). The functions live in `speculators_core.serving.health`.
"""

from __future__ import annotations

import sys
import time

from speculators_core.errors import ExitCode
from speculators_core.serving.health import wait


def main(argv: list[str] | None = None) -> int:
    from speculators_core.plan.flags import wait_health_parser

    a = wait_health_parser().parse_args(argv)
    deadline = time.monotonic() + a.timeout
    for url in a.url:
        rc = wait(url, max(0.0, deadline - time.monotonic()), a.pid)
        if rc == ExitCode.FAILED:
            print(f"error: {url} not healthy after {a.timeout:.0f}s", file=sys.stderr)
        elif rc == ExitCode.PROCESS_DIED:
            print(f"error: the server process {a.pid} exited before {url} became healthy; see its log",
                  file=sys.stderr)
        if rc != ExitCode.OK:
            return int(rc)
        if len(a.url) > 1:
            print(f"{url}: healthy", flush=True)
    return int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
