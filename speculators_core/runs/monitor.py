"""What the supervisor watches while training runs: the bottleneck detector and the GPU sampler."""

from __future__ import annotations

import time
from typing import Optional

from speculators_core.plan.stages import Stage
from speculators_core.runs import layout
from speculators_core.runs.server import http_get


class MonitorMixin:
    """Supervisor methods: bottleneck warnings (from the metrics tail and /metrics), GPU samples."""

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
        from speculators_core.runs.bottleneck import PROMPT_TOKENS, analyze, parse_prometheus

        new = self._metrics.records(layout.METRICS)
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
            text = http_get(self._health_url(server).rsplit("/health", 1)[0] + "/metrics")
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
        from speculators_core.runs.gpu import GpuSampler, gpu_roles, probe_gpus

        probe = self._probe if self._probe is not None else probe_gpus(self.environ)
        self._gpus = list(probe.gpus)
        if not probe.gpus:
            return
        roles = gpu_roles(self.cfg.hidden_states.gpus, self.cfg.training.gpus, [g.index for g in probe.gpus])
        self._sampler = GpuSampler(self.environ).start(self.run_dir / layout.GPU, roles, self.gpu_interval,
                                                       groups=self._stage_groups)

    def _stage_groups(self) -> dict[int, str]:
        """pgid -> stage name of the running children (read from the sampler's thread)."""
        return {c.pid: name for name, c in list(self._children.items())}
