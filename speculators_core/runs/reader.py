"""ONE incremental reader of a run directory, and the texts every viewer shows the same way.

`RunReader` reads only what was appended since the last call (byte offsets) and keeps the latest
record of each kind; `attach`/`status`/headless follow, the dashboard's data layer and the
supervisor's metrics tail all build on it. Nothing here imports torch or the app.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path
from typing import Any, Optional

from speculators_core.fsutil import read_jsonl_counted
from speculators_core.runs import layout
from speculators_core.runs.eta import Pace, PaceTracker
from speculators_core.runs.rundir import read_state

STATUS_ICON = {"pending": "·", "running": "▶", "done": "✓", "skipped": "↷", "failed": "✗"}


class RunReader:
    """state.json, and the records appended to events/metrics/gpu.jsonl since the last read."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.state: dict[str, Any] = {}
        #: (st_ino, st_size, st_mtime_ns) of the state.json last read: an atomic replace gives a new inode,
        #: so two writes within the clock's granularity are still told apart
        self._state_sig: tuple = ()
        self._offsets = {layout.METRICS: 0, layout.EVENTS: 0, layout.GPU: 0}
        #: lines of each JSONL file that could not be read (torn by a crash or a full disk), so far
        self.skipped_lines = {layout.METRICS: 0, layout.EVENTS: 0, layout.GPU: 0}
        self.start: Optional[dict] = None
        self.last_train: Optional[dict] = None
        self.last_val: Optional[dict] = None
        self.best: Optional[dict] = None
        self.last_checkpoint: Optional[dict] = None
        self.end: Optional[dict] = None
        #: steps/s, tokens/s and the ETAs, fed by every metrics record (`pace()`)
        self.pace_tracker = PaceTracker()
        self._plan: Optional[list[str]] = None
        #: `type: "eval"` records (the evaluate stage) of this run's checkpoints, and its best pick: a
        #: fresh start forgets them, a resumed one keeps those of the epochs it resumed from
        self.evals: list[dict] = []
        self.eval_best: Optional[dict] = None

    def read_state(self) -> bool:
        """Re-read state.json if it changed; True when it did."""
        try:
            st = (self.run_dir / layout.STATE).stat()
        except FileNotFoundError:
            return False
        sig = (st.st_ino, st.st_size, st.st_mtime_ns)
        if sig == self._state_sig:
            return False
        state = read_state(self.run_dir)
        if not state:
            return False  # unreadable right now: next poll
        self.state, self._state_sig = state, sig
        return True

    def records(self, name: str) -> list[dict]:
        """New records of `name` (layout.METRICS, .EVENTS or .GPU) since the last call."""
        got = read_jsonl_counted(self.run_dir / name, self._offsets[name])
        self._offsets[name] = got.offset
        self.skipped_lines[name] += got.skipped
        return got.records

    def skipped_note(self) -> str:
        """'' or e.g. "2 unreadable line(s) skipped in metrics.jsonl" (a crash or a full disk tore them)."""
        parts = [f"{n} unreadable line(s) skipped in {name}" for name, n in self.skipped_lines.items() if n]
        return "; ".join(parts)

    def read_events(self) -> list[dict]:
        return self.records(layout.EVENTS)

    def read_metrics(self) -> list[dict]:
        """New metrics records; the latest of each kind is kept (`start`, `last_train`, ...)."""
        recs = self.records(layout.METRICS)
        for r in recs:
            self.pace_tracker.add(r)
            kind = r.get("type")
            if kind == "start":
                self.start, self.end = r, None
                self.evals, self.eval_best = _evals_kept_at_start(self.evals, self.eval_best, r)
            elif kind == "eval":
                self.evals.append(r)
            elif kind == "eval_best":
                self.eval_best = r
            elif kind == "train":
                self.last_train = r
            elif kind == "val":
                self.last_val = r
            elif kind == "checkpoint":
                self.last_checkpoint = r
                if r.get("best"):
                    self.best = r
            elif kind == "end":
                self.end = r
        return recs

    @property
    def status(self) -> str:
        return str(self.state.get("status") or ("completed" if self.end else "unknown"))

    @property
    def finished(self) -> bool:
        return self.status in layout.RUN_FINISHED

    def plan(self) -> list[str]:
        """The stage names in order: stages.json (read once), else the order of state.json's stages."""
        if self._plan is None:
            try:
                data = json.loads((self.run_dir / layout.STAGES).read_text(encoding="utf-8"))
                self._plan = [str(d["name"]) for d in data]
            except (OSError, ValueError, KeyError, TypeError):
                self._plan = []  # a run from before stages.json: not looked for again
        return self._plan or list(self.state.get("stages") or {})

    def pace(self, now: Optional[float] = None) -> Pace:
        """Steps/s, tokens/s, the epoch's and the run's ETA, a stall (see `runs.eta`)."""
        stages = self.state.get("stages") or {}
        statuses = {n: str(s.get("status")) for n, s in stages.items() if isinstance(s, dict)}
        training = statuses.get("train", "running") == "running" and not self.finished
        return self.pace_tracker.estimate(time.time() if now is None else now, self.plan(), statuses, training)

    def elapsed(self, now: Optional[float] = None) -> Optional[float]:
        started = self.state.get("started")
        if started is None:
            return None
        end = self.state.get("finished") or (now or time.time())
        return float(end) - float(started)


