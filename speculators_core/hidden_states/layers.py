"""Layer ids of a hidden-states server: resolved from the target config and validated before launch.

vLLM stores each id once in ascending order and crashes at the first request on duplicates, so both
servers (vLLM via launch_vllm, and the built-in hf engine) validate with the same rules.
"""

from __future__ import annotations

from typing import Optional, Sequence
from speculators_core.errors import SpeculatorsError


class LayerIdError(SpeculatorsError, ValueError):
    pass


def resolve_layer_ids(model: str, ids: Optional[Sequence[int]], flag: str = "--target-layer-ids") -> tuple[list[int], int]:
    """(ids, L): `ids` or the default [2, L//2, L-3, L] for `model`, validated; LayerIdError otherwise."""
    from speculators_core.config import default_layer_ids, layer_id_problems
    from speculators_core.target_info import TargetNotFound, load_target

    try:
        target = load_target(model)
    except TargetNotFound as e:
        raise LayerIdError(f"{model}: cannot read the target config to check {flag}: {e}") from None
    L = target.num_hidden_layers
    out = list(ids) if ids else default_layer_ids(L)
    probs = layer_id_problems(out, L, flag)
    if probs:
        raise LayerIdError("; ".join(str(p) for p in probs))
    return out, L
