"""Incremental reader of a run directory (the dashboard's model; no textual imports).

The app is a thin client: everything it shows comes from the files the supervisor and the trainer
write (docs/interfaces.md). `RunWatcher.poll()` reads only what was appended since the last call
(byte offsets), keeps bounded histories, and says whether anything changed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from speculators_core import RunReader, format_event, measured_line, run_layout, serve_command

#: Points kept per chart series; older ones are thinned (every other point dropped).
MAX_POINTS = 4000
GPU_HISTORY = 60
LOG_FIRST_READ = 64 * 1024
LOG_FILES = {"trainer": "train.log", "server": "server.log", "prepare": "prepare.log", "generate": "generate.log",
             "regenerate": "regenerate.log", "supervisor": run_layout.SUPERVISOR_LOG}


def _opt_float(v) -> Optional[float]:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def _thin(points: list) -> None:
    if len(points) > MAX_POINTS:
        del points[1::2]


def _add(points: list, step: float, value: float) -> None:
    """Append (step, value). A resumed run replays the steps after its checkpoint: a step at or
    before the last one drops the points it replaces, so curves never run backwards."""
    while points and points[-1][0] >= step:
        points.pop()
    points.append((step, value))
    _thin(points)


@dataclass
class StageView:
    name: str
    status: str
    started: Optional[float]
    finished: Optional[float]
    restarts: int = 0

    def duration(self, now: float) -> Optional[float]:
        if self.started is None:
            return None
        return (self.finished or now) - self.started


@dataclass
class GpuView:
    index: int
    name: str
    role: str
    util: float
    mem_used_mb: float
    mem_total_mb: float
    util_hist: deque = field(default_factory=lambda: deque(maxlen=GPU_HISTORY))
    mem_hist: deque = field(default_factory=lambda: deque(maxlen=GPU_HISTORY))
    power_w: Optional[float] = None
    temp_c: Optional[float] = None
    #: The processes on the GPU at the last sample (None: the samples do not list them).
    processes: Optional[list["GpuProcessView"]] = None


@dataclass
class GpuProcessView:
    pid: int
    name: str
    mem_mb: float
    #: The run's stage the process belongs to (server, train), None for someone else's.
    stage: Optional[str] = None


class RunWatcher(RunReader):
    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self.train_loss: list[tuple[float, float]] = []
        self.val_loss: list[tuple[float, float]] = []
        self.tokens_per_s: list[tuple[float, float]] = []
        self.acc: dict[int, list[tuple[float, float]]] = {}
        self.val_acc: dict[int, list[tuple[float, float]]] = {}
        self.checkpoints: list[dict] = []
        #: The latest validation record of each epoch (its replayed acceptance length / estimate).
        self.val_by_epoch: dict[int, dict] = {}
        self.events: deque = deque(maxlen=500)
        self.warning: Optional[dict] = None
        #: The first stage_failed event (the cause), else run_failed.
        self.failure: Optional[dict] = None
        self.server_healthy_at: Optional[float] = None
        #: The regenerate stage's latest progress record ({"type": "regenerate", rows_per_s, ...}).
        self.regenerate: Optional[dict] = None
        self.gpus: dict[int, GpuView] = {}
        self.log_offsets: dict[str, int] = {}
        self._events_shown = 0
        self._event_count = 0

    # -- reading -----------------------------------------------------------------------------------
    def poll(self) -> bool:
        changed = self.read_state()
        changed |= self._read_metrics()
        changed |= self._read_events()
        changed |= self._read_gpus()
        return changed

    def _read_metrics(self) -> bool:
        recs = self.read_metrics()
        for r in recs:
            kind = r.get("type")
            if kind == "train":
                step = float(r.get("step", len(self.train_loss) + 1))
                if r.get("loss") is not None:
                    _add(self.train_loss, step, float(r["loss"]))
                if r.get("tokens_per_s") is not None:
                    _add(self.tokens_per_s, step, float(r["tokens_per_s"]))
                self._add_accs(self.acc, r, step)
            elif kind == "val":
                if isinstance(r.get("epoch"), (int, float)):
                    self.val_by_epoch[int(r["epoch"])] = r
                step = float(r.get("step", 0))
                if r.get("loss") is not None:
                    _add(self.val_loss, step, float(r["loss"]))
                self._add_accs(self.val_acc, r, step)
            elif kind == "regenerate":
                self.regenerate = dict(r)
            elif kind == "checkpoint":
                if r.get("best"):
                    for c in self.checkpoints:
                        c["best"] = False
                self.checkpoints.append(dict(r))
            elif kind == "eval_best":  # the evaluate stage re-pointed checkpoint_best (measured acceptance)
                for c in self.checkpoints:
                    c["best"] = c.get("epoch") == r.get("epoch")
        return bool(recs)

    def _add_accs(self, series: dict[int, list], record: dict, step: float) -> None:
        for k in range(self.ttt_steps(record)):
            v = record.get(f"full_acc_{k}")
            if v is not None:
                _add(series.setdefault(k, []), step, float(v))

    def ttt_steps(self, record: Optional[dict] = None) -> int:
        if self.start and self.start.get("ttt_steps"):
            return int(self.start["ttt_steps"])
        if record is None:
            return len(self.acc)
        k = 0
        while f"full_acc_{k}" in record:
            k += 1
        return k

    def _read_events(self) -> bool:
        recs = self.read_events()
        for r in recs:
            self.events.append(r)
            self._event_count += 1
            ev = r.get("event")
            if ev == "warning":
                self.warning = r
            elif ev == "stage_failed" and (self.failure is None or self.failure.get("event") != "stage_failed"):
                self.failure = r
            elif ev == "run_failed" and self.failure is None:
                self.failure = r
            elif ev == "server_healthy":
                self.server_healthy_at = r.get("time")
        return bool(recs)

    def _read_gpus(self) -> bool:
        recs = self.records(run_layout.GPU)
        for r in recs:
            for g in r.get("gpus") or []:
                idx = int(g.get("index", 0))
                view = self.gpus.get(idx)
                if view is None:
                    view = self.gpus[idx] = GpuView(idx, str(g.get("name", "")), "idle", 0.0, 0.0, 0.0)
                view.name = str(g.get("name", view.name))
                view.role = str(g.get("role") or "idle")
                view.util = float(g.get("util") or 0.0)
                view.mem_used_mb = float(g.get("mem_used_mb") or 0.0)
                view.mem_total_mb = float(g.get("mem_total_mb") or 0.0)
                view.power_w = _opt_float(g.get("power_w"))
                view.temp_c = _opt_float(g.get("temp_c"))
                procs = g.get("processes")
                view.processes = None if not isinstance(procs, list) else [
                    GpuProcessView(int(p.get("pid", 0)), str(p.get("name", "")), float(p.get("mem_mb") or 0.0),
                                   str(p["stage"]) if p.get("stage") else None)
                    for p in procs if isinstance(p, dict)]
                view.util_hist.append(view.util)
                view.mem_hist.append(100.0 * view.mem_used_mb / view.mem_total_mb if view.mem_total_mb else 0.0)
        return bool(recs)

    def read_log(self, name: str) -> str:
        """New text of log `name` (a LOG_FILES key, or "events") since the last call; the first call
        reads the tail."""
        if name == "events":
            return self._events_text()
        path = self.run_dir / LOG_FILES[name]
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return ""
        offset = self.log_offsets.get(name)
        if offset is None:
            offset = max(0, size - LOG_FIRST_READ)
        if size < offset:  # truncated / rotated
            offset = 0
        if size == offset:
            self.log_offsets[name] = offset
            return ""
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(size - offset)
        cut = data.rfind(b"\n")
        if cut < 0:
            self.log_offsets[name] = offset
            return ""
        if offset and name not in self.log_offsets:  # started mid-file: drop the partial first line
            nl = data.find(b"\n")
            data, offset = data[nl + 1:], offset + nl + 1
            cut = data.rfind(b"\n")
        self.log_offsets[name] = offset + cut + 1
        return data[: cut + 1].decode("utf-8", errors="replace")

    def _events_text(self) -> str:
        """Events not shown yet (at most the bounded history)."""
        unseen = min(len(self.events), self._event_count - self._events_shown)
        new = list(self.events)[len(self.events) - unseen:] if unseen else []
        self._events_shown = self._event_count
        return "".join(format_event(e, compact=True) + "\n" for e in new)

    # -- derived views -----------------------------------------------------------------------------
    def stages(self) -> list[StageView]:
        out = []
        for name, s in (self.state.get("stages") or {}).items():
            out.append(StageView(name, str(s.get("status", "pending")), s.get("started"), s.get("finished"),
                                 int(s.get("restarts") or 0)))
        return out

    def acceptance_length(self) -> Optional[float]:
        """Expected accepted tokens per draft: 1 + sum_k full_acc_k (val when known, else recent train)."""
        if self.last_val is not None:
            if self.last_val.get("acceptance_length") is not None:
                return float(self.last_val["acceptance_length"])
            accs = [self.last_val.get(f"full_acc_{k}") for k in range(self.ttt_steps(self.last_val))]
            if accs and all(a is not None for a in accs):
                return 1.0 + sum(float(a) for a in accs)
        if self.acc:
            total = 1.0
            for pts in self.acc.values():
                recent = [y for _, y in pts[-20:]]
                total += sum(recent) / len(recent)
            return total
        return None

    def measured_text(self) -> str:
        """The evaluate stage's measured acceptance length (beside the validation figure) and K to serve with."""
        return measured_line(self.evals, (self.eval_best or {}).get("checkpoint"))

    def estimated_acceptance(self, epoch) -> Optional[float]:
        """An epoch's acceptance length from validation (replayed, else the estimate)."""
        v = self.val_by_epoch.get(int(epoch)) if isinstance(epoch, (int, float)) else None
        if v is None:
            return None
        al = v.get("acceptance_length", v.get("acceptance_length_estimate"))
        if al is None:  # older trainers: 1 + sum_k full_acc_k
            accs = [v.get(f"full_acc_{k}") for k in range(self.ttt_steps(v))]
            al = 1.0 + sum(float(a) for a in accs) if accs and all(a is not None for a in accs) else None
        return float(al) if al is not None else None

    def measured_acceptance(self, epoch) -> Optional[tuple[float, int]]:
        """An epoch checkpoint's measured acceptance length (`type: "eval"` records): the best over
        the K sweep, with that K; None before it is measured."""
        rs = [r for r in self.evals if isinstance(epoch, (int, float)) and r.get("epoch") == int(epoch)
              and r.get("acceptance_length") is not None]
        if not rs:
            return None
        r = max(rs, key=lambda r: (float(r["acceptance_length"]), -int(r.get("num_speculative_tokens") or 0)))
        return float(r["acceptance_length"]), int(r.get("num_speculative_tokens") or 0)

    def serve_command(self, checkpoint_dir: Optional[str] = None) -> Optional[str]:
        """`vllm serve <dir>/checkpoint_best` once the run has ended with a best checkpoint."""
        if not self.finished or not self.checkpoints:
            return None
        return serve_command(str(self.checkpoints[-1].get("path", "")), checkpoint_dir)
