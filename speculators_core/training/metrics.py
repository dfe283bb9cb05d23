"""The trainer's metrics stream (`<run>/metrics.jsonl`, schema in docs/metrics.md) and optional
experiment loggers (tensorboard / wandb / trackio, only when installed and asked for)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

from speculators_core.fsutil import append_jsonl


class MetricsWriter:
    """Rank 0 appends one JSON object per line, flushed at once; other ranks pass `path=None`."""

    def __init__(self, path: Optional[Path], logger: str = "none", run_name: str = "eagle3") -> None:
        self.path = Path(path) if path else None
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.ext = _ExternalLogger(logger, self.path.parent if self.path else None, run_name) if self.path else None

    def write(self, type_: str, **fields: Any) -> dict:
        rec = {"type": type_, "time": time.time(), **fields}
        if self.path:
            append_jsonl(self.path, rec)
            if self.ext is not None and type_ in ("train", "val"):
                self.ext.log(type_, rec)
        return rec

    def close(self) -> None:
        if self.ext is not None:
            self.ext.close()


class _ExternalLogger:
    def __init__(self, kind: str, run_dir: Optional[Path], run_name: str) -> None:
        self.kind, self.impl = kind, None
        if kind == "none":
            return
        try:
            if kind == "tensorboard":
                from torch.utils.tensorboard import SummaryWriter

                self.impl = SummaryWriter(log_dir=str((run_dir or Path(".")) / "tensorboard"))
            elif kind == "wandb":
                import wandb

                self.impl = wandb.init(project="speculators-tui", name=run_name, dir=str(run_dir or "."))
            elif kind == "trackio":
                import trackio

                trackio.init(project="speculators-tui", name=run_name)
                self.impl = trackio
        except ImportError as exc:
            print(f"[train] warning: --logger {kind} asked for but not installed ({exc}); "
                  f"metrics.jsonl is still written", flush=True)
            self.impl = None

    def log(self, prefix: str, rec: dict) -> None:
        if self.impl is None:
            return
        step = int(rec.get("step", 0))
        scalars = {f"{prefix}/{k}": v for k, v in rec.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("time", "step")}
        if self.kind == "tensorboard":
            for k, v in scalars.items():
                self.impl.add_scalar(k, v, step)
        else:
            self.impl.log(scalars, step=step) if self.kind == "wandb" else self.impl.log(scalars)

    def close(self) -> None:
        if self.impl is None:
            return
        if self.kind == "tensorboard":
            self.impl.close()
        elif self.kind == "wandb":
            self.impl.finish()
        elif self.kind == "trackio":
            self.impl.finish()
