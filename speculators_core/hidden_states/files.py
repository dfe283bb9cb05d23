"""Hidden-states files: the safetensors layout, the `.lock` protocol, path checks and the cache.

The server (vLLM's extraction connector or our `hf` engine) writes `<DIR>/<request id>.safetensors`
with `hidden_states` [T, num_layers, H] (model dtype) and `token_ids` [T] int64, and holds an
exclusive `flock` on `<file>.lock` until the file is complete. A reader takes a shared flock (it
waits for the writer), reads, then removes the lock file. No lock file = no locking.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import re
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Union

from speculators_core.hidden_states.errors import HiddenStatesError, UnsafePath

if TYPE_CHECKING:  # torch is imported lazily: this package is reachable from the app's modules.
    import torch

PathLike = Union[str, os.PathLike]
FLOAT_DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class HiddenStates:
    hidden_states: "torch.Tensor"  # [T, num_layers, H], layers in ascending id order (last = L)
    token_ids: "torch.Tensor"  # [T] int64

    @property
    def num_tokens(self) -> int:
        return int(self.token_ids.shape[0])

    @property
    def nbytes(self) -> int:
        return self.hidden_states.numel() * self.hidden_states.element_size() + self.token_ids.numel() * 8


def cache_path(cache_dir: PathLike, row_id: Union[int, str]) -> Path:
    """<cache_dir>/hs_<row_id>.safetensors"""
    return Path(cache_dir) / f"hs_{row_id}.safetensors"


def lock_path(path: PathLike) -> str:
    return os.fspath(path) + ".lock"


def safe_server_path(returned: object, storage_dir: PathLike) -> Path:
    """`<storage_dir>/<name>` for a server-returned path that names a direct child of `storage_dir`
    (its directory part resolving to the storage directory), else UnsafePath.

    Only the name is used afterwards, opened relative to the storage directory's own descriptor
    (`open_storage_dir`) without following links, so swapping a directory or the file for a link
    after this check reaches nothing outside. A relative path is taken from the current directory
    (as the server process would treat its own relative storage path). Nothing is touched here.
    """
    if not isinstance(returned, str) or not returned or "\x00" in returned:
        raise UnsafePath(f"server returned an invalid hidden_states_path {returned!r}; refusing it")
    root = os.path.realpath(storage_dir)
    absolute = os.path.abspath(returned)
    parent, name = os.path.split(absolute)
    if not name or name in (".", "..") or os.path.realpath(parent) != root:
        raise UnsafePath(
            f"server returned hidden_states_path {returned!r}: outside the configured storage directory (not a file "
            f"directly inside {root}); refusing to read, move or delete it. Fix: start the server with "
            f"--hidden-states-path {root} (the client's --hidden-states-storage must name the same directory)"
        )
    if not name.endswith(".safetensors"):
        raise UnsafePath(f"server returned hidden_states_path {returned!r}: not a .safetensors file; refusing it")
    return Path(root) / name


def open_storage_dir(storage_dir: PathLike) -> int:
    """A descriptor of the (resolved) storage directory; every server file is opened relative to it."""
    try:
        return os.open(os.fspath(storage_dir), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise HiddenStatesError(f"hidden-states storage directory {storage_dir}: cannot open it ({e}); it must "
                                f"exist and be the server's --hidden-states-path") from e


_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _open_regular(dir_fd: int, name: str, what: str) -> Optional[tuple[int, os.stat_result]]:
    """(fd, stat) of the regular file `name` in `dir_fd`; None if missing; UnsafePath if it is a link,
    FIFO, device or directory. Non-blocking: a FIFO never parks the caller."""
    try:
        fd = os.open(name, _OPEN_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EMLINK):
            raise UnsafePath(f"{what} {name} is a symbolic link; refusing to follow it") from e
        raise HiddenStatesError(f"{what} {name}: cannot open it ({e})") from e
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafePath(f"{what} {name} is not a regular file (mode {stat.filemode(st.st_mode)}); refusing it")
    return fd, st


def _try_shared_lock(dir_fd: int, name: str) -> Optional[bool]:
    """True: lock acquired and released (writer done). False: writer still holds it. None: no lock file."""
    opened = _open_regular(dir_fd, name + ".lock", "lock file")
    if opened is None:
        return None
    fd = opened[0]
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def _lstat(dir_fd: int, name: str) -> Optional[os.stat_result]:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


class WriterGone(HiddenStatesError):
    """The server answered, then released its lock without writing the file: the writer died (a
    killed server) or gave up. The sample itself is fine; asking again may well succeed."""


async def wait_for_file(dir_fd: int, name: str, timeout: float, poll: float = 0.002, max_poll: float = 0.05) -> None:
    """Wait until the writer has finished `name` in the storage directory (the `.lock` protocol), or
    raise HiddenStatesError (UnsafePath for a lock or file that is not a regular file).

    With a lock file: poll a non-blocking shared flock (cancellable, no thread parked in the kernel).
    Without one: the writer does not lock; wait for the file to appear and its size to stop changing.
    """
    deadline = time.monotonic() + timeout
    delay = poll
    last_size = -1
    while True:
        state = _try_shared_lock(dir_fd, name)
        st = _lstat(dir_fd, name)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise UnsafePath(f"{name} is not a regular file (mode {stat.filemode(st.st_mode)}); refusing it")
        if state is True:
            if st is not None:
                return
            raise WriterGone(
                f"{name}: the server released the lock but wrote no file (the request was aborted, the "
                f"write failed or the server died; see the server log)"
            )
        if state is None:
            size = st.st_size if st is not None else -1
            if size > 0 and size == last_size:
                return
            last_size = size
        if time.monotonic() > deadline:
            what = "lock still held by the writer" if state is False else "file not written"
            raise HiddenStatesError(f"{name}: {what} after {timeout:.0f} s (raise --request-timeout?)")
        await asyncio.sleep(delay)
        delay = min(max_poll, delay * 1.5)


def read_server_file(dir_fd: int, name: str) -> tuple[bytes, os.stat_result]:
    """The bytes of the regular file `name` in the storage directory, read through one descriptor."""
    opened = _open_regular(dir_fd, name, "hidden-states file")
    if opened is None:
        raise HiddenStatesError(f"{name}: the file disappeared before it was read")
    fd, st = opened
    with os.fdopen(fd, "rb") as f:
        data = f.read(st.st_size + 1)
    if len(data) != st.st_size:
        raise HiddenStatesError(f"{name}: the file changed size while being read ({st.st_size} -> {len(data)}+ bytes)")
    return data, st


def remove_server_file(dir_fd: int, name: str) -> None:
    """Unlink `name` and its lock from the storage directory; only regular files (never what a link names)."""
    for n in (name, name + ".lock"):
        st = _lstat(dir_fd, n)
        if st is not None and stat.S_ISREG(st.st_mode):
            try:
                os.unlink(n, dir_fd=dir_fd)
            except FileNotFoundError:
                pass


def move_server_file(dir_fd: int, name: str, st: os.stat_result, data: bytes, dst: Path) -> None:
    """Put the checked file into the cache at `dst`: a rename when it is still the file that was read
    (same device and inode, a regular file), else the bytes that were read, written atomically."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(name, dst, src_dir_fd=dir_fd)
        moved = os.lstat(dst)
        if stat.S_ISREG(moved.st_mode) and (moved.st_dev, moved.st_ino) == (st.st_dev, st.st_ino):
            return
        remove_quietly(dst)  # swapped between the read and the rename: keep what was checked
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dst)
    except BaseException:
        remove_quietly(tmp)
        raise


