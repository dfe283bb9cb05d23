"""Run directories: `<run.dir>/<run.name>-<YYYYmmdd-HHMMSS>/` with the files of docs/interfaces.md.

A run directory is the only link between a running pipeline and whoever looks at it (the app, `attach`,
`status`, `stop`): the supervisor writes `state.json` (atomically), `events.jsonl`, the logs; the
trainer writes `metrics.jsonl`. Nothing here imports torch or the app.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Optional

from speculators_core import config as cfgmod
from speculators_core.fsutil import append_jsonl, atomic_write_json, atomic_write_text
from speculators_core.paths import is_builtin

from speculators_core.runs.layout import (  # noqa: F401  (the file names, re-exported for readers)
    EVENTS, GPU, METRICS, RECORDED_ENV, RUN_SH, RUN_TOML, STAGES, STATE, SUPERVISOR_LOG, stage_states,
)


def _abs(path: str, base: Path) -> str:
    if not path:
        return path
    p = Path(os.path.expanduser(path))
    return str(p if p.is_absolute() else (base / p).resolve())


def resolve_paths(cfg: cfgmod.RunConfig, base: Optional[Path] = None) -> cfgmod.RunConfig:
    """A copy of `cfg` whose relative paths are made absolute against `base` (default: the cwd).

    A run directory then means the same thing from any directory (attach, export, a detached
    supervisor), and its run.sh runs from anywhere.
    """
    base = Path(base or os.getcwd())
    out = cfg.copy()
    out.data.output = _abs(out.data.output, base)
    out.data.sources = [
        s if (is_builtin(s) or s in ("sharegpt", "ultrachat") or s.startswith(("hf:", "http"))
              or not os.path.exists(os.path.expanduser(s)) and not s.startswith((".", "/", "~")))
        else _abs(s, base)
        for s in out.data.sources
    ]
    t = out.model.target
    if not is_builtin(t) and (t.startswith((".", "/", "~")) or os.path.isdir(os.path.expanduser(t))):
        out.model.target = _abs(t, base)
    out.hidden_states.storage_dir = _abs(out.hidden_states.storage_dir, base)
    if out.hidden_states.python and ("/" in out.hidden_states.python):
        out.hidden_states.python = _abs(out.hidden_states.python, base)
    out.training.hidden_states_cache = _abs(out.training.hidden_states_cache, base)
    out.training.checkpoint_dir = _abs(out.training.checkpoint_dir, base)
    if out.training.from_pretrained and os.path.exists(os.path.expanduser(out.training.from_pretrained)):
        out.training.from_pretrained = _abs(out.training.from_pretrained, base)
    out.run.dir = _abs(out.run.dir, base)
    return out


def redact_secrets(cfg: cfgmod.RunConfig) -> cfgmod.RunConfig:
    """A copy of `cfg` whose secret `hidden_states.env` values (keys with TOKEN, KEY, SECRET or PASSWORD as a whole word (HF_TOKEN, OPENAI_API_KEY), or
    `${NAME}` references) are replaced by `<redacted: from $NAME>`: the plan reads them as references
    to the run's environment, so run.toml, stages.json and run.sh never hold the value."""
    from speculators_core.config.safety import env_reference, redacted

    out = cfg.copy()
    env = out.hidden_states.env
    for key, value in list(env.items()):
        ref = env_reference(key, value)
        if ref is not None:
            env[key] = redacted(ref)
    return out


