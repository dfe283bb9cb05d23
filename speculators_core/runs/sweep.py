"""After a run: delete the hidden-states files no request took from the server's storage directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

from speculators_core.runs import rundir


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
    from speculators_core.hidden_states.files import sweep_server_files

    try:
        n, freed = sweep_server_files(storage, since - 1.0)
    except OSError as exc:
        event("warning", f"could not clean {storage}: {exc}", kind="scratch")
        return
    if n:
        event("scratch_swept", f"deleted {n} hidden-states file(s) no request took "
                               f"({freed / 2**20:.1f} MiB) from {storage}", files=n, bytes=freed)