def load_file_checked(
    path: PathLike,
    expected_ids: Optional[Sequence[int]] = None,
    num_layers: Optional[int] = None,
    hidden_size: Optional[int] = None,
    dtype: Optional[str] = None,
) -> HiddenStates:
    """Load one hidden-states file and check keys, shapes, dtype, NaN/Inf and token ids."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        data = load_file(os.fspath(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise HiddenStatesError(f"{path}: cannot read the hidden-states file ({e})") from e
    return check_tensors(data, path, expected_ids, num_layers, hidden_size, dtype)


def load_bytes_checked(raw: bytes, label: PathLike, expected_ids: Optional[Sequence[int]] = None,
                       num_layers: Optional[int] = None, hidden_size: Optional[int] = None,
                       dtype: Optional[str] = None) -> HiddenStates:
    """`load_file_checked` for a file's bytes (read through a descriptor; `label` names it in errors)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        data = load(raw)
    except (SafetensorError, OSError, ValueError) as e:
        raise HiddenStatesError(f"{label}: cannot read the hidden-states file ({e})") from e
    return check_tensors(data, label, expected_ids, num_layers, hidden_size, dtype)


def check_tensors(data: dict, path: PathLike, expected_ids: Optional[Sequence[int]] = None,
                  num_layers: Optional[int] = None, hidden_size: Optional[int] = None,
                  dtype: Optional[str] = None) -> HiddenStates:
    """Keys, shapes, dtype, token ids and NaN/Inf of a loaded hidden-states file."""
    import torch

    missing = [k for k in ("hidden_states", "token_ids") if k not in data]
    if missing:
        raise HiddenStatesError(f"{path}: missing tensor(s) {missing}; found {sorted(data)}")
    hs, ids = data["hidden_states"], data["token_ids"]
    if hs.dim() != 3:
        raise HiddenStatesError(f"{path}: hidden_states must be [tokens, layers, hidden], got shape {tuple(hs.shape)}")
    if ids.dim() != 1 or ids.shape[0] != hs.shape[0]:
        raise HiddenStatesError(
            f"{path}: token_ids shape {tuple(ids.shape)} does not match hidden_states {tuple(hs.shape)}"
        )
    name = str(hs.dtype).replace("torch.", "")
    if name not in FLOAT_DTYPES:
        raise HiddenStatesError(f"{path}: hidden_states dtype {name} is not one of {FLOAT_DTYPES}")
    if dtype is not None and name != dtype:
        raise HiddenStatesError(f"{path}: hidden_states dtype {name}, expected {dtype}")
    if num_layers is not None and hs.shape[1] != num_layers:
        raise HiddenStatesError(
            f"{path}: {hs.shape[1]} layers in the file, expected {num_layers} (server started with other "
            f"--target-layer-ids?)"
        )
    if hidden_size is not None and hs.shape[2] != hidden_size:
        raise HiddenStatesError(f"{path}: hidden size {hs.shape[2]}, expected {hidden_size} (another target model?)")
    ids = ids.to(torch.int64)
    if expected_ids is not None:
        if ids.shape[0] != len(expected_ids):
            raise HiddenStatesError(f"{path}: {ids.shape[0]} tokens in the file, {len(expected_ids)} sent")
        if not torch.equal(ids, torch.as_tensor(list(expected_ids), dtype=torch.int64)):
            raise HiddenStatesError(f"{path}: token_ids in the file differ from the ids sent")
    if not all_finite(hs):
        raise HiddenStatesError(f"{path}: hidden_states contain NaN or Inf")
    return HiddenStates(hidden_states=hs, token_ids=ids)


