"""Compatibility name for `speculators_core.plan.flags` (the stage CLIs' parsers).

Kept because the stage modules (prepare, train, generate, hf_server, launch_vllm) import it; they
move to `plan.flags` with the stage-side refactor.
"""

from speculators_core.plan.flags import *  # noqa: F401,F403
from speculators_core.plan.flags import (  # noqa: F401  (names starting with _ are not star-exported)
    _add_bool, _add_dtype, _client_args, _dtype,
)
