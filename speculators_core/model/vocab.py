"""Draft vocabulary: the most frequent target tokens, and the d2t / t2d tables vLLM reads.

`selected` = the `draft_vocab_size` target ids with the highest counts in `token_freq.pt` (ties go
to the smaller id; when fewer were seen, the smallest unused ids fill up), sorted ascending.
`d2t[i] = selected[i] - i` (target id = draft id + d2t[draft id]); `t2d` is a bool mask over the
target vocabulary, true at `selected`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from speculators_core.errors import ExitCode, SpeculatorsError

import torch


def select_draft_tokens(token_freq: Mapping[int, int], vocab_size: int, draft_vocab_size: int) -> torch.Tensor:
    """Ascending int64 tensor of the `draft_vocab_size` selected target ids."""
    if draft_vocab_size > vocab_size:
        raise ValueError(f"draft_vocab_size {draft_vocab_size} is larger than the target vocabulary {vocab_size}")
    if draft_vocab_size <= 0:
        raise ValueError(f"draft_vocab_size must be positive, got {draft_vocab_size}")
    counts = torch.zeros(vocab_size, dtype=torch.float64)
    for tok, n in token_freq.items():
        tok = int(tok)
        if not 0 <= tok < vocab_size:
            raise ValueError(f"token_freq has token id {tok} outside the target vocabulary [0, {vocab_size})")
        counts[tok] += float(n)
    # Count descending, then id ascending (a stable sort over ids in ascending order). Unseen ids
    # (count 0) come last in ascending order, so a short list fills up with the smallest unused ids.
    chosen = torch.sort(-counts, stable=True).indices[:draft_vocab_size]
    return torch.sort(chosen).values.to(torch.int64)


def mapping_tables(selected: torch.Tensor, vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(d2t int64 [Vd], t2d bool [V]) from the ascending selected ids."""
    selected = selected.to(torch.int64)
    d2t = selected - torch.arange(selected.numel(), dtype=torch.int64)
    t2d = torch.zeros(vocab_size, dtype=torch.bool)
    t2d[selected] = True
    return d2t, t2d


def selected_from_d2t(d2t: torch.Tensor) -> torch.Tensor:
    return d2t.to(torch.int64) + torch.arange(d2t.numel(), dtype=torch.int64)


class TokenFreqError(SpeculatorsError, ValueError):
    """token_freq.pt cannot be loaded as plain data."""

    exit_code = ExitCode.USAGE
    fix = "re-run stage 1 (python -m speculators_core.prepare) to rewrite it"


def load_token_freq(path: Path) -> dict[int, int]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: token_freq.pt not found; it is written by stage 1 (prepare) next to the dataset")
    try:  # weights_only: a crafted file cannot run code; prepare writes plain dicts of ints
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TokenFreqError(f"{path}: not a plain {{token_id: count}} file ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if isinstance(obj, torch.Tensor):
        return {i: int(c) for i, c in enumerate(obj.tolist()) if c}
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a dict {{token_id: count}}, got {type(obj).__name__}")
    return {int(k): int(v) for k, v in obj.items()}