def all_finite(hs) -> bool:
    """`torch.isfinite(hs).all()`, fast: a NaN or Inf anywhere makes the fp32 column sums non-finite,
    and summing is ~25x cheaper than isfinite on bf16 on a CPU (a 8192-token row of an 8B target:
    ~0.1 s instead of ~3 s). Only when a sum is not finite (a NaN/Inf, or finite values summing past
    fp32's range) does the exact element-wise test decide."""
    import torch

    if hs.numel() == 0 or bool(torch.isfinite(hs.sum(dim=0, dtype=torch.float32)).all()):
        return True
    return bool(torch.isfinite(hs).all())


def load_cached(cache_dir: PathLike, row_id: Union[int, str]) -> Optional[HiddenStates]:
    """The cached sample of `row_id`, or None if it is not cached. A corrupt file raises HiddenStatesError."""
    p = cache_path(cache_dir, row_id)
    if not p.exists():
        return None
    return load_file_checked(p)


_CACHE_NAME = re.compile(r"hs_[^/]+\.safetensors$")


def sweep_server_files(storage_dir: PathLike, since: float) -> tuple[int, int]:
    """Delete what a hidden-states server wrote under `storage_dir` at or after `since` (a
    `time.time()`) and no client took: its `*.safetensors` files (never the cache's
    `hs_<row>.safetensors`), their `.lock` files and safetensors' `.tmp*` write files. For after a
    run, when requests that timed out or were cancelled left files behind. Symlinks are neither
    followed nor removed. Returns (files removed, bytes freed)."""
    root = os.fspath(storage_dir)
    if not os.path.isdir(root):
        return 0, 0
    n = freed = 0
    for dirpath, _dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames:
            if not (name.endswith((".safetensors", ".safetensors.lock")) or name.startswith(".tmp")):
                continue
            if _CACHE_NAME.match(name):
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_mtime < since:
                continue
            remove_quietly(path)
            n += 1
            freed += st.st_size
    return n, freed


def remove_quietly(*paths: PathLike) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