def _evals_kept_at_start(evals: list[dict], best: Optional[dict], start: dict) -> tuple[list[dict], Optional[dict]]:
    """The eval records still true after a `start` record. Training that resumes after epoch E keeps
    checkpoints 0..E, and the evaluate stage reuses (does not record again) what was measured on them;
    a fresh start (no `resumed_from_epoch`) replaces every checkpoint."""
    resumed = start.get("resumed_from_epoch")
    if resumed is None:
        return [], None

    def kept(rec: Optional[dict]) -> bool:
        epoch = (rec or {}).get("epoch")
        return isinstance(epoch, int) and epoch <= int(resumed)

    return [e for e in evals if kept(e)], (best if kept(best) else None)


# ------------------------------------------------------------------------------------ formatting
def format_event(ev: dict, compact: bool = False) -> str:
    """An event as one line (`compact`: the dashboard's log, fix in parentheses) or the terminal's
    form (fix and fix_config on a second line)."""
    t = ev.get("time")
    if compact:
        stamp = time.strftime("%H:%M:%S", time.localtime(t)) if isinstance(t, (int, float)) else "--:--:--"
        stage = f" {ev['stage']}" if ev.get("stage") else ""
        msg = str(ev.get("message") or "")
        if ev.get("fix"):
            msg += f" (fix: {ev['fix']})"
        return f"{stamp} {ev.get('event', '?')}{stage}: {msg}"
    ts = time.strftime("%H:%M:%S", time.localtime(ev.get("time", time.time())))
    stage = f"[{ev['stage']}] " if ev.get("stage") else ""
    text = f"{ts} {ev.get('event')}: {stage}{ev.get('message', '')}"
    if ev.get("event") == "warning" and ev.get("fix"):
        text += f"\n         fix: {ev['fix']}"
        if ev.get("fix_config"):
            text += f"  ({', '.join(f'{k} = {json.dumps(v)}' for k, v in ev['fix_config'].items())})"
    return text


def measured_summary(evals: list[dict], checkpoint: Optional[str] = None) -> Optional[dict]:
    """What the evaluate stage measured, for one checkpoint (default: the last one measured):
    {"checkpoint", "epoch", "engine", "by_k": {K: acceptance_length}, "best_k", "acceptance_length"
    (at best_k), "speedup" (at best_k, or None)}; None without eval records. best_k: the highest
    speedup, else the highest output tokens/s (the K to serve with)."""
    if not evals:
        return None
    ck = checkpoint if checkpoint is not None else evals[-1].get("checkpoint")
    mine = [e for e in evals if e.get("checkpoint") == ck] or evals[-1:]
    key = "speedup" if all(e.get("speedup") is not None for e in mine) else "tokens_per_s"
    best = max(mine, key=lambda e: (float(e.get(key) or 0.0), -int(e.get("num_speculative_tokens") or 0)))
    return {"checkpoint": ck, "epoch": best.get("epoch"), "engine": best.get("engine"),
            "by_k": {int(e["num_speculative_tokens"]): float(e["acceptance_length"]) for e in mine},
            "best_k": int(best["num_speculative_tokens"]), "acceptance_length": float(best["acceptance_length"]),
            "speedup": best.get("speedup")}


def measured_line(evals: list[dict], checkpoint: Optional[str] = None) -> str:
    """'' or e.g. "measured acceptance length 1.46 at K = 3 (hf engine; K 1: 1.33, K 2: 1.42); serve with K = 3"."""
    m = measured_summary(evals, checkpoint)
    if m is None:
        return ""
    sweep = ", ".join(f"K {k}: {v:.2f}" for k, v in sorted(m["by_k"].items()))
    speed = f", speedup {m['speedup']:.2f}x" if m.get("speedup") is not None else ""
    return (f"measured acceptance length {m['acceptance_length']:.2f} at K = {m['best_k']}{speed} "
            f"({m['engine']} engine; {sweep}); serve with K = {m['best_k']}")


def serve_command(checkpoint_path: str, checkpoint_dir: Optional[str] = None) -> str:
    """`vllm serve <dir>/checkpoint_best`, <dir> = `checkpoint_dir` or the directory of `checkpoint_path`."""
    if checkpoint_dir is None:
        checkpoint_dir = os.path.dirname(str(checkpoint_path).rstrip("/")) or "."
    return f"vllm serve {shlex.quote(os.path.join(checkpoint_dir, 'checkpoint_best'))}"


def hms(seconds: float) -> str:
    """`H:MM:SS`."""
    s = int(max(0, seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def stage_icon(status: Optional[str]) -> str:
    return STATUS_ICON.get(status or "", "?")
