"""After a run: delete the hidden-states files no request took from the server's storage directory.

Only the server's own request files are touched: direct children of the storage directory named
the way the servers name them, `cmpl-<id>.safetensors`, its `.lock` and safetensors' partial
`.tmpXXXXXX` writes. The hf engine writes
`cmpl-<32 hex>`; vLLM's hidden-states connector writes `<request id>.safetensors` with request ids
`cmpl-<16 hex>-<prompt index>-<8 hex>` (our clients send no X-Request-Id). Never anything in a
subdirectory (a checkpoint directory that ended up under the storage directory), never a cache
file (`hs_<row>.safetensors`), never a symlink, never a file older than the run's server.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Callable, Optional

from speculators_core.runs import rundir

#: A request file a hidden-states server wrote (hf engine or vLLM's connector), or its lock.
REQUEST_FILE = re.compile(r"cmpl-[0-9a-f]{16,32}(?:-[0-9]+-[0-9a-f]{8})?\.safetensors(?:\.lock)?")
#: A partial write of one: both servers write with safetensors' `save_file`, which (safetensors >= 0.6,
#: Rust `tempfile::NamedTempFile::new_in`) writes `.tmp<6 random alphanumerics>` beside the target and
#: renames it; a server killed mid-write leaves it behind.
TEMP_FILE = re.compile(r"\.tmp[A-Za-z0-9]{6}")


def sweep_request_files(storage_dir: str, since: float) -> tuple[int, int]:
    """Delete the request files (`REQUEST_FILE`) and partial writes (`TEMP_FILE`): regular files directly in `storage_dir`, modified at
    or after `since`). Returns (files removed, bytes freed)."""
    n = freed = 0
    try:
        entries = list(os.scandir(storage_dir))
    except FileNotFoundError:
        return 0, 0
    for entry in entries:
        if not (REQUEST_FILE.fullmatch(entry.name) or TEMP_FILE.fullmatch(entry.name)):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_mtime < since:
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        n += 1
        freed += st.st_size
    return n, freed


def sweep_scratch(run_dir: Path, storage_dir: str, since: Optional[float], event: Callable[..., None]) -> None:
    """Every child is gone (called before the run's last event): delete the server files no request
    took (requests that timed out or were cancelled by a stop), unless another live run shares the
    storage directory. `since`: when this run first started its server (None: it never did)."""
    from speculators_core.runs.control import is_running

    if since is None:
        return
    storage = os.path.realpath(storage_dir)
    try:
        for other in rundir.list_runs(run_dir.parent):
            if other.resolve() == run_dir or not is_running(other):
                continue
            if os.path.realpath(rundir.load_config(other).storage_dir) == storage:
                event("scratch_kept", f"left {storage} as it is: run {other.name} uses it too")
                return
    except Exception:  # an unreadable neighbour: do not guess, keep the files
        return
    try:
        n, freed = sweep_request_files(storage, since - 1.0)
    except OSError as exc:
        event("warning", f"could not clean {storage}: {exc}", kind="scratch")
        return
    if n:
        event("scratch_swept", f"deleted {n} hidden-states file(s) no request took "
                               f"({freed / 2**20:.1f} MiB) from {storage}", files=n, bytes=freed)
