"""Where the hidden-states server writes its files (`hidden_states.storage_dir`), as the planner
gives it to the server, the trainer and the exported script: always an absolute path (the server
and the trainer may run in other directories), and by default for a vLLM server on GPUs a private
directory in /dev/shm (RAM: the files are written and read once, in seconds) when it has room for
the files in flight; containers often give /dev/shm only 64 MB, so the disk default is the fallback.
"""

from __future__ import annotations

import os
import shutil
from typing import Callable, Optional

from speculators_core.config import RunConfig

SHM = "/dev/shm"
GIB = 1024 ** 3


def scratch_bytes(cfg: RunConfig, target) -> Optional[int]:
    """Bytes of hidden-states files in flight at once (the trainer's max_in_flight requests of up to
    seq_length tokens x the extracted layers x hidden size, bf16), or None without the target's facts."""
    if target is None or not target.hidden_size:
        return None
    layers = len(cfg.hidden_states.target_layer_ids or []) or 4
    per_file = cfg.data.seq_length * layers * target.hidden_size * 2
    return max(1, cfg.training.max_in_flight) * per_file


def _free(path: str) -> int:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0


def planned_storage_dir(cfg: RunConfig, target=None, run_dir: Optional[str] = None,
                        free: Optional[Callable[[str], int]] = None, shm: Optional[str] = None) -> str:
    """The absolute storage directory of this run's server (see the module's docstring). /dev/shm
    is used when it has twice the bytes in flight plus 1 GiB free."""
    free = free or _free
    shm = shm or SHM
    hs = cfg.hidden_states
    if hs.storage_dir:
        return os.path.abspath(os.path.expanduser(hs.storage_dir))
    disk = os.path.abspath(os.path.expanduser(cfg.storage_dir))
    need = scratch_bytes(cfg, target)
    # Several nodes: the trainer reads what a server on another node wrote, so the storage must be
    # on the shared filesystem (cluster.shared_dir), never this node's RAM.
    if cfg.cluster.multi_node or cfg.cluster.server_endpoints:
        return disk
    if hs.engine != "vllm" or not hs.gpus or need is None or not os.path.isdir(shm):
        return disk
    if free(shm) < 2 * need + GIB:
        return disk
    name = os.path.basename(os.path.normpath(run_dir)) if run_dir else cfg.run.name
    return os.path.join(shm, f"speculators-tui-{os.getuid()}-{name}")
