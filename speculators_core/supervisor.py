"""The run supervisor: runs the stages of `commands.build_stages` as child processes.

    python -m speculators_core.supervisor RUN_DIR      # what `start_detached` spawns

Each stage runs in its own session/process group with the config's environment and its output in
the run directory's log file. A stage whose outputs are complete is skipped. The hidden-states server
is started before the first stage that needs it, must answer /health within
`hidden_states.start_timeout` seconds, is restarted (bounded, with backoff) if it dies while a stage
needs it, and is stopped after the last such stage. On SIGINT/SIGTERM every child group gets SIGTERM,
then SIGKILL after a grace period; nothing is left behind. Progress goes to `state.json` (atomic) and
`events.jsonl`; GPU samples to `gpu.jsonl`; bottleneck warnings (see `bottleneck.py`) to events.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Mapping, Optional

from speculators_core import procs, rundir
from speculators_core.commands import Stage, build_stages, endpoint_url, render_script
from speculators_core.fsutil import atomic_write_text, read_jsonl

TAIL_ON_FAILURE = 20


class StopRequested(Exception):
    """SIGINT/SIGTERM arrived: unwind and stop every child."""


def stage_done(stage: Stage) -> Optional[str]:
    """Why `stage` need not run (its outputs are complete), or None to run it."""
    argv = stage.argv
    try:
        if stage.name == "assets" and "--model-dir" in argv:
            from speculators_core.demo import MARKER

            model_dir = Path(argv[argv.index("--model-dir") + 1])
            if (model_dir / MARKER).exists():
                return f"the demo target is already built in {model_dir}"
        elif stage.name == "prepare" and stage.module == "speculators_core.prepare":
            try:
                from speculators_core.prepare import is_prepared
            except ImportError:
                return None
            from speculators_core.stage_args import prepare_parser

            args = prepare_parser().parse_args(stage.stage_argv())
            if is_prepared(args):
                return f"the prepared dataset in {args.output} matches these inputs"
    except (Exception, SystemExit):
        return None
    return None


def _port_in_use(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=1.0):
            return True
    except OSError:
        return False


def _http_get(url: str, timeout: float = 2.0) -> Optional[str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback URL from our config
            if resp.status != 200:
                return None
            return resp.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None


class _Child:
    def __init__(self, stage: Stage, proc: subprocess.Popen, log_fh):
        self.stage, self.proc, self.log_fh = stage, proc, log_fh
        self.ticks = procs.start_ticks(proc.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def close(self) -> None:
        try:
            self.log_fh.close()
        except OSError:
            pass


class Supervisor:
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
        self._built = stages is None
        if stages is None:
            from speculators_core.target_info import try_load_target

            target, _ = try_load_target(self.cfg.model.target)
            stages = build_stages(self.cfg, target, run_dir=str(self.run_dir), environ=self.environ)
        self.stages = stages
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
        self._restarts = 0
        self._server_since: Optional[float] = None  # when this run first started its server
        self._sampler = None
        self._gpus: list = []
        self._last_warning: dict[str, float] = {}
        self._metrics_offset = 0
        self._metrics_records: list[dict] = []
        self._last_tokens: Optional[tuple[float, float]] = None
        self._next_check = 0.0
        self.state = rundir.read_state(self.run_dir)

    # ---------------------------------------------------------------- state and events
    def _save(self) -> None:
        rundir.write_state(self.run_dir, self.state)

    def _stage_state(self, name: str) -> dict:
        st = self.state.setdefault("stages", {}).setdefault(name, {})
        for k, v in (("status", "pending"), ("pid", None), ("started", None), ("finished", None),
                     ("returncode", None), ("restarts", 0)):
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

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Ask a supervisor running in another thread to stop (tests, embedding)."""
        self._stop_signal = signum

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            self._check_stop()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, self.poll_interval))

    # ---------------------------------------------------------------- processes
    def _spawn(self, stage: Stage, note: str = "") -> _Child:
        log_path = self.run_dir / (stage.log or f"{stage.name}.log")
        fh = open(log_path, "ab")
        header = f"\n===== {stage.name}{note} {time.strftime('%Y-%m-%d %H:%M:%S')}: {stage.shell()}\n"
        fh.write(header.encode())
        fh.flush()
        env = dict(self.environ)
        env.update(stage.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            proc = procs.spawn(stage.argv, env, fh, cwd=stage.cwd,
                               die_with_parent=threading.current_thread() is threading.main_thread())
        except OSError:
            fh.close()
            raise
        child = _Child(stage, proc, fh)
        self._children[stage.name] = child
        st = self._stage_state(stage.name)
        st.update(status="running", pid=proc.pid, pgid=proc.pid, pid_start=child.ticks,
                  started=st.get("started") or time.time(), finished=None, returncode=None)
        self._save()
        return child

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

    # ---------------------------------------------------------------- server
    def _health_url(self, server: Stage) -> str:
        return server.health_url or endpoint_url(self.cfg).rsplit("/v1", 1)[0] + "/health"

    def _wait_healthy(self, child: _Child, timeout: float, watch: Optional[_Child] = None) -> str:
        """'ok' | 'exited' (server died) | 'timeout' | 'task_exited' (the watched task ended)."""
        from speculators_core.wait_health import is_healthy

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
        if _port_in_use(url):
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
        from speculators_core.wait_health import is_healthy

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
        while True:
            self._check_stop()
            rc = child.proc.poll()
            if rc is not None:
                break
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

    # ---------------------------------------------------------------- bottleneck detector
    def _maybe_check_bottleneck(self, server: Stage) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.bottleneck_interval
        try:
            self.check_bottleneck(server)
        except Exception as exc:  # never let the detector take a run down
            self._event("warning", f"bottleneck check failed: {exc}", kind="internal")

    def check_bottleneck(self, server: Optional[Stage]) -> None:
        from speculators_core.bottleneck import PROMPT_TOKENS, analyze, parse_prometheus

        new, self._metrics_offset = read_jsonl(self.run_dir / rundir.METRICS, self._metrics_offset)
        for r in new:
            if r.get("type") == "start":
                self._metrics_records = [r]
            elif r.get("type") == "train":
                self._metrics_records.append(r)
        window = 200
        if len(self._metrics_records) > 2 * window:
            self._metrics_records = self._metrics_records[-window:]
        metrics = None
        if server is not None:
            text = _http_get(self._health_url(server).rsplit("/health", 1)[0] + "/metrics")
            if text is not None:
                metrics = parse_prometheus(text)
                if PROMPT_TOKENS in metrics:
                    now = time.monotonic()
                    if self._last_tokens is not None and now > self._last_tokens[0]:
                        metrics["prompt_tokens_per_s"] = max(0.0, (metrics[PROMPT_TOKENS] - self._last_tokens[1])
                                                             / (now - self._last_tokens[0]))
                    self._last_tokens = (now, metrics[PROMPT_TOKENS])
        finding = analyze(self._metrics_records, metrics, self.cfg, window=window, gpus=self._gpus)
        if finding is None:
            return
        last = self._last_warning.get(finding.kind)
        if last is not None and time.monotonic() - last < self.warning_cooldown:
            return
        self._last_warning[finding.kind] = time.monotonic()
        self._event("warning", finding.message, stage="train", kind=finding.kind, fix=finding.fix,
                    fix_config=finding.fix_config, severity=finding.severity,
                    wait_fraction=round(finding.wait_fraction, 3), steps=finding.steps)

    # ---------------------------------------------------------------- GPUs
    def _start_gpu_sampler(self) -> None:
        from speculators_core.gpu import GpuSampler, gpu_roles, probe_gpus

        probe = self._probe if self._probe is not None else probe_gpus(self.environ)
        self._gpus = list(probe.gpus)
        if not probe.gpus:
            return
        roles = gpu_roles(self.cfg.hidden_states.gpus, self.cfg.training.gpus, [g.index for g in probe.gpus])
        self._sampler = GpuSampler(self.environ).start(self.run_dir / rundir.GPU, roles, self.gpu_interval)

    # ---------------------------------------------------------------- main
    def run(self) -> int:
        in_main = threading.current_thread() is threading.main_thread()
        old = {}
        if in_main:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # HUP: the terminal closed
                old[sig] = signal.signal(sig, self._on_signal)
        try:
            try:
                return self._run()
            except StopRequested:
                return self._stopped()
            except BaseException as exc:
                self._stop_all_quietly()
                self._sweep_scratch()
                self.state.update(status="failed", finished=time.time())
                self._event("run_failed", f"supervisor error: {type(exc).__name__}: {exc}")
                self._save()
                if isinstance(exc, Exception):
                    return 1
                raise
        finally:
            if in_main:
                # Children are gone: further signals may interrupt only the cleanup of this frame.
                for sig, h in old.items():
                    signal.signal(sig, h)
            if self._sampler is not None:
                self._sampler.stop()

    def _stop_all_quietly(self) -> None:
        self._stop_children()

    def _sweep_scratch(self) -> None:
        """Every child is gone (called before the run's last event): delete the server files no request took (requests that timed out or
        were cancelled by a stop), unless another live run shares the storage directory."""
        since = self._server_since
        if since is None:
            return
        storage = os.path.realpath(self.cfg.storage_dir)
        try:
            for other in rundir.list_runs(self.run_dir.parent):
                if other.resolve() == self.run_dir or not is_running(other):
                    continue
                if os.path.realpath(rundir.load_config(other).storage_dir) == storage:
                    self._event("scratch_kept", f"left {storage} as it is: run {other.name} uses it too")
                    return
        except Exception:  # an unreadable neighbour: do not guess, keep the files
            return
        from speculators_core.hidden_states.files import sweep_server_files

        try:
            n, freed = sweep_server_files(storage, since - 1.0)
        except OSError as exc:
            self._event("warning", f"could not clean {storage}: {exc}", kind="scratch")
            return
        if n:
            self._event("scratch_swept", f"deleted {n} hidden-states file(s) no request took "
                                         f"({freed / 2**20:.1f} MiB) from {storage}", files=n, bytes=freed)

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
            started=time.time(), finished=None, stage=None, environ=rundir.recorded_environ(self.environ),
        )
        self.state["stages"] = {s.name: {"status": "pending", "pid": None, "started": None, "finished": None,
                                         "returncode": None, "restarts": 0} for s in self.stages}
        if self._built:
            script = render_script(self.stages, self.cfg, self.state.get("source") or "")
            atomic_write_text(self.run_dir / rundir.RUN_SH, script).chmod(0o755)
        self._save()
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
        self._sweep_scratch()
        self.state.update(status="completed", finished=time.time(), stage=None)
        self._event("run_finished", "all stages finished")
        self._save()
        return 0

    def _wind_down(self, status: str) -> None:
        """Stop every child, clean the scratch directory, mark what was running failed, set `status`."""
        self._stop_children()
        self._sweep_scratch()
        for st in self.state.get("stages", {}).values():
            if st.get("status") == "running":
                st["status"] = "failed"
        self.state.update(status=status, finished=time.time())

    def _failed(self, message: str, rc: int = 1) -> int:
        self._wind_down("failed")
        self._event("run_failed", message)
        self._save()
        return rc if rc else 1


