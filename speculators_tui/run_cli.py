"""The run commands of `speculators-tui`: run, attach, status, stop, gpus.

    speculators-tui run PRESET|CONFIG [--headless | --detach] [--runs-dir DIR]
    speculators-tui attach RUN_DIR [--headless]     # Ctrl-C detaches, never stops
    speculators-tui status RUN_DIR|RUNS_DIR
    speculators-tui stop RUN_DIR [--grace S]
    speculators-tui gpus [CONFIG] [--json]

`run --headless` supervises the run in this process (Ctrl-C stops it); without --headless the run is
started detached and the app's dashboard follows it (closing the app leaves the run running).
The headless display reads only the run directory's files, so it works the same for `attach`.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Optional

from speculators_core import (
    RunConfig, RunReader, config_errors, format_event, hms, list_runs, pid_alive, read_state, run_layout,
    measured_line, serve_command, stage_icon, validate_config,
)


# ------------------------------------------------------------------------------------------ display
class RunFollower(RunReader):
    """A `RunReader` with the terminal's lines: stages, training progress."""

    def __init__(self, run_dir: Path):
        super().__init__(run_dir)
        self.detached = False  # the viewer left with Ctrl-C (the run goes on)

    def poll(self) -> tuple[list[dict], list[dict]]:
        """(new events, new metrics records) since the last call."""
        self.read_state()
        return self.read_events(), self.read_metrics()

    def train_line(self) -> str:
        t = self.last_train
        if t is None:
            return ""
        total = (self.start or {}).get("total_steps")
        parts = [f"step {t.get('step')}" + (f"/{total}" if total else ""),
                 f"epoch {int(t.get('epoch', 0)) + 1}" + (f"/{self.start.get('epochs')}" if self.start else "")]
        if t.get("loss") is not None:
            parts.append(f"loss {t['loss']:.4f}")
        if t.get("full_acc_0") is not None:
            parts.append(f"acc0 {t['full_acc_0']:.3f}")
        pace = self.pace().text()  # steps/s, tokens/s (wall clock), ETAs: runs.eta
        if pace:
            parts.append(pace)
        if t.get("step_time_s"):
            parts.append(f"waited {100 * float(t.get('data_wait_s') or 0) / float(t['step_time_s']):.0f}%")
        if self.last_val is not None:
            acc = self.last_val.get("acceptance_length")
            parts.append(f"val loss {self.last_val.get('loss', float('nan')):.4f}"
                         + (f", accept len {acc:.2f}" if acc is not None else ""))
        return ", ".join(parts)

    def measured(self) -> str:
        """The evaluate stage's measured acceptance length and the K to serve with ('' before it ran)."""
        return measured_line(self.evals, (self.eval_best or {}).get("checkpoint"))

    def stage_line(self) -> str:
        stages = self.state.get("stages") or {}
        return "  ".join(f"{stage_icon(s.get('status'))} {n}" for n, s in stages.items())


def _event_style(ev: dict) -> str:
    e = ev.get("event", "")
    if e in ("stage_failed", "run_failed"):
        return "bold red"
    if e == "warning":
        return "yellow"
    if e in ("run_finished", "server_healthy", "server_restarted"):
        return "green"
    return ""


