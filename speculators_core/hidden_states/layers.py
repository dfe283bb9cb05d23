"""The one set of rules for the layer ids a hidden-states server extracts.

vLLM stores each id once in ascending order and crashes at the first request on duplicates, so the
config's validation, both servers (vLLM via launch_vllm, the built-in hf engine) and the trainer
check ids with these rules: at least two ids, unique, ascending, 0 < id <= L, the last one = L.
The default is EAGLE-3's [2, L//2, L-3, L].
"""

from __future__ import annotations

from typing import Optional, Sequence

from speculators_core.errors import SpeculatorsError


class LayerIdError(SpeculatorsError, ValueError):
    pass


def default_layer_ids(num_layers: int) -> list[int]:
    """The EAGLE-3 default: three auxiliary layers [2, L//2, L-3] plus L (the verifier's last)."""
    return [2, num_layers // 2, num_layers - 3, num_layers]


def suggest_layer_ids(num_layers: int) -> list[int]:
    """Unique, in-range ids close to the default formula (for fix messages on small models)."""
    L = num_layers
    if L < 4:
        return list(range(1, L + 1))
    ids = sorted({max(1, min(i, L - 1)) for i in (2, L // 2, L - 3)})
    candidate = 1
    while len(ids) < 3:
        if candidate not in ids and candidate < L:
            ids.append(candidate)
        candidate += 1
    return sorted(ids) + [L]


def layer_id_issues(ids: list[int], num_layers: Optional[int]) -> list[tuple[str, str]]:
    """What is wrong with `ids` for a target of `num_layers` layers (None = unknown): (message, fix) pairs."""
    out: list[tuple[str, str]] = []
    if len(ids) < 2:
        return [(f"needs at least 2 ids (auxiliary layers + the last layer), got {ids}",
                 "list the auxiliary layer ids followed by L, e.g. [2, 16, 33, 36]")]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        fix = f"use unique ids, e.g. {suggest_layer_ids(num_layers)}" if num_layers else "use unique ids"
        out.append((f"duplicated layer id(s) {dupes} in {ids}; vLLM crashes on duplicates", fix))
    if ids != sorted(ids) and not dupes:
        out.append((f"ids must be ascending, got {ids}", f"use {sorted(ids)}"))
    if num_layers is not None:
        bad = [i for i in ids if not (0 < i <= num_layers)]
        if bad:
            out.append((f"id(s) {bad} out of range: the target has {num_layers} layers (1..{num_layers})",
                        f"use ids in 1..{num_layers}, e.g. {suggest_layer_ids(num_layers)}"))
        elif ids[-1] != num_layers:
            out.append((f"the last id must be the target's last layer {num_layers}, got {ids[-1]}",
                        f"end the list with {num_layers}"))
    else:
        bad = [i for i in ids if i <= 0]
        if bad:
            out.append((f"id(s) {bad} must be positive", "use ids in 1..L"))
    return out


def check_layer_ids(ids: Sequence[int], num_layers: int, flag: str = "--target-layer-ids") -> list[int]:
    """`ids` as a list when they pass the rules, else LayerIdError naming `flag`, each problem and its fix."""
    ids = list(ids)
    issues = layer_id_issues(ids, num_layers)
    if issues:
        raise LayerIdError("; ".join(f"{flag}: {msg} (fix: {fix})" for msg, fix in issues))
    return ids


def resolve_layer_ids(model: str, ids: Optional[Sequence[int]], flag: str = "--target-layer-ids") -> tuple[list[int], int]:
    """(ids, L): `ids` or the default [2, L//2, L-3, L] for `model`, validated; LayerIdError otherwise."""
    from speculators_core.target import TargetNotFound, load_target

    try:
        target = load_target(model)
    except TargetNotFound as e:
        raise LayerIdError(f"{model}: cannot read the target config to check {flag}: {e}") from None
    L = target.num_hidden_layers
    return check_layer_ids(list(ids) if ids else default_layer_ids(L), L, flag), L
