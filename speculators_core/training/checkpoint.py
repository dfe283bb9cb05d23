"""Checkpoints: `<save>/<epoch>/` in the format vLLM serves (spec section 5), written atomically.

Each directory holds `config.json`, `model.safetensors` (bf16 floats, d2t/t2d), the optimizer and
scheduler `state_dict`s, and `trainer_state.pt` (step/epoch counters, RNG states, validation loss
and the fp32 master weights, so a resumed run continues exactly rather than from bf16 copies).
Save protocol, safe at every kill point (`clean_stale` finishes or undoes it at the next start):
1. write everything into `.tmp-ckpt-<epoch>-<pid>/` and fsync it (a kill here: it is deleted);
2. rename it to `.ready-ckpt-<epoch>-<pid>/`: from now on it is known complete (a kill here: the
   next start puts it in place);
3. if `<epoch>/` exists, rename it to `.old-ckpt-<epoch>-<pid>/` (a kill here: the ready copy goes in);
4. rename the ready copy to `<epoch>/` (a kill here: the old copy is deleted, never the new one);
5. delete the old copy.
Entries of a live process other than this one (the pid ends the name) are a running save and are
left alone. Resume (`load_resumable`) loads the latest checkpoint completely before trusting it and
falls back to the previous complete epoch, saying so, when a file is corrupt (a format error; an
OSError or MemoryError is raised, never taken for corruption); epoch directories none of which loads
are an error (NoUsableCheckpoint), never a fresh start over them. Every `.pt` file is loaded with
`weights_only=True`: a crafted file cannot run code. `checkpoint_best` is a relative symlink to the
epoch with the lowest finite validation loss.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from speculators_core.errors import SpeculatorsError

BEST_LINK = "checkpoint_best"
TMP_PREFIX = ".tmp-ckpt-"      # being written: incomplete
READY_PREFIX = ".ready-ckpt-"  # complete, not yet in place
OLD_PREFIX = ".old-ckpt-"      # the copy a save replaced
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
    # plain lists/tuples of ints and tensors only: loadable with weights_only=True
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "python" in state:
        v, internal, gauss = state["python"]
        random.setstate((v, tuple(internal), gauss))
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
    tag = f"{epoch}-{os.getpid()}"
    tmp, ready, old = (save_dir / f"{p}{tag}" for p in (TMP_PREFIX, READY_PREFIX, OLD_PREFIX))
    for stale in (tmp, ready, old):
        if stale.exists():
            shutil.rmtree(stale)
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
    except Exception:  # a failed write (disk full): the previous checkpoints are untouched
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.replace(tmp, ready)
    _fsync_dir(save_dir)
    _put_in_place(ready, save_dir / str(epoch), old)
    return save_dir / str(epoch)


def _put_in_place(ready: Path, final: Path, old: Path) -> None:
    """Steps 3-5 of the protocol: a complete `ready` copy replaces `final`."""
    if final.exists() or final.is_symlink():
        os.replace(final, old)
    os.replace(ready, final)
    _fsync_dir(final.parent)
    if old.exists():
        shutil.rmtree(old)


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


def _epoch_of(name: str, prefix: str) -> Optional[str]:
    rest = name[len(prefix):]
    epoch = rest.split("-", 1)[0]
    return epoch if epoch.isdigit() else None


def _live_writer(name: str) -> bool:
    """Is the pid that ends a save's temporary name (`<prefix><epoch>-<pid>`, `...-recover-<pid>`,
    `.checkpoint_best.tmp-<pid>`) another process that runs now (a second trainer on this save dir)?"""
    from speculators_core.procs import pid_alive

    pid = name.rsplit("-", 1)[-1]
    return pid.isdigit() and int(pid) != os.getpid() and pid_alive(int(pid))


def clean_stale(save_dir: Path, log: Optional[Callable[[str], None]] = None) -> list[Path]:
    """Finish or undo a save a kill interrupted (see the module docstring); returns what was removed.

    A complete `.ready-*` copy is put in place (it is newer than any `<epoch>/`); an `.old-*` copy
    is deleted when `<epoch>/` exists, else restored; `.tmp-*` copies and a stray best-link
    temporary are deleted. Entries whose pid is a live process other than this one are left alone:
    they are a running trainer's save in progress, not a killed one's.
    """
    save_dir = Path(save_dir)
    removed: list[Path] = []
    if not save_dir.is_dir():
        return removed
    say = log or (lambda msg: None)
    entries = [p for p in sorted(save_dir.iterdir(), key=lambda p: p.name)
               if not (p.name.startswith(".") and _live_writer(p.name))]
    for p in entries:  # complete new copies first: they win over old ones
        epoch = _epoch_of(p.name, READY_PREFIX) if p.name.startswith(READY_PREFIX) else None
        if epoch is not None and is_complete(p):
            final = save_dir / epoch
            _put_in_place(p, final, save_dir / f"{OLD_PREFIX}{epoch}-recover-{os.getpid()}")
            say(f"finished the save of {final} that a killed run interrupted")
    for p in entries:
        if not (p.exists() or p.is_symlink()):
            continue
        epoch = _epoch_of(p.name, OLD_PREFIX) if p.name.startswith(OLD_PREFIX) else None
        if epoch is not None and not (save_dir / epoch).exists() and is_complete(p):
            os.replace(p, save_dir / epoch)
            say(f"restored {save_dir / epoch} from the copy a killed save had moved aside")
            continue
        if p.name.startswith((TMP_PREFIX, READY_PREFIX, OLD_PREFIX)) or \
                (p.name.startswith(".") and ".old-" in p.name):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
        elif p.name.startswith(f".{BEST_LINK}.tmp-") and (p.is_symlink() or p.is_file()):
            p.unlink()
            removed.append(p)
    _fsync_dir(save_dir)
    return removed


def _read_error(path: Path, exc: OSError) -> "CheckpointReadError":
    return CheckpointReadError(f"{path}: cannot be read ({type(exc).__name__}: {exc}); the file may be fine, "
                               f"so it is not treated as corrupt")


def _load_pt(path: Path) -> Any:
    """`torch.load` that never runs code (weights_only). A format failure is CorruptCheckpoint; an I/O
    failure (permissions, EIO on NFS) is CheckpointReadError and MemoryError propagates: neither says
    anything about the file, so neither may make a resume skip it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise _read_error(path, exc) from exc
    except MemoryError:
        raise
    except Exception as exc:  # truncated, not a torch file, or a pickle that asks for more than tensors
        raise CorruptCheckpoint(f"{path}: cannot be loaded as plain tensors/containers "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None


class CorruptCheckpoint(SpeculatorsError, ValueError):
    """A checkpoint file that cannot be read (truncated, not ours, or a crafted pickle)."""

    fix = "delete that checkpoint directory, or resume from an earlier one"


class CheckpointReadError(SpeculatorsError):
    """A checkpoint file the OS would not read (permissions, an I/O error): not evidence of corruption."""

    fix = "check the file's permissions and the filesystem (e.g. the NFS mount), then run again"


class NoUsableCheckpoint(SpeculatorsError):
    """--resume found epoch directories but none loads: training from scratch would overwrite them."""

    fix = ("repair or move aside the directories listed, or drop --resume and give a new --save-path "
           "to start a fresh run; --resume never trains from scratch over existing checkpoints")


@dataclass
class Resumable:
    epoch: int
    path: Path
    trainer_state: dict
    optimizer_state: dict
    scheduler_state: dict


def verify_checkpoint(ckpt: Path, epoch: int) -> Resumable:
    """Load every file of `<save>/<epoch>/`; raises CorruptCheckpoint naming the bad file."""
    from safetensors.torch import load_file

    ckpt = Path(ckpt)
    try:
        json.loads((ckpt / "config.json").read_bytes().decode("utf-8"))
    except OSError as exc:
        raise _read_error(ckpt / "config.json", exc) from exc
    except ValueError as exc:
        raise CorruptCheckpoint(f"{ckpt / 'config.json'}: not readable JSON ({exc})") from None
    try:
        load_file(str(ckpt / "model.safetensors"))
    except OSError as exc:
        raise _read_error(ckpt / "model.safetensors", exc) from exc
    except MemoryError:
        raise
    except Exception as exc:  # SafetensorError: truncated or not a safetensors file
        raise CorruptCheckpoint(f"{ckpt / 'model.safetensors'}: not readable ({exc})") from None
    tstate = _load_pt(ckpt / "trainer_state.pt")
    if not isinstance(tstate, dict) or tstate.get("epoch") != epoch:
        raise CorruptCheckpoint(f"{ckpt / 'trainer_state.pt'}: records epoch "
                                f"{tstate.get('epoch') if isinstance(tstate, dict) else '?'}, not {epoch}")
    return Resumable(epoch, ckpt, tstate, _load_pt(ckpt / "optimizer_state_dict.pt"),
                     _load_pt(ckpt / "scheduler_state_dict.pt"))


def load_resumable(save_dir: Path, log: Optional[Callable[[str], None]] = None) -> Optional[Resumable]:
    """The latest checkpoint that loads completely; a corrupt one is reported and the previous
    complete epoch used instead. None when there is no epoch directory at all; NoUsableCheckpoint
    (listing why each was rejected) when there are some but none loads. An I/O error is raised as is."""
    say = log or (lambda msg: None)
    dirs = epoch_dirs(save_dir)
    save_dir = Path(save_dir)
    rejected = [f"{p}: incomplete (lacks {', '.join(f for f in REQUIRED_FILES if not (p / f).exists())})"
                for p in sorted(save_dir.iterdir()) if p.name.isdigit() and p.is_dir() and not p.is_symlink()
                and not is_complete(p)] if save_dir.is_dir() else []
    for i in range(len(dirs) - 1, -1, -1):
        epoch, path = dirs[i]
        try:
            return verify_checkpoint(path, epoch)
        except CorruptCheckpoint as exc:
            rejected.append(f"{path}: {exc}")
            if i:
                say(f"checkpoint {path} is unusable: {exc}; falling back to epoch {dirs[i - 1][0]} ({dirs[i - 1][1]})")
    if rejected:
        raise NoUsableCheckpoint(f"--resume: no checkpoint in {save_dir} is usable:\n  " + "\n  ".join(rejected))
    return None


class ResumeFailed(SpeculatorsError):
    """Rank 0 could not load the checkpoint to resume from (its own error says why)."""

    fix = "see rank 0's message above"


def load_resumable_on_rank0(save_dir: Path, d, log: Optional[Callable[[str], None]] = None) -> Optional[Resumable]:
    """`load_resumable` read by rank 0 only (each rank reading multi-GB optimizer pickles from a
    shared filesystem multiplies the I/O and host memory by the world size). The other ranks get the
    small parts (epoch, path, trainer state without the weights, scheduler state) by a broadcast and
    an empty optimizer state: `restore` and `broadcast_model_state` send them the tensors. An error
    on rank 0 stops every rank (rank 0 with its own error)."""
    if not d.enabled:
        return load_resumable(save_dir, log=log)
    import torch.distributed as dist

    payload: list = [None]
    err: Optional[BaseException] = None
    if d.is_main:
        try:
            res = load_resumable(save_dir, log=log)
            payload[0] = ("ok", None if res is None else {
                "epoch": res.epoch, "path": str(res.path), "scheduler_state": res.scheduler_state,
                "trainer_state": {k: v for k, v in res.trainer_state.items() if k != "model"}})
        except BaseException as exc:  # told to the other ranks, then raised here
            err = exc
            payload[0] = ("error", f"{type(exc).__name__}: {exc}")
    dist.broadcast_object_list(payload, src=0)
    if d.is_main:
        if err is not None:
            raise err
        return res
    kind, body = payload[0]
    if kind == "error":
        raise ResumeFailed(f"rank 0 could not load the checkpoint to resume from: {body}")
    if body is None:
        return None
    return Resumable(body["epoch"], Path(body["path"]), body["trainer_state"], {}, body["scheduler_state"])


def broadcast_model_state(model, full_state: dict) -> None:
    """Rank 0's full model state dict into every rank's (sharded) model; the others pass {}."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(model, full_state, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))


def restore(resume: Resumable, model, opt, sched, scaler) -> tuple[int, int, tuple]:
    """Load a resumed checkpoint's optimizer, scheduler, RNG and fp16 loss-scaler state into the live
    objects; returns (start_epoch, step, (best_val_loss, best_epoch)). Under torchrun the optimizer
    state is rank 0's, broadcast tensor by tensor (`load_resumable_on_rank0`)."""
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    tstate = resume.trainer_state
    multi = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    set_optimizer_state_dict(model, opt, resume.optimizer_state,
                             options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=multi))
    sched.load_state_dict(resume.scheduler_state)
    set_rng_state(tstate.get("rng", {}))
    if tstate.get("scaler") and scaler.is_enabled():
        scaler.load_state_dict(tstate["scaler"])
    best = (float(tstate.get("best_val_loss", math.inf)), tstate.get("best_epoch"))
    return int(tstate["epoch"]) + 1, int(tstate["step"]), best