# -------------------------------------------------------------------- detached runs
def start_detached(cfg, source: Optional[str] = None, parent: Optional[str] = None,
                   wait: float = 15.0) -> Path:
    """Create a run directory and run its supervisor in a new session (it survives the caller).

    Returns the run directory once the supervisor has recorded itself in state.json.
    """
    run_dir = rundir.create_run_dir(cfg, source, parent)
    log = open(run_dir / rundir.SUPERVISOR_LOG, "ab")
    try:
        proc = procs.spawn([sys.executable, "-m", "speculators_core.supervisor", str(run_dir)],
                           os.environ, log, cwd=os.getcwd())
    finally:
        log.close()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if rundir.read_state(run_dir).get("pid") == proc.pid:
            break
        if proc.poll() is not None:
            tail = "\n".join(rundir.tail_lines(run_dir / rundir.SUPERVISOR_LOG, 20))
            raise RuntimeError(f"the supervisor of {run_dir} exited with code {proc.returncode}:\n{tail}")
        time.sleep(0.05)
    return run_dir


def is_running(run_dir) -> bool:
    """True while the run's supervisor process is alive (PID reuse is told apart by start time)."""
    st = rundir.read_state(run_dir)
    if st.get("status") not in ("starting", "running"):
        return False
    return procs.pid_alive(st.get("pid"), st.get("pid_start"))