def follow(run_dir: Path, done: Optional[threading.Event] = None, console=None, interval: float = 0.5,
           detach_note: bool = False) -> RunFollower:
    """Show a run's progress until it finishes, `done` is set, or Ctrl-C (which only detaches).

    On a terminal: events scroll above a live stage/progress panel. Otherwise (logs, CI): events and a
    training line at most every 10 s, as plain lines.
    """
    from rich.console import Console, Group
    from rich.live import Live
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.text import Text

    console = console or Console(soft_wrap=True)
    f = RunFollower(run_dir)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        console=console, transient=False)
    task_id = None
    live = Live(console=console, refresh_per_second=4, transient=False) if console.is_terminal else None
    last_plain = 0.0
    last_line = ""
    from speculators_core import AlertWatch, load_notify_settings, terminal_sequences

    notify = load_notify_settings() if console.is_terminal else None  # bell/OSC 9/777 only on a terminal
    alerts = AlertWatch(f.run_dir.name)
    if notify is not None:
        f.pace_tracker.stall_factor = notify.stall_factor
    last_warning: Optional[dict] = None

    def tick() -> None:
        nonlocal task_id, last_plain, last_line, last_warning
        events, _ = f.poll()
        for ev in events:
            console.print(Text(format_event(ev), style=_event_style(ev)))
            if ev.get("event") == "warning":
                last_warning = ev
        if notify is not None and notify.enabled:
            for alert in alerts.check(f.status, last_warning, f.pace()):
                console.file.write(terminal_sequences(alert, notify))
                console.file.flush()
        line = f.train_line()
        if live is not None:
            total = (f.start or {}).get("total_steps")
            if total:
                if task_id is None:
                    task_id = progress.add_task("train", total=total)
                progress.update(task_id, completed=(f.last_train or {}).get("step", 0), total=total)
            started = f.state.get("started")
            end = f.state.get("finished") or time.time()
            elapsed = f"  {hms(end - started)}" if isinstance(started, (int, float)) else ""
            parts = [Text(f"{f.run_dir.name}  {f.state.get('status', '?')}{elapsed}   {f.stage_line()}", style="bold")]
            if task_id is not None:
                parts.append(progress.get_renderable())
            if line:
                parts.append(Text(line))
            live.update(Group(*parts))
        elif line and line != last_line and (time.monotonic() - last_plain >= 10 or f.finished):
            console.print(f"  train: {line}")
            last_plain, last_line = time.monotonic(), line

    try:
        if live is not None:
            live.start()
        while True:
            tick()
            if f.finished or (done is not None and done.is_set()):
                tick()
                break
            if done is None and f.state.get("pid") and not pid_alive(f.state["pid"], f.state.get("pid_start")):
                f.poll()
                if not f.finished:  # killed without a chance to record it
                    console.print(f"the run's supervisor (pid {f.state['pid']}) is gone; "
                                  f"`speculators-tui stop {run_dir}` stops what it left running")
                    break
            time.sleep(interval)
    except KeyboardInterrupt:
        f.detached = True
        if detach_note:
            console.print(f"detached; the run continues. Stop it with: speculators-tui stop {run_dir}")
    finally:
        if live is not None:
            live.stop()
    return f


def _summary(f: RunFollower, console=None) -> None:
    from rich.console import Console

    console = console or Console(soft_wrap=True)
    st = f.state
    started, finished = st.get("started"), st.get("finished") or time.time()
    dur = f" in {finished - started:.0f}s" if isinstance(started, (int, float)) else ""
    console.print(f"run {f.run_dir.name}: {st.get('status', '?')}{dur}")
    if f.last_train is not None:
        console.print(f"  last: {f.train_line()}")
    if f.best is not None:
        console.print(f"  best checkpoint: {f.best.get('path')} (val loss {f.best.get('val_loss')})")
        if st.get("status") == "completed":
            console.print(f"  serve it: {serve_command(str(f.best.get('path')))}", markup=False)
    if f.evals:
        console.print(f"  {f.measured()}", markup=False)
    if f.skipped_note():
        console.print(f"  [yellow]files: {f.skipped_note()}[/]")
    console.print(f"  run directory: {f.run_dir}")


# ------------------------------------------------------------------------------------------ commands
def _load_config(spec: str):
    from speculators_core import find_preset

    preset = find_preset(spec)
    return preset.load(), str(preset.path)


def _check(cfg: RunConfig) -> tuple[bool, object]:
    from speculators_core import assignment_warnings, probe_gpus, try_load_target

    target, _why = try_load_target(cfg.model.target)
    problems = validate_config(cfg, target)
    for p in problems:
        print(f"{p.severity}: {p}", file=sys.stderr)
    probe = probe_gpus()
    if cfg.hidden_states.gpus or cfg.training.gpus:
        for w in assignment_warnings(cfg, probe.gpus, target):
            print(f"warning: {w}", file=sys.stderr)
    return not config_errors(problems), target


def cmd_run(args: argparse.Namespace) -> int:
    from speculators_core import Supervisor, create_run_dir, start_detached

    cfg, source = _load_config(args.config)
    ok, _ = _check(cfg)
    if not ok:
        print(f"{source}: fix the errors above first (speculators-tui validate {args.config})", file=sys.stderr)
        return 2
    if args.detach or not args.headless:
        run_app = None
        if not args.detach:
            try:
                from speculators_tui.app import run_app  # the dashboard (imports textual)
            except ImportError:
                print("note: the dashboard is not available; running headless", file=sys.stderr)
        if args.detach or run_app is not None:
            try:
                run_dir = start_detached(cfg, source, args.runs_dir)
            except RuntimeError as exc:  # the supervisor died at once: its output says why
                print(f"error: {exc}", file=sys.stderr)
                return 1
            if run_app is not None:
                return int(run_app(run_dir=run_dir) or 0)
            st = read_state(run_dir)
            print(f"started {run_dir} (supervisor pid {st.get('pid')})")
            print(f"  follow: speculators-tui attach {run_dir}")
            print(f"  stop:   speculators-tui stop {run_dir}")
            return 0
    run_dir = create_run_dir(cfg, source, args.runs_dir)
    print(f"run directory: {run_dir}", flush=True)
    sup = Supervisor(run_dir, grace=args.grace)
    done = threading.Event()
    holder: dict = {}

    def show() -> None:
        holder["f"] = follow(run_dir, done=done)

    viewer = threading.Thread(target=show, name="run-display", daemon=True)
    viewer.start()
    try:
        rc = sup.run()
    finally:
        done.set()
        viewer.join(timeout=10)
    f = holder.get("f") or RunFollower(run_dir)
    f.poll()
    _summary(f)
    return rc


