"""Old path of `speculators_core.target` (kept while run-side modules still import it)."""

from speculators_core.target import *  # noqa: F401,F403
from speculators_core.target import DTYPE_BYTES, TargetInfo, TargetNotFound, find_config, human_count, load_target, try_load_target  # noqa: F401
