"""The run supervisor: runs the stages a run directory records (`stages.json`) as child processes.

    python -m speculators_core.runs.supervisor RUN_DIR      # what `start_detached` spawns

Each stage runs in its own session/process group with the config's environment and its output in
the run directory's log file. A stage whose outputs are complete is skipped. The hidden-states server
is started before the first stage that needs it, must answer /health within
`hidden_states.start_timeout` seconds, is restarted (bounded, with backoff) if it dies while a stage
needs it, and is stopped after the last such stage. On SIGINT/SIGTERM every child group gets SIGTERM,
then SIGKILL after a grace period; nothing is left behind. Should this process die without doing
that (kill -9, the OOM killer), a watchdog process (`procs.GroupWatchdog`) stops every stage group
in the same way, grandchildren included. Progress goes to `state.json` (atomic) and
`events.jsonl`; GPU samples to `gpu.jsonl`; bottleneck warnings (see `bottleneck.py`) to events.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Mapping, Optional

from speculators_core import procs
from speculators_core.plan.stages import Stage
from speculators_core.runs import index, layout, rundir
from speculators_core.runs.children import ChildrenMixin, _Child
from speculators_core.runs.epoch_eval import EpochEvalMixin
from speculators_core.runs.monitor import MonitorMixin
from speculators_core.runs.reader import RunReader
from speculators_core.runs.server import TAIL_ON_FAILURE, ServerMixin
from speculators_core.runs.sweep import sweep_scratch


class StopRequested(Exception):
    """SIGINT/SIGTERM arrived: unwind and stop every child."""


def stage_done(stage: Stage) -> Optional[str]:
    """Why `stage` need not run (its `skip_if` rule holds: its outputs are complete), or None to run it."""
    argv = stage.argv
    try:
        if stage.skip_if == "model_built" and "--model-dir" in argv:
            from speculators_core.builtin import is_built

            model_dir = Path(argv[argv.index("--model-dir") + 1])
            if is_built(model_dir):
                return f"the demo target is already built in {model_dir}"
        elif stage.skip_if == "prepared" and stage.module == "speculators_core.prepare":
            try:
                from speculators_core.prepare import is_prepared
            except ImportError:
                return None
            from speculators_core.plan.flags import prepare_parser

            args = prepare_parser().parse_args(stage.stage_argv())
            if is_prepared(args):
                return f"the prepared dataset in {args.output} matches these inputs"
        elif stage.skip_if == "evaluated" and stage.module == "speculators_core.evaluate":
            from speculators_core.runs.epoch_eval import already_evaluated

            return already_evaluated(stage)
    except (Exception, SystemExit):
        return None
    return None


class Supervisor(ChildrenMixin, ServerMixin, MonitorMixin, EpochEvalMixin):
    """Runs one run directory in the foreground (in this process). `run()` returns the exit code."""

    def __init__(self, run_dir: Path, environ: Optional[Mapping[str, str]] = None, *,
                 stages: Optional[list[Stage]] = None,
                 skip_check: Callable[[Stage], Optional[str]] = stage_done,
                 grace: float = 15.0, max_restarts: int = 3, restart_backoff: float = 2.0,
                 poll_interval: float = 0.2, bottleneck_interval: float = 10.0,
                 warning_cooldown: float = 300.0, gpu_interval: float = 2.0, probe=None,
                 hang_timeout: float = 180.0, health_interval: float = 5.0):
        self.run_dir = Path(run_dir).resolve()
        self.environ = dict(os.environ if environ is None else environ)
        self.cfg = rundir.load_config(self.run_dir)
        #: The recorded plan (stages.json, what run.sh shows); `stages` replaces it only in tests.
        self.stages = rundir.read_stages(self.run_dir) if stages is None else stages
        self.skip_check = skip_check
        self.grace = grace
        self.max_restarts = max_restarts
        self.restart_backoff = restart_backoff
        self.poll_interval = poll_interval
        self.bottleneck_interval = bottleneck_interval
        self.warning_cooldown = warning_cooldown
        self.gpu_interval = gpu_interval
        #: A live server that fails /health this long while a stage needs it is restarted.
        self.hang_timeout = hang_timeout
        self.health_interval = health_interval
        self._next_health = 0.0
        self._unhealthy_since: Optional[float] = None
        self._probe = probe
        self._stop_signal: Optional[int] = None
        self._force = False
        self._children: dict[str, _Child] = {}
        #: Kills every stage group if this process dies without stopping them (procs.GroupWatchdog).
        self._watchdog: Optional[procs.GroupWatchdog] = None
        self._restarts = 0
        self._server_since: Optional[float] = None  # when this run first started its server
        self._sampler = None
        self._gpus: list = []
        self._last_warning: dict[str, float] = {}
        self._metrics = RunReader(self.run_dir)
        self._metrics_records: list[dict] = []
        self._last_tokens: Optional[tuple[float, float]] = None
        self._next_check = 0.0
        self.state = rundir.read_state(self.run_dir)

    # ---------------------------------------------------------------- state and events
    def _save(self) -> None:
        rundir.write_state(self.run_dir, self.state)

    def _stage_state(self, name: str) -> dict:
        st = self.state.setdefault("stages", {}).setdefault(name, {})
        for k, v in layout.new_stage_state().items():
            st.setdefault(k, v)
        return st

    def _event(self, event: str, message: str = "", **fields) -> None:
        rundir.append_event(self.run_dir, event, message, **fields)

    # ---------------------------------------------------------------- signals
    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        # Only set flags: the loops notice within a poll interval, so no half-done spawn or write.
        if self._stop_signal is None:
            self._stop_signal = signum
        else:  # a second Ctrl-C: do not wait out the grace period
            self._force = True

    def _check_stop(self) -> None:
        if self._stop_signal is not None:
            raise StopRequested()

    # ---------------------------------------------------------------- processes
    # ---------------------------------------------------------------- stages
    def _fail_stage(self, stage: Stage, message: str, returncode: Optional[int]) -> None:
        st = self._stage_state(stage.name)
        st.update(status="failed", finished=time.time(), returncode=returncode)
        self._event("stage_failed", message, stage=stage.name, returncode=returncode)
        self._save()

    def _run_task(self, stage: Stage, server: Optional[Stage]) -> int:
        self._event("stage_started", stage.description, stage=stage.name)
        self.state["stage"] = stage.name
        child = self._spawn(stage)
        if stage.name == "train":
            self._epoch_eval_begin()
        while True:
            self._check_stop()
            rc = child.proc.poll()
            if rc is not None:
                break
            if stage.name == "train":
                self._epoch_eval_poll()
            if server is not None and stage.needs_server:
                srv = self._children.get(server.name)
                if srv is not None and srv.proc.poll() is None and self._server_hung(server):
                    self._event("warning", f"the server is running but has not answered /health for "
                                           f"{self.hang_timeout:.0f}s; restarting it", stage=server.name,
                                kind="server_hung")
                    procs.stop_group(srv.pid, grace=self.grace, proc=srv.proc)
                if srv is not None and srv.proc.poll() is not None:
                    outcome = self._restart_server(server, child)
                    if outcome == "failed":
                        self._stop_children([stage.name])
                        st = self._stage_state(stage.name)
                        st["status"] = "failed"
                        self._event("stage_failed", f"{stage.name} stopped: its server is gone",
                                    stage=stage.name, returncode=child.proc.returncode)
                        self._save()
                        return 1
                if stage.name == "train":
                    self._maybe_check_bottleneck(server)
            time.sleep(self.poll_interval)
        child.close()
        self._children.pop(stage.name, None)
        st = self._stage_state(stage.name)
        st.update(finished=time.time(), returncode=rc)
        if rc != 0:
            log = self.run_dir / (stage.log or f"{stage.name}.log")
            tail = rundir.tail_lines(log, TAIL_ON_FAILURE)
            self._fail_stage(stage, f"{stage.name} exited with code {rc}; last lines of {log.name}:\n"
                             + "\n".join(tail), returncode=rc)
            return rc
        st["status"] = "done"
        self._event("stage_finished", f"{stage.name} finished", stage=stage.name, returncode=0)
        self._save()
        return 0

    def run(self) -> int:
        in_main = threading.current_thread() is threading.main_thread()
        old = {}
        if in_main:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # HUP: the terminal closed
                old[sig] = signal.signal(sig, self._on_signal)
        try:
            try:
                self._watchdog = procs.GroupWatchdog(grace=self.grace).start()
                return self._run()
            except StopRequested:
                return self._stopped()
            except BaseException as exc:
                self._wind_down("failed")
                self._event("run_failed", f"supervisor error: {type(exc).__name__}: {exc}")
                self._save()
                if isinstance(exc, Exception):
                    return 1
                raise
        finally:
            index.register(self.run_dir)  # the run history gets the final status, best loss, acceptance
            if in_main:
                # Children are gone: further signals may interrupt only the cleanup of this frame.
                for sig, h in old.items():
                    signal.signal(sig, h)
            if self._sampler is not None:
                self._sampler.stop()
            if self._watchdog is not None:  # every child is stopped by now: the watch is over
                self._watchdog.close()
                self._watchdog = None

    def _stopped(self) -> int:
        sig = self._stop_signal or signal.SIGTERM
        running = list(self._children)
        self._wind_down("stopped")
        name = signal.Signals(sig).name
        self._event("run_stopped", f"stopped by {name}" + (f"; stopped {', '.join(running)}" if running else ""),
                    signal=name)
        self._save()
        return 128 + int(sig)

    def _run(self) -> int:
        self.state.update(
            name=self.state.get("name") or self.run_dir.name, run_dir=str(self.run_dir), status="running",
            pid=os.getpid(), pgid=os.getpgid(0), pid_start=procs.start_ticks(os.getpid()),
            host=socket.gethostname(), started=time.time(), finished=None, stage=None,
            environ=rundir.recorded_environ(self.environ),
        )
        self.state["stages"] = layout.stage_states(s.name for s in self.stages)
        self._save()
        index.register(self.run_dir)
        self._event("run_started", f"run {self.run_dir.name}: " + ", ".join(s.name for s in self.stages),
                    pid=os.getpid())
        self._start_gpu_sampler()

        server = next((s for s in self.stages if s.kind == "server"), None)
        tasks = [s for s in self.stages if s.kind != "server"]
        last_needing = max((i for i, s in enumerate(tasks) if s.needs_server), default=-1)
        if server is not None and last_needing < 0:
            self._stage_state(server.name)["status"] = "skipped"
        for i, stage in enumerate(tasks):
            self._check_stop()
            if stage.name == "evaluate":
                self._epoch_eval_drain()
            reason = self.skip_check(stage)
            if reason:
                self._stage_state(stage.name).update(status="skipped", finished=time.time())
                self._event("stage_skipped", reason, stage=stage.name)
                self._save()
                continue
            if stage.needs_server and server is not None and server.name not in self._children:
                if not self._start_server(server):
                    return self._failed(f"the {server.name} stage failed to start")
            rc = self._run_task(stage, server)
            if rc != 0:
                return self._failed(f"{stage.name} failed (exit code {rc})", rc)
            if server is not None and server.name in self._children and i >= last_needing:
                self._stop_children([server.name])
                self._stage_state(server.name)["status"] = "done"
                self._event("stage_finished", "server stopped (no stage needs it any more)", stage=server.name)
                self._save()
        if server is not None and self._stage_state(server.name)["status"] == "pending":
            self._stage_state(server.name)["status"] = "skipped"
        sweep_scratch(self.run_dir, self._storage_dir(), self._server_since, self._event)
        self.state.update(status="completed", finished=time.time(), stage=None)
        self._event("run_finished", "all stages finished")
        self._save()
        return 0

    def _storage_dir(self) -> str:
        """The server's scratch directory as planned (absolute; /dev/shm by default on GPUs)."""
        server = next((s for s in self.stages if s.kind == "server"), None)
        return (server.storage_dir if server is not None else "") or self.cfg.storage_dir

    def _wind_down(self, status: str) -> None:
        """Stop every child, clean the scratch directory, mark what was running failed, set `status`."""
        self._stop_children()
        sweep_scratch(self.run_dir, self._storage_dir(), self._server_since, self._event)
        layout.mark_interrupted(self.state, status)

    def _failed(self, message: str, rc: int = 1) -> int:
        self._wind_down("failed")
        self._event("run_failed", message)
        self._save()
        return rc if rc else 1


def main(argv: Optional[list[str]] = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m speculators_core.runs.supervisor",
                                description="Run the stages of a run directory (made by create_run_dir).")
    p.add_argument("run_dir")
    p.add_argument("--grace", type=float, default=15.0, help="seconds between SIGTERM and SIGKILL on stop")
    a = p.parse_args(argv)
    run_dir = Path(a.run_dir)
    for name in (layout.RUN_TOML, layout.STAGES):
        if not (run_dir / name).exists():
            print(f"error: {run_dir} has no {name}; create it with speculators-tui run", file=sys.stderr)
            return 2
    return Supervisor(run_dir, grace=a.grace).run()


if __name__ == "__main__":
    sys.exit(main())