def _unique_dir(parent: Path, name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        cand = parent / (f"{name}-{stamp}" if i == 0 else f"{name}-{stamp}-{i}")
        try:
            cand.mkdir(parents=True, exist_ok=False)
            return cand
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a run directory under {parent}")  # pragma: no cover


def recorded_environ(environ: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in RECORDED_ENV if k in environ}


def create_run_dir(cfg: cfgmod.RunConfig, source: Optional[str] = None, parent: Optional[str] = None,
                   environ: Optional[Mapping[str, str]] = None) -> Path:
    """Make `<parent or run.dir>/<name>-<timestamp>/` with run.toml (every key, absolute paths),
    stages.json (the plan the supervisor executes), run.sh (the same plan as a script) and an initial
    state.json. Returns the absolute directory."""
    from speculators_core.plan.plan import plan_run

    resolved = redact_secrets(resolve_paths(cfg))
    parent_dir = Path(_abs(parent, Path.cwd())) if parent else Path(resolved.run.dir)
    full_env = dict(os.environ if environ is None else environ)  # what the supervisor inherits
    env = recorded_environ(full_env)
    run_dir = _unique_dir(parent_dir, resolved.run.name)
    try:
        plan = plan_run(resolved, run_dir=str(run_dir), environ=full_env, source=source or "").require()
    except BaseException:
        run_dir.rmdir()
        raise
    text = cfgmod.dumps(resolved, include_defaults=True)
    header = "# Resolved configuration of this run" + (f" (from {source})" if source else "") + ".\n"
    atomic_write_text(run_dir / RUN_TOML, header + text).chmod(0o644)  # mkstemp makes 0600
    write_stages(run_dir, plan.stages)
    atomic_write_text(run_dir / RUN_SH, plan.script).chmod(0o755)
    now = time.time()
    write_state(run_dir, {
        "name": run_dir.name, "run_dir": str(run_dir), "status": "starting", "pid": None, "pgid": None,
        "started": now, "updated": now, "finished": None, "stage": None, "server_url": None,
        "source": source, "environ": env, "stages": stage_states(s.name for s in plan.stages),
    })
    from speculators_core.runs import index

    index.register(run_dir)  # the run history (XDG data dir): listed from any working directory
    return run_dir


def write_stages(run_dir, stages) -> None:
    text = json.dumps([s.to_dict() for s in stages], indent=1) + "\n"
    atomic_write_text(Path(run_dir) / STAGES, text).chmod(0o644)


def read_stages(run_dir) -> list:
    """The stages recorded in the run directory (what the supervisor executes)."""
    from speculators_core.plan.stages import Stage

    data = json.loads((Path(run_dir) / STAGES).read_text(encoding="utf-8"))
    return [Stage.from_dict(d) for d in data]


def load_config(run_dir: Path) -> cfgmod.RunConfig:
    return cfgmod.load(Path(run_dir) / RUN_TOML)


def run_environ(run_dir: Path, base: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """The environment the run's commands were built with: `base` (default os.environ) with the
    recorded CUDA_VISIBLE_DEVICES/OMP_NUM_THREADS of the run (so an export reproduces the run)."""
    env = dict(os.environ if base is None else base)
    rec = read_state(run_dir).get("environ")
    if isinstance(rec, dict):
        for k in RECORDED_ENV:
            env.pop(k, None)
        env.update({str(k): str(v) for k, v in rec.items()})
    return env


def read_state(run_dir) -> dict:
    """state.json of a run, {} when absent or unreadable (it is rewritten atomically, never torn)."""
    try:
        data = json.loads((Path(run_dir) / STATE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def write_state(run_dir, state: dict) -> None:
    state["updated"] = time.time()
    # keys in insertion order: "stages" lists the stages in the order they run (evaluate after train)
    atomic_write_json(Path(run_dir) / STATE, state, sort_keys=False).chmod(0o644)  # readable like the logs (mkstemp makes 0600)


def append_event(run_dir, event: str, message: str = "", **fields: Any) -> dict:
    record = {"time": time.time(), "event": event, "message": message, **fields}
    append_jsonl(Path(run_dir) / EVENTS, record)
    return record


def list_runs(parent) -> list[Path]:
    """Run directories under `parent` (those with state.json or run.toml), newest first."""
    p = Path(parent)
    if not p.is_dir():
        return []
    runs = [d for d in p.iterdir() if d.is_dir() and ((d / STATE).exists() or (d / RUN_TOML).exists())]

    def started(d: Path) -> float:
        st = read_state(d).get("started")
        if isinstance(st, (int, float)):
            return float(st)
        return (d / RUN_TOML).stat().st_mtime if (d / RUN_TOML).exists() else d.stat().st_mtime

    return sorted(runs, key=lambda d: (started(d), d.name), reverse=True)


def tail_lines(path, n: int = 50) -> list[str]:
    """The last `n` lines of a text file ([] when absent), read from the end (logs can be large)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            block = 8192
            data = b""
            pos = size
            while pos > 0 and data.count(b"\n") <= n:
                step = min(block, pos)
                pos -= step
                fh.seek(pos)
                data = fh.read(step) + data
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    # Progress bars rewrite a line with \r: show what the terminal would show.
    lines = [ln.rstrip("\r").rsplit("\r", 1)[-1] for ln in lines]
    return list(deque(lines, maxlen=n)) if n > 0 else []