def sync_best(save_dir: Path, best_epoch: Optional[int]) -> None:
    """Make `checkpoint_best` agree with a resumed run's best_epoch (after a fallback the link may name
    an epoch that is about to be retrained): re-point it, or remove it when that epoch is gone."""
    save_dir = Path(save_dir)
    link = save_dir / BEST_LINK
    if best_epoch is not None and is_complete(save_dir / str(best_epoch)):
        if not (link.is_symlink() and os.readlink(link) == str(best_epoch)):
            set_best(save_dir, int(best_epoch))
    elif link.is_symlink() or link.exists():
        link.unlink()
        _fsync_dir(save_dir)


def choose_best(val_loss: Optional[float], best: tuple, epoch: int) -> tuple[bool, tuple]:
    """Is this epoch's checkpoint the new best, and the new (best_loss, best_epoch)? A non-finite
    validation loss is never best; a non-finite recorded best (older runs) is beaten by any finite loss."""
    best_loss, best_epoch = best
    if val_loss is None:  # no validation split: the latest is the best we know
        return (True, (math.inf, epoch)) if best_epoch is None else (False, best)
    if not math.isfinite(val_loss):
        return False, best
    if best_epoch is None or math.isnan(best_loss) or val_loss < best_loss:
        return True, (val_loss, epoch)
    return False, best


def load_trainer_state(ckpt: Path) -> dict:
    return _load_pt(Path(ckpt) / "trainer_state.pt")


def load_drafter_tensors(ckpt: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = Path(ckpt) / "model.safetensors"
    if not path.exists():
        raise CorruptCheckpoint(f"{path}: no model.safetensors; expected a drafter checkpoint directory")
    try:
        return load_file(str(path))
    except Exception as exc:
        raise CorruptCheckpoint(f"{path}: not readable ({exc})") from None
