"""Compare runs: their curves (train/val loss, accuracy, acceptance) and the difference of their
configurations, read from their run directories. `speculators-tui compare RUN RUN...` prints
`compare_text`; the app's compare screen draws the same `RunCurves` and `config_diff`.

Nothing here imports torch or the app.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from speculators_core.errors import SpeculatorsError
from speculators_core.runs import layout

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Points = list[tuple[float, float]]


@dataclass
class RunCurves:
    name: str
    dir: Path
    status: str = "unknown"
    config: dict[str, Any] = field(default_factory=dict)  # run.toml flattened: {"training.lr": 3e-4}
    train_loss: Points = field(default_factory=list)
    #: train full accuracy of TTT step 0 (the first drafted token)
    train_acc0: Points = field(default_factory=list)
    val_loss: Points = field(default_factory=list)
    val_acc0: Points = field(default_factory=list)
    #: acceptance length estimated at each validation (1 + sum_k full_acc_k)
    val_acceptance: Points = field(default_factory=list)
    #: `eval` records (the evaluate stage, measured with vLLM): as found in metrics.jsonl
    evals: list[dict] = field(default_factory=list)
    steps: Optional[int] = None

    @property
    def best_val_loss(self) -> Optional[float]:
        return min((y for _, y in self.val_loss), default=None)

    @property
    def final_acceptance(self) -> Optional[float]:
        return self.val_acceptance[-1][1] if self.val_acceptance else None

    @property
    def measured_acceptance(self) -> Optional[float]:
        vals = [e.get("acceptance_length") for e in self.evals if isinstance(e.get("acceptance_length"), (int, float))]
        return float(vals[-1]) if vals else None

    @property
    def eval_acceptance(self) -> Points:
        """(step of the evaluated checkpoint's epoch end, measured acceptance length), for the charts."""
        out: Points = []
        spe = None
        for e in self.evals:
            al = e.get("acceptance_length")
            if not isinstance(al, (int, float)):
                continue
            step = e.get("step")
            if not isinstance(step, (int, float)) and isinstance(e.get("epoch"), (int, float)):
                ends = [s for s, _ in self.val_loss]
                idx = int(e["epoch"])
                step = ends[idx] if 0 <= idx < len(ends) else (ends[-1] if ends else spe)
            if isinstance(step, (int, float)):
                out.append((float(step), float(al)))
        return out


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _add(points: Points, x: float, y: float) -> None:
    while points and points[-1][0] >= x:  # a resumed run replays steps: keep the latest pass
        points.pop()
    points.append((x, y))


def resolve_run(spec: str) -> Path:
    """A run directory from a path or the name (or unique name prefix) of a run in the run history."""
    p = Path(spec).expanduser()
    if (p / layout.STATE).exists() or (p / layout.RUN_TOML).exists() or (p / layout.METRICS).exists():
        return p.resolve()
    from speculators_core.runs.index import find_entry

    entry = find_entry(spec)
    if entry is not None:
        return Path(entry.dir)
    raise SpeculatorsError(f"{spec}: neither a run directory (no {layout.STATE}, {layout.RUN_TOML} or "
                           f"{layout.METRICS}) nor the name of a run in the run history",
                           fix="give a run directory (<run.dir>/<name>-<time>), or a name listed by `speculators-tui runs`")


def load_run(run_dir: Path) -> RunCurves:
    from speculators_core.fsutil import read_jsonl_counted
    from speculators_core.runs.rundir import read_state

    run_dir = Path(run_dir)
    st = read_state(run_dir)
    rc = RunCurves(name=str(st.get("name") or run_dir.name), dir=run_dir, status=str(st.get("status") or "unknown"))
    try:
        rc.config = flatten(tomllib.loads((run_dir / layout.RUN_TOML).read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        rc.config = {}
    for r in read_jsonl_counted(run_dir / layout.METRICS, 0).records:
        kind, step = r.get("type"), r.get("step")
        if kind == "eval":
            rc.evals.append(r)
        if not isinstance(step, (int, float)):
            continue
        x = float(step)
        if kind == "train":
            rc.steps = int(step)
            if isinstance(r.get("loss"), (int, float)):
                _add(rc.train_loss, x, float(r["loss"]))
            if isinstance(r.get("full_acc_0"), (int, float)):
                _add(rc.train_acc0, x, float(r["full_acc_0"]))
        elif kind == "val":
            if isinstance(r.get("loss"), (int, float)):
                _add(rc.val_loss, x, float(r["loss"]))
            if isinstance(r.get("full_acc_0"), (int, float)):
                _add(rc.val_acc0, x, float(r["full_acc_0"]))
            if isinstance(r.get("acceptance_length"), (int, float)):
                _add(rc.val_acceptance, x, float(r["acceptance_length"]))
    return rc


def fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        if v != 0 and abs(v) < 1e-2:  # learning rates read as 3e-4, not 0.0003
            mant, exp = f"{v:.3e}".split("e")
            return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"
        return f"{v:g}"
    if isinstance(v, str):
        return v if v else '""'
    if isinstance(v, list):
        return "[" + ", ".join(fmt_value(x) for x in v) + "]"
    if v is None:
        return "-"
    return str(v)


#: keys that differ between any two runs by construction (not a difference of configuration)
IGNORED_KEYS = ("run.name",)


def config_diff(runs: Sequence[RunCurves]) -> list[tuple[str, list[str]]]:
    """[(dotted key, [value in each run])] for the keys whose values differ, in run.toml's order."""
    keys: list[str] = []
    for r in runs:
        keys += [k for k in r.config if k not in keys]
    out = []
    for k in keys:
        if k in IGNORED_KEYS:
            continue
        vals = [fmt_value(r.config.get(k)) if k in r.config else "(absent)" for r in runs]
        if len(set(vals)) > 1:
            out.append((k, vals))
    return out


def diff_line(key: str, values: Sequence[str]) -> str:
    """'training.lr  1e-04 -> 3e-04'."""
    return f"{key}  " + " -> ".join(values)


_SPARK = "▁▂▃▄▅▆▇█"


def sparkline(points: Points, width: int = 40, lo: Optional[float] = None, hi: Optional[float] = None) -> str:
    """The curve as `width` block characters (averaged per column), scaled to [lo, hi]."""
    if not points:
        return ""
    ys = [y for _, y in points]
    lo = min(ys) if lo is None else lo
    hi = max(ys) if hi is None else hi
    n = len(ys)
    cols = []
    for c in range(min(width, n)):
        a, b = c * n // min(width, n), max(c * n // min(width, n) + 1, (c + 1) * n // min(width, n))
        seg = ys[a:b]
        v = sum(seg) / len(seg)
        frac = 0.0 if hi <= lo else (v - lo) / (hi - lo)
        cols.append(_SPARK[min(len(_SPARK) - 1, max(0, int(frac * (len(_SPARK) - 1) + 0.5)))])
    return "".join(cols)


def _num(v: Optional[float], fmt: str = "{:.4f}") -> str:
    return "-" if v is None else fmt.format(v)


def compare_text(runs: Sequence[RunCurves], width: int = 40) -> str:
    """The comparison as plain text: a summary per run, the config difference, the curves (per
    validation point, and the train loss as a sparkline on a shared scale)."""
    lines: list[str] = []
    tags = [chr(ord("A") + i) if i < 26 else str(i) for i in range(len(runs))]
    lines.append("runs")
    for t, r in zip(tags, runs):
        lines.append(f"  {t}  {r.name}  {r.status}  steps {r.steps if r.steps is not None else '-'}  "
                     f"best val loss {_num(r.best_val_loss)}  "
                     f"acceptance {_num(r.measured_acceptance, '{:.2f}')} measured, "
                     f"{_num(r.final_acceptance, '{:.2f}')} estimated (val)")
        lines.append(f"     {r.dir}")
    lines.append("")
    diff = config_diff(runs)
    lines.append("config differences (" + " -> ".join(tags) + ")" if diff else "config differences: none")
    kw = max((len(k) for k, _ in diff), default=0)
    for k, vals in diff:
        lines.append(f"  {k:<{kw}}  " + " -> ".join(vals))
    lines.append("")
    lines.append("validation (per epoch): loss / full acc step 0 / acceptance length")
    n_val = max((len(r.val_loss) for r in runs), default=0)
    if n_val == 0:
        lines.append("  no validation records yet")
    for i in range(n_val):
        cells = []
        for t, r in zip(tags, runs):
            if i < len(r.val_loss):
                acc = r.val_acc0[i][1] if i < len(r.val_acc0) else None
                al = r.val_acceptance[i][1] if i < len(r.val_acceptance) else None
                cells.append(f"{t}: {r.val_loss[i][1]:.4f} / {_num(acc, '{:.3f}')} / {_num(al, '{:.2f}')}")
            else:
                cells.append(f"{t}: -")
        lines.append(f"  epoch {i + 1}  " + "   ".join(cells))
    if any(r.evals for r in runs):
        lines.append("")
        lines.append("measured acceptance (evaluate stage)")
        for t, r in zip(tags, runs):
            for e in r.evals:
                lines.append(f"  {t}: checkpoint {e.get('checkpoint', '?')}  k={e.get('num_speculative_tokens', '?')}  "
                             f"acceptance length {_num(e.get('acceptance_length'), '{:.2f}')}  "
                             f"speedup {_num(e.get('speedup'), '{:.2f}x')}")
    all_loss = [y for r in runs for _, y in r.train_loss]
    if all_loss:
        lo, hi = min(all_loss), max(all_loss)
        lines.append("")
        last = max(r.train_loss[-1][0] for r in runs if r.train_loss)
        lines.append(f"train loss (shared scales: {lo:.4g} .. {hi:.4g}; steps 1 .. {last:,.0f})")
        for t, r in zip(tags, runs):
            w = max(1, round(width * r.train_loss[-1][0] / last)) if r.train_loss else width
            lines.append(f"  {t}  {sparkline(r.train_loss, w, lo, hi) or '(none)'}")
    return "\n".join(lines) + "\n"
