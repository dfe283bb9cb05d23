"""The hidden-states server's lifecycle in a run: start, /health, restart with backoff, hung detection."""

from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Optional

from speculators_core.plan.stages import Stage, endpoint_url
from speculators_core.runs import rundir
from speculators_core.runs.children import _Child

TAIL_ON_FAILURE = 20


def port_in_use(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=1.0):
            return True
    except OSError:
        return False


def http_get(url: str, timeout: float = 2.0) -> Optional[str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback URL from our config
            if resp.status != 200:
                return None
            return resp.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None


class ServerMixin:
    """Supervisor methods for the server stage."""

    # ---------------------------------------------------------------- server
    def _health_url(self, server: Stage) -> str:
        return server.health_url or endpoint_url(self.cfg).rsplit("/v1", 1)[0] + "/health"

    def _wait_healthy(self, child: _Child, timeout: float, watch: Optional[_Child] = None) -> str:
        """'ok' | 'exited' (server died) | 'timeout' | 'task_exited' (the watched task ended)."""
        from speculators_core.serving.health import is_healthy

        url = self._health_url(child.stage)
        deadline = time.monotonic() + timeout
        while True:
            self._check_stop()
            if child.proc.poll() is not None:
                return "exited"
            if is_healthy(url, timeout=2.0):
                return "ok"
            if watch is not None and watch.proc.poll() is not None:
                return "task_exited"
            if time.monotonic() > deadline:
                return "timeout"
            time.sleep(min(0.5, max(self.poll_interval, 0.05)))

    def _server_failure(self, child: _Child, why: str) -> str:
        log = self.run_dir / (child.stage.log or "server.log")
        tail = rundir.tail_lines(log, TAIL_ON_FAILURE)
        return f"{why}; last lines of {log.name}:\n" + "\n".join(tail)

    def _start_server(self, server: Stage) -> bool:
        url = self._health_url(server)
        if port_in_use(url):
            msg = (f"{url} is already in use by another process (another run's server?); stop it or set "
                   f"hidden_states.port to a free port")
            self._fail_stage(server, msg, returncode=None)
            return False
        os.makedirs(self.cfg.storage_dir, exist_ok=True)
        if self._server_since is None:
            self._server_since = time.time()
        self.state["stage"] = server.name
        self._event("stage_started", server.description, stage=server.name)
        t0 = time.monotonic()
        child = self._spawn(server)
        self.state["server_url"] = endpoint_url(self.cfg)
        self._save()
        timeout = float(self.cfg.hidden_states.start_timeout)
        result = self._wait_healthy(child, timeout)
        if result != "ok":
            rc = child.proc.poll()
            why = (f"the server exited with code {rc} before answering {url}" if result == "exited"
                   else f"the server did not answer {url} within {timeout:.0f}s (hidden_states.start_timeout)")
            msg = self._server_failure(child, why)
            self._stop_children([server.name])
            self._fail_stage(server, msg, returncode=rc)
            return False
        self._event("server_healthy", f"server healthy at {url} after {time.monotonic() - t0:.1f}s",
                    stage=server.name, url=url, seconds=round(time.monotonic() - t0, 2))
        return True

    def _restart_server(self, server: Stage, task: _Child) -> str:
        """The server died while `task` needs it: restart with backoff. 'ok' | 'failed' | 'task_exited'."""
        dead = self._children.pop(server.name)
        rc = dead.proc.wait()
        dead.close()
        while True:
            if self._restarts >= self.max_restarts:
                msg = self._server_failure(dead, f"the server exited with code {rc} and was already restarted "
                                                 f"{self._restarts} time(s) (the limit)")
                self._fail_stage(server, msg, returncode=rc)
                return "failed"
            self._restarts += 1
            delay = self.restart_backoff * (2 ** (self._restarts - 1))
            self._event("warning", f"the server exited with code {rc}; restarting in {delay:.0f}s "
                                   f"(attempt {self._restarts}/{self.max_restarts})",
                        stage=server.name, kind="server_crash", returncode=rc)
            end = time.monotonic() + delay
            while time.monotonic() < end:
                self._check_stop()
                if task.proc.poll() is not None:
                    return "task_exited"
                time.sleep(min(self.poll_interval, max(0.0, end - time.monotonic())))
            st = self._stage_state(server.name)
            st["restarts"] = self._restarts
            child = self._spawn(server, note=f" (restart {self._restarts})")
            result = self._wait_healthy(child, float(self.cfg.hidden_states.start_timeout), watch=task)
            if result == "ok":
                self._event("server_restarted", f"the server is back after exit code {rc} "
                                                f"(restart {self._restarts}/{self.max_restarts})",
                            stage=server.name, restarts=self._restarts, returncode=rc)
                return "ok"
            if result == "task_exited":
                return "task_exited"
            dead = self._children.pop(server.name)
            if dead.proc.poll() is None:
                self._children[server.name] = dead
                self._stop_children([server.name])
            rc = dead.proc.wait()
            dead.close()

    def _server_hung(self, server: Stage) -> bool:
        """True once a running server has failed every /health check for `hang_timeout` seconds."""
        from speculators_core.serving.health import is_healthy

        now = time.monotonic()
        if now < self._next_health:
            return False
        self._next_health = now + self.health_interval
        if is_healthy(self._health_url(server), timeout=min(5.0, self.health_interval + 1.0)):
            self._unhealthy_since = None
            return False
        if self._unhealthy_since is None:
            self._unhealthy_since = now
        if now - self._unhealthy_since >= self.hang_timeout:
            self._unhealthy_since = None
            return True
        return False
