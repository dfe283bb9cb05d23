"""Checkpoints: `<save>/<epoch>/` in the format vLLM serves (spec section 5), written atomically.

Each directory holds `config.json`, `model.safetensors` (bf16 floats, d2t/t2d), the optimizer and
scheduler `state_dict`s, and `trainer_state.pt` (step/epoch counters, RNG states, validation loss
and the fp32 master weights, so a resumed run continues exactly rather than from bf16 copies).
It is written under a temporary name and renamed into place; a kill during a save leaves the
previous checkpoints intact, and stray temporary directories are removed at the next start.
`checkpoint_best` is a relative symlink to the epoch with the lowest validation loss.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any, Optional

import torch

from speculators_core.fsutil import replace_dir

BEST_LINK = "checkpoint_best"
TMP_PREFIX = ".tmp-ckpt-"
REQUIRED_FILES = ("config.json", "model.safetensors", "optimizer_state_dict.pt", "scheduler_state_dict.pt",
                  "trainer_state.pt")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "python" in state:
        random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(state["cuda"])
        except RuntimeError:
            pass


def save_checkpoint(save_dir: Path, epoch: int, *, tensors: dict[str, torch.Tensor], config: dict,
                    optimizer_state: dict, scheduler_state: dict, trainer_state: dict) -> Path:
    """Write `<save_dir>/<epoch>/` atomically; returns its path."""
    from safetensors.torch import save_file

    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    tmp = save_dir / f"{TMP_PREFIX}{epoch}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        torch.save(optimizer_state, tmp / "optimizer_state_dict.pt")
        torch.save(scheduler_state, tmp / "scheduler_state_dict.pt")
        torch.save(trainer_state, tmp / "trainer_state.pt")
        for name in REQUIRED_FILES:
            os.chmod(tmp / name, 0o644)
            _fsync_file(tmp / name)
        _fsync_dir(tmp)
        final = save_dir / str(epoch)
        replace_dir(tmp, final)
        _fsync_dir(save_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def set_best(save_dir: Path, epoch: int) -> Path:
    """Point `checkpoint_best` at `<epoch>` (relative symlink, replaced atomically)."""
    save_dir = Path(save_dir)
    link = save_dir / BEST_LINK
    tmp = save_dir / f".{BEST_LINK}.tmp-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(str(epoch), tmp)
    os.replace(tmp, link)
    _fsync_dir(save_dir)
    return link


def is_complete(ckpt: Path) -> bool:
    return ckpt.is_dir() and all((ckpt / f).exists() for f in REQUIRED_FILES)


def epoch_dirs(save_dir: Path) -> list[tuple[int, Path]]:
    """Complete `<save>/<epoch>/` directories, by epoch."""
    save_dir = Path(save_dir)
    if not save_dir.is_dir():
        return []
    out = []
    for p in save_dir.iterdir():
        if p.name.isdigit() and not p.is_symlink() and is_complete(p):
            out.append((int(p.name), p))
    return sorted(out)


def latest_checkpoint(save_dir: Path) -> Optional[tuple[int, Path]]:
    dirs = epoch_dirs(save_dir)
    return dirs[-1] if dirs else None


def clean_stale(save_dir: Path) -> list[Path]:
    """Remove temporary directories left by a run killed mid-save; returns what was removed."""
    save_dir = Path(save_dir)
    removed = []
    if save_dir.is_dir():
        for p in save_dir.iterdir():
            if p.name.startswith(TMP_PREFIX) or (p.name.startswith(".") and ".old-" in p.name):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


def load_trainer_state(ckpt: Path) -> dict:
    return torch.load(Path(ckpt) / "trainer_state.pt", map_location="cpu", weights_only=False)


def load_drafter_tensors(ckpt: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = Path(ckpt) / "model.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no model.safetensors; expected a drafter checkpoint directory")
    return load_file(str(path))