def cmd_attach(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not (run_dir / run_layout.STATE).exists():
        print(f"error: {run_dir} is not a run directory (no {run_layout.STATE})", file=sys.stderr)
        return 2
    if not args.headless:
        try:
            from speculators_tui.app import run_app
        except ImportError:
            run_app = None
        if run_app is not None:
            return int(run_app(run_dir=run_dir) or 0)
    f = follow(run_dir, detach_note=True)
    if f.finished:
        _summary(f)
        return 0 if f.state.get("status") == "completed" else 1
    return 0 if f.detached else 1  # else: the supervisor was killed


def _fmt_time(ts) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if isinstance(ts, (int, float)) else "-"


def cmd_status(args: argparse.Namespace) -> int:
    from speculators_core import is_running

    path = Path(args.run_dir)
    if not (path / run_layout.STATE).exists() and not (path / run_layout.RUN_TOML).exists():
        runs = list_runs(path)
        if not runs:
            print(f"error: {path} is neither a run directory nor a directory of runs", file=sys.stderr)
            return 2
        for r in runs:
            st = read_state(r)
            live = " (running)" if is_running(r) else ""
            print(f"{r.name:<40} {st.get('status', '?'):<10}{live} {_fmt_time(st.get('started'))}")
        return 0
    f = RunFollower(path)
    events, _ = f.poll()
    st = f.state
    running = is_running(path)
    status = st.get("status", "?")
    if status in run_layout.RUN_ACTIVE and not running:
        status += (" (its supervisor never started)" if not st.get("pid")
                   else " (but its supervisor is gone: it was killed; `stop` cleans up)")
    print(f"run:     {path.name}")
    print(f"status:  {status}" + (f" (supervisor pid {st.get('pid')})" if running else ""))
    print(f"started: {_fmt_time(st.get('started'))}   finished: {_fmt_time(st.get('finished'))}")
    if st.get("server_url"):
        print(f"server:  {st['server_url']}")
    for name, s in (st.get("stages") or {}).items():
        rc = s.get("returncode")
        extra = f" pid {s.get('pid')}" if s.get("status") == "running" else (f" exit {rc}" if rc is not None else "")
        restarts = f", {s['restarts']} restart(s)" if s.get("restarts") else ""
        t0, t1 = s.get("started"), s.get("finished") or (time.time() if s.get("status") == "running" else None)
        took = f" [{hms(t1 - t0)}]" if isinstance(t0, (int, float)) and isinstance(t1, (int, float)) else ""
        print(f"  {stage_icon(s.get('status'))} {name:<9} {s.get('status', '?')}{extra}{restarts}{took}")
    if f.last_train is not None:
        print(f"train:   {f.train_line()}")
    if f.best is not None:
        print(f"best:    {f.best.get('path')}")
    if f.evals:
        print(f"eval:    {f.measured()}")
    warnings = [e for e in events if e.get("event") in ("warning", "stage_failed", "run_failed")]
    if warnings:
        print("last:    " + format_event(warnings[-1]))
    if f.skipped_note():
        print(f"files:   {f.skipped_note()} (torn by a crash or a full disk; the records around them are kept)")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from speculators_core import stop_run

    path = Path(args.run_dir)
    if not (path / run_layout.STATE).exists():
        print(f"error: {path} is not a run directory (no {run_layout.STATE})", file=sys.stderr)
        return 2
    if stop_run(path, grace=args.grace):
        print(f"stopped {path.name}")
    else:
        print(f"{path.name} was not running (status {read_state(path).get('status', '?')})")
    return 0


def cmd_gpus(args: argparse.Namespace) -> int:
    from speculators_core import describe_gpus as describe, probe_gpus

    probe = probe_gpus()
    advice = warnings = None
    declared = None
    if args.config:
        from speculators_core import plan_gpus, plan_warnings, suggest_cluster_split, try_load_target

        cfg, _ = _load_config(args.config)
        target, _why = try_load_target(cfg.model.target)
        gpus = plan_gpus(cfg, probe)  # the [cluster] section's declared GPUs stand in for this machine's
        if cfg.cluster.declared:
            c = cfg.cluster
            declared = (f"planning for declared hardware: {c.nodes} node(s) x {c.gpus_per_node} GPU(s) x "
                        f"{c.gpu_memory_gb:g} GB ([cluster] in {args.config})")
        advice = suggest_cluster_split(gpus, target, cfg)
        warnings = plan_warnings(cfg, gpus, target)
    if args.json:
        out = probe.to_dict()
        if advice is not None:
            from dataclasses import asdict

            out["advice"] = asdict(advice)
            out["assignment_warnings"] = warnings
        print(json.dumps(out, indent=2))
        return 0
    for line in describe(probe):
        print(line)
    if declared:
        print(declared)
    if advice is not None and advice.training_nodes + advice.serving_nodes > 1:
        print(f"suggested: {advice.serving_nodes} serving node(s), {advice.training_nodes} training node(s)")
    if advice is not None:
        print(f"suggested: server GPU {advice.server_gpus or 'none (CPU)'} (data parallel "
              f"{advice.data_parallel_size} x tensor parallel {advice.tensor_parallel_size}), "
              f"training GPU {advice.training_gpus or 'none (CPU)'}")
        for r in advice.reasons:
            print(f"  because {r}")
        for w in advice.warnings + (warnings or []):
            print(f"  warning: {w}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from speculators_core import SpeculatorsError, compare_text, load_run_curves, resolve_run

    if len(args.runs) < 2:
        print("error: compare needs two or more runs (run directories or names from `speculators-tui runs`)",
              file=sys.stderr)
        return 2
    try:
        runs = [load_run_curves(resolve_run(spec)) for spec in args.runs]
    except SpeculatorsError as exc:
        print(f"error: {exc.message}" + (f"\n  fix: {exc.fix}" if exc.fix else ""), file=sys.stderr)
        return 2
    sys.stdout.write(compare_text(runs, width=args.width))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """The run history (every run registers itself under the XDG data dir), newest first."""
    from speculators_core import list_run_history, run_history_dir

    entries = list_run_history(limit=None if args.all else 20)
    if not entries:
        print(f"no runs in the run history yet ({run_history_dir()})")
        return 0
    width = max(len(e.name) for e in entries)
    for e in entries:
        val = f"val {e.best_val_loss:.4g}" if e.best_val_loss is not None else ""
        acc = (f"accept {e.acceptance_length:.2f}" if e.acceptance_length is not None else
               f"accept~{e.val_acceptance_length:.2f}" if e.val_acceptance_length is not None else "")
        print(f"{e.name:<{width}}  {e.status:<9}  {_fmt_time(e.started)}  {val:<11} {acc:<12} {e.dir}")
    return 0


def add_verb(sub, name: str, help: str, func, *positionals: str) -> argparse.ArgumentParser:
    """One CLI verb: `name POSITIONAL...` running `func(args)`; options are added by the caller."""
    p = sub.add_parser(name, help=help)
    for arg in positionals:
        p.add_argument(arg)
    p.set_defaults(func=func)
    return p


def add_subcommands(sub) -> None:
    r = sub.add_parser("run", help="run a whole pipeline: prepare, hidden-states server, train")
    r.add_argument("config", help="preset name, TOML file or run directory (its config starts a new run)")
    mode = r.add_mutually_exclusive_group()
    mode.add_argument("--headless", action="store_true",
                      help="no app: supervise in this process with a progress display (Ctrl-C stops the run)")
    mode.add_argument("--detach", action="store_true", help="start in the background and return at once")
    r.add_argument("--runs-dir", default=None, help="parent directory of the run directory (default: run.dir)")
    r.add_argument("--grace", type=float, default=15.0, help="seconds between SIGTERM and SIGKILL when stopping")
    r.set_defaults(func=cmd_run)

    a = add_verb(sub, "attach", "follow a run (Ctrl-C detaches; the run continues)", cmd_attach, "run_dir")
    a.add_argument("--headless", action="store_true", help="plain progress display instead of the app")
    add_verb(sub, "status", "a run's status (or list the runs in a directory)", cmd_status, "run_dir")
    st = add_verb(sub, "stop", "stop a run and all its processes", cmd_stop, "run_dir")
    st.add_argument("--grace", type=float, default=15.0, help="seconds between SIGTERM and SIGKILL")

    c = add_verb(sub, "compare", "compare two or more runs: curves and the config difference, as text", cmd_compare)
    c.add_argument("runs", nargs="+", metavar="RUN", help="run directory, or a run's name from `speculators-tui runs`")
    c.add_argument("--width", type=int, default=40, help="characters of the train-loss sparklines")
    rh = add_verb(sub, "runs", "the run history: recent runs from any directory, with status", cmd_runs)
    rh.add_argument("--all", action="store_true", help="every run in the history (default: the 20 newest)")

    g = sub.add_parser("gpus", help="list GPUs (and suggest a split for a config)")
    g.add_argument("config", nargs="?", default=None, help="preset or TOML file to advise on")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_gpus)
