"""The pace of a run: steps/s, tokens/s, the ETA of the epoch and of the run, and a stalled run.

Computed ONCE here from the `train` records of metrics.jsonl (fed by `runs.reader.RunReader`) and
the stage plan (stages.json): the dashboard header, `status`, `attach` and the headless progress
line all show `Pace.text()`. Rates are wall-clock: the median gap between recent steps (robust to
the validation pause at an epoch's end, which is measured separately and added once per remaining
epoch). Nothing here imports torch or the app; it is a few arithmetic operations per poll.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Optional, Sequence

#: Steps whose gaps give the rate (recent enough to follow a change of speed, enough to be stable).
WINDOW = 32
#: A run is stalled when no step came for this many median step times (and at least STALL_MIN_S).
STALL_FACTOR = 10.0
STALL_MIN_S = 60.0


def _hms(seconds: float) -> str:
    s = int(max(0, round(seconds)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


@dataclass(frozen=True)
class Pace:
    """What the viewers show about a run's speed and remaining time (None = not known yet)."""

    step: Optional[int] = None
    total_steps: Optional[int] = None
    epoch: Optional[int] = None  # 0-based
    epochs: Optional[int] = None
    steps_per_s: Optional[float] = None
    tokens_per_s: Optional[float] = None
    #: median seconds between consecutive steps
    step_time_s: Optional[float] = None
    eta_epoch_s: Optional[float] = None
    eta_run_s: Optional[float] = None
    #: seconds without a step, when that is over the stall threshold; else None
    stalled_s: Optional[float] = None
    #: stages of the plan after training that the ETA does not include (e.g. ("evaluate",))
    not_included: tuple[str, ...] = ()
    #: the ETA includes the pause at each epoch's end (validation, checkpoint), measured once
    includes_epoch_end: bool = False

    def text(self) -> str:
        """One line: '2.10 steps/s · 3,412 tok/s · epoch ETA 0:00:20 · run ETA 0:03:05', or ''."""
        parts = []
        if self.steps_per_s is not None:
            parts.append(f"{self.steps_per_s:.2f} steps/s" if self.steps_per_s >= 0.1
                         else f"{self.step_time_s:.1f} s/step")
        if self.tokens_per_s is not None:
            parts.append(f"{self.tokens_per_s:,.0f} tok/s")
        if self.eta_epoch_s is not None and self.epochs and self.epochs > 1:
            parts.append(f"epoch ETA {_hms(self.eta_epoch_s)}")
        if self.eta_run_s is not None:
            extra = f" + {', '.join(self.not_included)}" if self.not_included else ""
            parts.append(f"run ETA {_hms(self.eta_run_s)}{extra}")
        if self.stalled_s is not None:
            parts.append(f"STALLED: no step for {_hms(self.stalled_s)}")
        return " · ".join(parts)


