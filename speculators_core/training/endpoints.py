"""Warnings when a hidden-states server goes down (or comes back) while training continues on the others.

The client balances requests over every `--vllm-endpoint` and retries a failed one on another, so a
serving node that dies only slows training down while another is up. `EndpointWatch` turns each
rank's view of its endpoints into flags summed over ranks (in the same collective as the step's
hidden-states statistics), and rank 0 writes one `warning` record per change to metrics.jsonl.
"""

from __future__ import annotations

from typing import Callable, Optional


class EndpointWatch:
    def __init__(self, client, write: Callable[..., object], log: Callable[[str], None]) -> None:
        self.client, self.write, self.log = client, write, log
        status = client.endpoint_status() if client is not None and hasattr(client, "endpoint_status") else []
        self.urls = [u for u, _, _ in status]
        self.down: set[int] = set()

    def flags(self) -> list[float]:
        """1.0 for each endpoint this rank finds unreachable now, else 0.0 (same length on every rank)."""
        if not self.urls:
            return []
        return [0.0 if up else 1.0 for _, up, _ in self.client.endpoint_status()]

    def errors(self) -> list[str]:
        return [err for _, _, err in self.client.endpoint_status()] if self.urls else []

    def update(self, summed: list[float], step: int, epoch: int, is_main: bool) -> None:
        """`summed`: the flags summed over ranks; writes a warning per endpoint that went down or came back."""
        now = {i for i, v in enumerate(summed) if v > 0}
        if is_main:
            errors = self.errors()
            for i in sorted(now - self.down):
                up = [u for j, u in enumerate(self.urls) if j not in now]
                msg = (f"hidden-states server {self.urls[i]} is unreachable ({errors[i] or 'no answer'}); "
                       + (f"training continues on {', '.join(up)}" if up else
                          "no other server is up: training waits for one (--server-grace-period) and then stops"))
                self.write("warning", step=step, epoch=epoch, endpoint=self.urls[i], up_endpoints=up,
                           message=msg)
                self.log(f"warning: {msg}")
            for i in sorted(self.down - now):
                msg = f"hidden-states server {self.urls[i]} is reachable again"
                self.write("warning", step=step, epoch=epoch, endpoint=self.urls[i],
                           up_endpoints=[u for j, u in enumerate(self.urls) if j not in now], message=msg)
                self.log(msg)
        self.down = now


def watch_for(client, metrics, log) -> Optional[EndpointWatch]:
    return EndpointWatch(client, metrics.write, log) if client is not None else None
