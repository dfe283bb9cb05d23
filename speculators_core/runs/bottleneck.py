"""The datagen bottleneck detector: is training starved of hidden states, or is the server idle?

Inputs: the trainer's `metrics.jsonl` train records (`data_wait_s`, `step_time_s` per step) and the
server's Prometheus `/metrics` (`vllm:num_requests_running`, `vllm:num_requests_waiting`,
`vllm:prompt_tokens_total`; the built-in hf engine serves the same names). Output: one `Finding`
with the numbers, the reason and a concrete fix, both as text and as dotted config keys, computed
from the config and the probed GPUs. Pure functions; the supervisor calls `analyze` periodically.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional

from speculators_core.config import RunConfig
from speculators_core.runs.gpu import GpuInfo

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
PROMPT_TOKENS = "vllm:prompt_tokens_total"
#: Minimum train steps in the window before anything is said.
MIN_STEPS = 20
#: Below this waiting share, training is not held up by the server at all.
LOW_WAIT = 0.05


@dataclass
class Finding:
    kind: str          # "bottleneck" (training waits for the server) | "server_idle" (the reverse)
    message: str
    fix: str
    fix_config: dict = field(default_factory=dict)
    severity: str = "warning"  # "warning" | "info"
    wait_fraction: float = 0.0
    steps: int = 0


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_prometheus(text: str) -> dict[str, float]:
    """Metric name -> value, summed over label sets (vLLM labels per engine/model). Comments,
    blank lines and unparsable samples are skipped; `_created` samples are ignored."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        name, value = m.group(1), m.group(3)
        if name.endswith("_created"):
            continue
        try:
            v = float(value)
        except ValueError:
            continue
        if math.isnan(v):
            continue
        out[name] = out.get(name, 0.0) + v
    return out


def train_window(records: list[dict], window: int) -> list[dict]:
    """The last `window` train records after the latest `start` record (a resumed run restarts)."""
    last_start = max((i for i, r in enumerate(records) if r.get("type") == "start"), default=-1)
    train = [r for r in records[last_start + 1:] if r.get("type") == "train"]
    return train[-window:] if window > 0 else train


def wait_fraction(train: list[dict]) -> float:
    wait = sum(float(r.get("data_wait_s") or 0.0) for r in train)
    total = 0.0
    for r in train:
        st = r.get("step_time_s")
        total += float(st) if st else float(r.get("data_wait_s") or 0.0) + float(r.get("compute_s") or 0.0)
    return wait / total if total > 0 else 0.0


def _idle_gpus(cfg: RunConfig, gpus: Optional[list[GpuInfo]]) -> list[int]:
    used = set(cfg.hidden_states.gpus) | set(cfg.training.gpus)
    return [g.index for g in (gpus or []) if g.index not in used and g.is_idle()]


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _server_state(server_metrics: Optional[dict]) -> tuple[Optional[float], Optional[float], str]:
    if not server_metrics or RUNNING not in server_metrics:
        return None, None, "the server's /metrics were not available"
    running = server_metrics.get(RUNNING, 0.0)
    waiting = server_metrics.get(WAITING, 0.0)
    tps = server_metrics.get("prompt_tokens_per_s")
    rate = f", {tps:.0f} prompt tokens/s" if tps is not None else ""
    return running, waiting, f"{running:.0f} running, {waiting:.0f} waiting{rate}"


