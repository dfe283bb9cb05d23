"""The run history: every run registers itself in an index under the XDG data dir, so the app's
start screen (and `speculators-tui runs`) lists recent runs from anywhere, whatever the working
directory.

`$XDG_DATA_HOME/speculators-tui/runs/` (default `~/.local/share/speculators-tui/runs/`) holds one
small JSON file per run, named by a hash of the run directory's absolute path: a writer only ever
replaces its own run's file, atomically (temp file + rename), so concurrent runs never contend and
a reader never sees a torn entry. An entry: name, dir, config hash (of run.toml's settings), status,
started/finished, the best validation loss and the acceptance length measured by the evaluate
stage (`type: "eval"` records of metrics.jsonl, when present). `create_run_dir` registers a run,
the supervisor again when it ends; `list_entries` refreshes the status of entries whose state.json
changed since, shows "interrupted" for an active run whose supervisor (on this host) is gone, and
prunes entries whose directory is gone. Nothing here imports torch or the app.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Optional

from speculators_core.runs import layout

INDEX_VERSION = 1


def data_home() -> Path:
    """`$XDG_DATA_HOME/speculators-tui` (default `~/.local/share/speculators-tui`)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "speculators-tui"


def index_dir() -> Path:
    return data_home() / "runs"


@dataclass
class RunEntry:
    name: str
    dir: str
    config_hash: str = ""
    status: str = "unknown"
    started: Optional[float] = None
    finished: Optional[float] = None
    source: str = ""
    steps: Optional[int] = None
    best_val_loss: Optional[float] = None
    #: acceptance length estimated from validation (1 + sum of full accuracies) at the best val loss
    val_acceptance_length: Optional[float] = None
    #: acceptance length measured by the evaluate stage (the latest `eval` record), if it ran
    acceptance_length: Optional[float] = None
    speedup: Optional[float] = None
    #: when this entry was written (time.time())
    updated: float = 0.0
    version: int = INDEX_VERSION

    @classmethod
    def from_dict(cls, d: dict) -> "RunEntry":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def path(self) -> Path:
        return Path(self.dir)


def _key(run_dir: Path) -> str:
    return hashlib.sha256(str(Path(run_dir).resolve()).encode("utf-8")).hexdigest()[:20]


def entry_path(run_dir: Path) -> Path:
    return index_dir() / f"{_key(run_dir)}.json"


def config_hash(run_dir: Path) -> str:
    """A short hash of run.toml's settings (comments dropped): equal for runs of the same config."""
    try:
        text = (Path(run_dir) / layout.RUN_TOML).read_text(encoding="utf-8")
    except OSError:
        return ""
    body = "\n".join(ln.rstrip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:12]


def metrics_summary(run_dir: Path) -> dict[str, Any]:
    """Best val loss (and that record's acceptance length), the last step, and the latest `eval`
    record's measured acceptance length and speedup, from metrics.jsonl."""
    from speculators_core.fsutil import read_jsonl_counted

    out: dict[str, Any] = {}
    got = read_jsonl_counted(Path(run_dir) / layout.METRICS, 0)
    for r in got.records:
        kind = r.get("type")
        if kind == "train" and isinstance(r.get("step"), (int, float)):
            out["steps"] = int(r["step"])
        elif kind == "val" and isinstance(r.get("loss"), (int, float)):
            if out.get("best_val_loss") is None or r["loss"] < out["best_val_loss"]:
                out["best_val_loss"] = float(r["loss"])
                al = r.get("acceptance_length")
                out["val_acceptance_length"] = float(al) if isinstance(al, (int, float)) else None
        elif kind == "eval":
            if isinstance(r.get("acceptance_length"), (int, float)):
                out["acceptance_length"] = float(r["acceptance_length"])
            if isinstance(r.get("speedup"), (int, float)):
                out["speedup"] = float(r["speedup"])
    return out


def summarize(run_dir: Path) -> RunEntry:
    """The index entry of `run_dir`, read from its files."""
    import time

    from speculators_core.runs.rundir import read_state

    run_dir = Path(run_dir).resolve()
    st = read_state(run_dir)
    num = lambda v: float(v) if isinstance(v, (int, float)) else None  # noqa: E731
    entry = RunEntry(name=str(st.get("name") or run_dir.name), dir=str(run_dir), config_hash=config_hash(run_dir),
                     status=str(st.get("status") or "unknown"), started=num(st.get("started")),
                     finished=num(st.get("finished")), source=str(st.get("source") or ""), updated=time.time())
    for k, v in metrics_summary(run_dir).items():
        setattr(entry, k, v)
    return entry


def register(run_dir: Path) -> Optional[Path]:
    """Write (or rewrite) `run_dir`'s entry; the entry's path, or None when the index cannot be
    written (a read-only home never stops a run)."""
    from speculators_core.fsutil import atomic_write_json

    try:
        entry = summarize(run_dir)
        d = index_dir()
        d.mkdir(parents=True, exist_ok=True)
        return atomic_write_json(entry_path(run_dir), asdict(entry))
    except OSError:
        return None


def _state_mtime(run_dir: Path) -> Optional[float]:
    try:
        return (run_dir / layout.STATE).stat().st_mtime
    except OSError:
        return None


#: The status the history shows for a run whose state.json says it is active while its supervisor,
#: on this machine, is gone (killed with SIGKILL, out of memory, the machine restarted).
INTERRUPTED = "interrupted"


def list_entries(limit: Optional[int] = None, prune: bool = True) -> list[RunEntry]:
    """Indexed runs, newest first. Entries whose directory is gone are removed (`prune`); one whose
    state.json changed since it was written is refreshed (and rewritten once its run has ended)."""
    d = index_dir()
    try:
        files = [p for p in d.iterdir() if p.suffix == ".json"]
    except OSError:
        return []
    out: list[RunEntry] = []
    for p in files:
        try:
            entry = RunEntry.from_dict(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue  # being replaced right now, or not ours: never fatal
        run_dir = Path(entry.dir)
        if not run_dir.is_dir():
            if prune:
                try:
                    p.unlink()
                except OSError:
                    pass
            continue
        mtime = _state_mtime(run_dir)
        changed = mtime is not None and mtime > entry.updated
        if entry.status in layout.RUN_ACTIVE:
            from speculators_core.runs.control import supervisor_gone
            from speculators_core.runs.rundir import read_state

            fresh = read_state(run_dir)  # once: the status, and whether its supervisor still runs
            if supervisor_gone(fresh):
                entry.status = INTERRUPTED  # shown only: the run's own files still say "running"
            elif changed and fresh.get("status") in layout.RUN_FINISHED:
                register(run_dir)
                entry = summarize(run_dir)
            elif changed and fresh.get("status"):
                entry.status = str(fresh["status"])
        elif changed:
            register(run_dir)
            entry = summarize(run_dir)
        out.append(entry)
    out.sort(key=lambda e: (e.started or 0.0, e.name), reverse=True)
    return out[:limit] if limit else out


def find_entry(spec: str) -> Optional[RunEntry]:
    """An indexed run by its name (or a unique prefix of it)."""
    entries = list_entries()
    exact = [e for e in entries if e.name == spec]
    if exact:
        return exact[0]
    pre = [e for e in entries if e.name.startswith(spec)]
    return pre[0] if len(pre) == 1 else None
