"""The supervisor's child processes: spawn a stage in its own process group with its log, stop groups."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from typing import Mapping, Optional

from speculators_core import procs
from speculators_core.errors import SpeculatorsError
from speculators_core.plan.stages import Stage


class MissingEnvironment(SpeculatorsError, RuntimeError):
    """A stage takes a value (an API key, a token) from a variable the run's environment lacks."""


def stage_environ(stage: Stage, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of `stage`: `environ`, its `env`, and its `env_from` references resolved from
    `environ` (the value exists only in the child's environment). MissingEnvironment when one is unset."""
    missing = sorted({name for name in stage.env_from.values() if not environ.get(name)})
    if missing:
        needs = ", ".join(f"{k} (from ${n})" for k, n in stage.env_from.items() if n in missing)
        raise MissingEnvironment(
            f"stage {stage.name} needs {needs}, but {', '.join(missing)} is not set in the run's environment. "
            f"Fix: export {missing[0]}=... (the key or token) in the shell that starts the run (a detached "
            f"run inherits it), then start the run again")
    from speculators_core.hidden_states.client import api_key_problem

    for var, name in stage.env_from.items():
        problem = api_key_problem(name, environ.get(name)) if var == "VLLM_API_KEY" else None
        if problem:  # vLLM compares the key as it is: every client request would get a 401
            raise MissingEnvironment(f"stage {stage.name} needs VLLM_API_KEY (from ${name}), but {problem[0]}. "
                                     f"Fix: {problem[1]}, then start the run again")
    env = dict(environ)
    env.update(stage.env)
    env.update({k: environ[n] for k, n in stage.env_from.items()})
    return env


class _Child:
    def __init__(self, stage: Stage, proc: subprocess.Popen, log_fh):
        self.stage, self.proc, self.log_fh = stage, proc, log_fh
        self.ticks = procs.start_ticks(proc.pid)
        #: Called once the log is closed (the supervisor unregisters the group from its watchdog).
        self.on_close = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def close(self) -> None:
        try:
            self.log_fh.close()
        except OSError:
            pass
        if self.on_close is not None:
            self.on_close(self)
            self.on_close = None


class ChildrenMixin:
    """Supervisor methods that start and stop child process groups (`self._children`)."""

    def _spawn(self, stage: Stage, note: str = "") -> _Child:
        log_path = self.run_dir / (stage.log or f"{stage.name}.log")
        fh = open(log_path, "ab")
        header = f"\n===== {stage.name}{note} {time.strftime('%Y-%m-%d %H:%M:%S')}: {stage.shell()}\n"
        fh.write(header.encode())
        fh.flush()
        try:
            env = stage_environ(stage, self.environ)
        except MissingEnvironment as exc:
            fh.write(f"{exc}\n".encode())
            fh.close()
            self._fail_stage(stage, str(exc), returncode=None)
            raise
        env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            proc = procs.spawn(stage.argv, env, fh, cwd=stage.cwd,
                               die_with_parent=threading.current_thread() is threading.main_thread())
        except OSError:
            fh.close()
            raise
        child = _Child(stage, proc, fh)
        watchdog = getattr(self, "_watchdog", None)
        if watchdog is not None:  # kills the whole group should this process die, however
            watchdog.add(proc.pid)
            child.on_close = self._forget_group
        self._children[stage.name] = child
        st = self._stage_state(stage.name)
        st.update(status="running", pid=proc.pid, pgid=proc.pid, pid_start=child.ticks,
                  started=st.get("started") or time.time(), finished=None, returncode=None)
        self._save()
        return child

    def _forget_group(self, child: _Child) -> None:
        """A reaped stage whose group is empty needs no watching (and its pgid may be reused).
        A group with processes left (orphaned grandchildren) stays watched until the run ends."""
        if self._watchdog is not None and not procs.group_alive(child.pid):
            self._watchdog.remove(child.pid)

    def _stop_children(self, names: Optional[list[str]] = None) -> None:
        """SIGTERM every (named) child group at once, SIGKILL what is left after the grace period."""
        targets = [self._children[n] for n in (names or list(self._children)) if n in self._children]
        for c in targets:
            procs.signal_group(c.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline and not self._force and any(procs.group_alive(c.pid) for c in targets):
            for c in targets:
                c.proc.poll()
            time.sleep(0.05)
        for c in targets:
            if procs.group_alive(c.pid):
                procs.stop_group(c.pid, grace=0.0, proc=c.proc)
            try:
                c.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not fail
                pass
            c.close()
            self._children.pop(c.stage.name, None)
            st = self._stage_state(c.stage.name)
            st.update(returncode=c.proc.returncode, finished=time.time())