@dataclass
class PaceTracker:
    """Fed every metrics record (`add`); `estimate(now)` gives the current `Pace`."""

    window: int = WINDOW
    stall_factor: float = STALL_FACTOR
    stall_min_s: float = STALL_MIN_S
    start: Optional[dict] = None
    last: Optional[dict] = None
    ended: bool = False
    #: (time, step, tokens) of the recent train records of the current pass
    _steps: deque = field(default_factory=deque)
    #: seconds of the last epoch-end pause (validation + checkpoint), beyond one step's time
    epoch_end_s: Optional[float] = None

    def add(self, record: dict) -> None:
        kind = record.get("type")
        if kind == "start":
            self.start, self.ended = record, False
            self._steps.clear()  # a resumed run: the old pace is not this one's
        elif kind == "end":
            self.ended = True
        elif kind == "train":
            t, step = record.get("time"), record.get("step")
            if not isinstance(t, (int, float)) or not isinstance(step, (int, float)):
                return
            if self._steps and step <= self._steps[-1][1]:
                self._steps.clear()  # steps replayed after a resume
            if (self.last is not None and self._steps and record.get("epoch") != self.last.get("epoch")
                    and len(self._steps) >= 2):
                gap = (t - self._steps[-1][0]) / max(1, step - self._steps[-1][1])
                typical = self._median_gap()
                if typical is not None:
                    self.epoch_end_s = max(0.0, gap - typical)
            self._steps.append((float(t), int(step), float(record.get("tokens") or 0)))
            while len(self._steps) > self.window:
                self._steps.popleft()
            self.last = record

    def add_all(self, records: Sequence[dict]) -> None:
        for r in records:
            self.add(r)

    def _validation_guess(self, gap: float) -> float:
        """Before the first epoch end was measured: validating val_rows takes at most as long as
        training on as many rows (a forward pass only)."""
        start = self.start or {}
        train_rows, val_rows, spe = start.get("train_rows"), start.get("val_rows"), start.get("steps_per_epoch")
        if not train_rows or not val_rows or not spe:
            return 0.0
        return float(val_rows) / float(train_rows) * float(spe) * gap

    def _gaps(self) -> list[float]:
        s = list(self._steps)
        return [(b[0] - a[0]) / (b[1] - a[1]) for a, b in zip(s, s[1:]) if b[1] > a[1]]

    def _median_gap(self) -> Optional[float]:
        gaps = self._gaps()
        return statistics.median(gaps) if gaps else None

    def estimate(self, now: float, plan: Sequence[str] = (), stage_status: Optional[dict] = None,
                 training: bool = True) -> Pace:
        """The pace at `now`. `plan`: the stage names in order (stages.json); `stage_status`: their
        statuses (state.json) so stages after `train` not yet done are named as not included;
        `training`: the train stage is running (a stall is only looked for then)."""
        start, last = self.start or {}, self.last
        total, epochs = start.get("total_steps"), start.get("epochs")
        spe = start.get("steps_per_epoch")
        after = list(plan[plan.index("train") + 1:]) if "train" in plan else []
        done = {n for n, s in (stage_status or {}).items() if s in ("done", "skipped", "failed")}
        not_included = tuple(n for n in after if n not in done)
        if last is None:
            return Pace(total_steps=total, epochs=epochs, not_included=not_included)
        step, epoch = int(last.get("step", 0)), int(last.get("epoch", 0))
        gap = self._median_gap()
        sps = tps = eta_epoch = eta_run = stalled = None
        if gap is not None and gap > 0:
            sps = 1.0 / gap
            toks = [x[2] for x in list(self._steps)[1:]]
            if toks and any(toks):
                tps = statistics.median(toks) / gap
            if spe:
                prog = last.get("epoch_progress")
                left_epoch = (round((1.0 - float(prog)) * spe) if isinstance(prog, (int, float))
                              else max(0, (epoch + 1) * spe - step))
                eta_epoch = max(0, left_epoch) * gap
            if total:
                eta_run = max(0, int(total) - step) * gap
                if self.epoch_end_s is not None and epochs:
                    eta_run += self.epoch_end_s * max(0, int(epochs) - epoch)
            if self.ended or not training:
                eta_epoch = eta_run = None
            else:
                quiet = now - self._steps[-1][0]
                pause = 0.0  # after an epoch's last step, validation runs: allow for it
                prog = last.get("epoch_progress")
                if isinstance(prog, (int, float)) and prog >= 0.999:
                    pause = self.epoch_end_s if self.epoch_end_s is not None else self._validation_guess(gap)
                if quiet > max(self.stall_min_s, pause + self.stall_factor * gap):
                    stalled = quiet
        return Pace(step=step, total_steps=total, epoch=epoch, epochs=epochs, steps_per_s=sps, tokens_per_s=tps,
                    step_time_s=gap, eta_epoch_s=eta_epoch, eta_run_s=eta_run, stalled_s=stalled,
                    not_included=not_included, includes_epoch_end=self.epoch_end_s is not None)