def _live_child_groups(st: dict) -> list[int]:
    out = []
    for s in (st.get("stages") or {}).values():
        pid = s.get("pgid") or s.get("pid")
        if not pid:
            continue
        if procs.pid_alive(pid, s.get("pid_start")) or (not procs.pid_alive(pid) and procs.group_alive(pid)):
            out.append(int(pid))
    return out


def stop_run(run_dir, grace: float = 15.0) -> bool:
    """Stop a run: SIGTERM its supervisor (which stops its children within its own grace period);
    if the supervisor does not exit within `grace` + 15 s, or is gone already, stop the recorded
    child process groups directly. Returns True if anything was running."""
    run_dir = Path(run_dir)
    st = rundir.read_state(run_dir)
    pid, ticks = st.get("pid"), st.get("pid_start")
    found = False
    if pid and procs.pid_alive(pid, ticks) and pid != os.getpid():
        found = True
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace + 15.0
        while time.monotonic() < deadline and procs.pid_alive(pid, ticks):
            time.sleep(0.1)
        if procs.pid_alive(pid, ticks):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    st = rundir.read_state(run_dir)
    groups = _live_child_groups(st)
    for g in groups:
        found = True
        procs.signal_group(g, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while groups and time.monotonic() < deadline and any(procs.group_alive(g) for g in groups):
        time.sleep(0.1)
    for g in groups:
        if procs.group_alive(g):
            procs.signal_group(g, signal.SIGKILL)
    if st.get("status") in ("starting", "running") and not procs.pid_alive(pid, ticks):
        st.update(status="stopped", finished=time.time())
        for s in (st.get("stages") or {}).values():
            if s.get("status") == "running":
                s["status"] = "failed"
        rundir.write_state(run_dir, st)
        rundir.append_event(run_dir, "run_stopped", "stopped by `stop` (the supervisor was gone or did not exit)")
    return found


def main(argv: Optional[list[str]] = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m speculators_core.supervisor",
                                description="Run the stages of a run directory (made by create_run_dir).")
    p.add_argument("run_dir")
    p.add_argument("--grace", type=float, default=15.0, help="seconds between SIGTERM and SIGKILL on stop")
    a = p.parse_args(argv)
    run_dir = Path(a.run_dir)
    if not (run_dir / rundir.RUN_TOML).exists():
        print(f"error: {run_dir} has no {rundir.RUN_TOML}; create it with speculators-tui run", file=sys.stderr)
        return 2
    return Supervisor(run_dir, grace=a.grace).run()


if __name__ == "__main__":
    sys.exit(main())