def analyze(train_records: list[dict], server_metrics: Optional[dict], cfg: RunConfig, window: int = 200,
            threshold: float = 0.3, gpus: Optional[list[GpuInfo]] = None) -> Optional[Finding]:
    """A bottleneck finding for the last `window` train steps, or None when all is well.

    server_metrics: `parse_prometheus` of the server's /metrics (optionally with a computed
    "prompt_tokens_per_s"); gpus: the probed GPUs (for "give idle GPU N to the server").
    """
    train = train_window(train_records, window)
    if len(train) < min(MIN_STEPS, window):
        return None
    frac = wait_fraction(train)
    hs, t = cfg.hidden_states, cfg.training
    running, waiting, state = _server_state(server_metrics)
    idle = _idle_gpus(cfg, gpus)
    n = len(train)
    head = f"training waited {_pct(frac)} of the last {n} steps"

    if frac > threshold:
        saturated = waiting is not None and (waiting > 0 or (running or 0) >= max(1, t.max_in_flight))
        underfed = running is not None and not saturated and (running or 0) < max(1, t.max_in_flight) / 2
        if saturated:
            why = f"the server is saturated ({state})"
        elif underfed:
            why = (f"the server is not busy ({state}): the trainer keeps too few requests in flight "
                   f"(training.max_in_flight = {t.max_in_flight})")
        elif running is None:
            why = state
        else:
            why = f"the server is busy ({state})"
        fixes: list[str] = []
        fix_config: dict = {}
        if underfed:
            new = t.max_in_flight * 2
            fixes.append(f"raise training.max_in_flight {t.max_in_flight} -> {new}")
            fix_config["training.max_in_flight"] = new
            fix_config["training.max_files_on_disk"] = max(t.max_files_on_disk, 2 * new)
        elif hs.engine == "vllm" and hs.gpus and len(idle) >= hs.tensor_parallel_size:
            add = idle[: hs.tensor_parallel_size]
            new_gpus = list(hs.gpus) + add
            dp = hs.data_parallel_size + 1
            fixes.append(f"give the server GPU {','.join(map(str, add))} (data parallel "
                         f"{hs.data_parallel_size} -> {dp})")
            fix_config["hidden_states.gpus"] = new_gpus
            fix_config["hidden_states.data_parallel_size"] = dp
        elif hs.engine == "vllm" and len(t.gpus) > 1 and len(t.gpus) - hs.tensor_parallel_size >= 1 \
                and len(t.gpus) >= hs.tensor_parallel_size:
            move = list(t.gpus)[-hs.tensor_parallel_size:]
            dp = hs.data_parallel_size + 1
            fixes.append(f"move GPU {','.join(map(str, move))} from training to the server (data parallel "
                         f"{hs.data_parallel_size} -> {dp}, training on {len(t.gpus) - len(move)} GPU(s))")
            fix_config["hidden_states.gpus"] = list(hs.gpus) + move
            fix_config["hidden_states.data_parallel_size"] = dp
            fix_config["training.gpus"] = [g for g in t.gpus if g not in move]
        elif hs.engine == "hf" and not hs.gpus and idle:
            fixes.append(f"run the server on idle GPU {idle[0]} instead of the CPU")
            fix_config["hidden_states.gpus"] = [idle[0]]
        if t.mode == "online" and t.epochs > 1:
            fixes.append("switch to hybrid mode to cache hidden states for later epochs "
                         "(the server is then idle after epoch 1)")
            if not fix_config:
                fix_config["training.mode"] = "hybrid"
        if not fixes:
            fixes.append("use training.mode = 'offline' to generate all hidden states before training, "
                         "with every GPU given to the server first")
            fix_config["training.mode"] = "offline"
        fix = "; or ".join(fixes)
        return Finding("bottleneck", f"{head}; {why}: {fix}", fix[0].upper() + fix[1:], fix_config,
                       "warning", frac, n)

    if t.mode == "online" and frac < LOW_WAIT and running is not None and waiting == 0 and running < 1:
        # (hybrid: the server is idle after epoch 1 by design; offline: no server while training)
        # Training never waits and the server has nothing to do: the GPUs are on the wrong side.
        head = f"training waited only {_pct(frac)} of the last {n} steps and the server is idle ({state})"
        if hs.engine == "vllm" and hs.data_parallel_size > 1 and t.gpus:
            move = list(hs.gpus)[-hs.tensor_parallel_size:]
            dp = hs.data_parallel_size - 1
            fix = (f"move GPU {','.join(map(str, move))} from the server to training (data parallel "
                   f"{hs.data_parallel_size} -> {dp}, training on {len(t.gpus) + len(move)} GPUs)")
            fc = {"hidden_states.gpus": [g for g in hs.gpus if g not in move],
                  "hidden_states.data_parallel_size": dp,
                  "training.gpus": list(t.gpus) + move}
        elif t.gpus and idle:
            fix = f"give training idle GPU {idle[0]} ({len(t.gpus)} -> {len(t.gpus) + 1} processes)"
            fc = {"training.gpus": list(t.gpus) + [idle[0]]}
        else:
            return None  # nothing to move: the split is as good as it gets
        return Finding("server_idle", f"{head}: training is the bottleneck; {fix}", fix[0].upper() + fix[1:], fc,
                       "info", frac, n)
    return None
