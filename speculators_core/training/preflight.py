"""What the trainer checks before it loads anything heavy, and the per-step loss guard.

Every failure here is a `SpeculatorsError` with a fix: the stage CLI prints it without a traceback
and exits with its documented code (`speculators_core.errors.ExitCode`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from speculators_core.errors import ExitCode, SpeculatorsError


class TrainUsageError(SpeculatorsError, ValueError):
    """A flag, file or environment variable the trainer cannot work with."""

    exit_code = ExitCode.USAGE


class NonFiniteLoss(SpeculatorsError, FloatingPointError):
    """A training step's loss is NaN or Inf: training stops before the optimizer step."""

    fix = ("check those rows' data and hidden states (e.g. a target run in fp16 that overflows); lower --lr "
           "or train in fp32 (--dtype fp32); then continue from the last good checkpoint with --resume")


def api_key_from_env(name: Optional[str]) -> Optional[str]:
    """`--api-key-env NAME`: the key from os.environ[NAME] (None when the flag is not given)."""
    from speculators_core.hidden_states.client import key_for_flag

    return key_for_flag(name, TrainUsageError)


def check_args(a) -> Optional[str]:
    """Flag combinations and inputs that cannot work, before any model is loaded; returns the API key."""
    if a.on_missing == "generate":
        if not a.vllm_endpoint:
            raise TrainUsageError("--on-missing generate needs --vllm-endpoint (the hidden-states server URL)",
                                  fix="give --vllm-endpoint URL, or use --on-missing raise with a filled "
                                      "--hidden-states-path")
        if not a.hidden_states_storage:
            raise TrainUsageError("--on-missing generate needs --hidden-states-storage (the directory the "
                                  "server writes its files to)",
                                  fix="give --hidden-states-storage DIR, the server's --hidden-states-path")
    elif not a.hidden_states_path:
        raise TrainUsageError(f"--on-missing {a.on_missing} reads the cache: give --hidden-states-path",
                              fix="fill a cache with python -m speculators_core.generate and pass it")
    if a.on_generate == "cache" and not a.hidden_states_path:
        raise TrainUsageError("--on-generate cache needs --hidden-states-path (the cache directory)")
    if a.from_pretrained:
        check_pretrained(Path(a.from_pretrained))
    return api_key_from_env(a.api_key_env) if a.on_missing == "generate" else None


def check_pretrained(p: Path) -> None:
    fix = "point --from-pretrained at a drafter checkpoint directory (<save>/<epoch>/ or checkpoint_best)"
    if not p.is_dir():
        raise TrainUsageError(f"--from-pretrained {p}: no such directory", fix=fix)
    try:
        json.loads((p / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise TrainUsageError(f"--from-pretrained {p}: config.json is missing or not JSON ({exc})", fix=fix) from None
    if not (p / "model.safetensors").is_file():
        raise TrainUsageError(f"--from-pretrained {p}: no model.safetensors", fix=fix)


def client_kwargs(a, api_key: Optional[str]) -> dict:
    """SyncHiddenStatesClient's keywords from the flags; `api_key` only when one is set (clients
    without that parameter keep working when it is not)."""
    kw = dict(endpoints=a.vllm_endpoint, storage_dir=a.hidden_states_storage, max_in_flight=a.max_in_flight,
              max_files_on_disk=a.max_files_on_disk, request_timeout=a.request_timeout,
              grace_period=a.server_grace_period)
    if api_key:
        kw["api_key"] = api_key
    return kw


def check_finite(loss, d, step: int, epoch: int, rows: list[int]) -> None:
    """Stop (on every rank) when any rank's loss is not finite, before backward and the optimizer
    step, so neither the weights nor the optimizer state take it in."""
    LossGuard(scaler_enabled=False).check(loss, d, step, epoch, rows)


class LossGuard:
    """The per-step loss check. Without loss scaling a non-finite loss stops at once (before backward).
    With fp16's GradScaler an overflow is expected now and then: the scaler skips that step and lowers
    its scale, so only `limit` non-finite losses in a row stop the run (the scale cannot recover)."""

    def __init__(self, scaler_enabled: bool, limit: int = 10) -> None:
        self.scaler_enabled, self.limit, self.run = scaler_enabled, limit, 0

    def check(self, loss, d, step: int, epoch: int, rows: list[int]) -> None:
        import torch

        from speculators_core.training.distributed import all_reduce_sum

        bad = torch.tensor([0.0 if bool(torch.isfinite(loss.detach()).all()) else 1.0], dtype=torch.float64,
                           device=loss.device)
        all_reduce_sum(bad, d)
        n = int(bad.item())
        self.run = self.run + 1 if n else 0
        if n and (not self.scaler_enabled or self.run >= self.limit):
            where = (f"the batch's rows (sample ids) {sorted(rows)}" if d.world == 1 else
                     f"{n} of {d.world} ranks; rank {d.rank}'s rows (sample ids) {sorted(rows)}")
            run = f" ({self.run} consecutive non-finite losses: fp16 loss scaling cannot recover)" \
                if self.scaler_enabled else ""
            raise NonFiniteLoss(f"non-finite loss at step {step} (epoch {epoch}){run}: {where}; training stopped, "
                                f"the last good checkpoint is kept")
