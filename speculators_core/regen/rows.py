"""Which source rows are regenerated, and the token row a regenerated chat becomes.

Sources are opened and parsed exactly as `prepare` does (`data.sources`, `data.conversation`), and
taken in prepare's seeded order, so `--max-samples N` picks the rows prepare would pick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from speculators_core.data import conversation as conv
from speculators_core.data.errors import PrepareError
from speculators_core.data.sources import RowTable, open_sources


class RegenerateError(PrepareError):
    """Bad input for regeneration (the message names the file, line or flag; `fix` says what to do)."""


@dataclass
class SourceChat:
    index: int  # global row index over the sources
    origin: str  # file:line (or dataset row): the resume key
    id: str  # the row's own id when it has one, else its origin
    messages: list[dict]


@dataclass
class Selection:
    chats: list[SourceChat]
    skipped: dict[str, int]  # reason -> rows not regenerated (empty, no assistant turn, pre-tokenised)
    examples: dict[str, str]  # reason -> one origin


def select(specs: Sequence[str], max_samples: Optional[int], seed: int) -> Selection:
    """Read every source, parse each row (a bad row raises, naming its file and line), and keep the
    chats in prepare's seeded order, at most `max_samples`."""
    import numpy as np

    if max_samples is not None and max_samples < 1:
        raise RegenerateError(f"--max-samples {max_samples}: must be at least 1")
    try:
        table: RowTable = open_sources(specs)
    except RegenerateError:
        raise
    except PrepareError as e:  # a missing file, a directory without data, an unreadable file
        raise RegenerateError(str(e), fix=e.fix or None) from None
    n = len(table)
    if n == 0:
        raise RegenerateError(f"--data {' '.join(specs)}: no rows", fix="give a file with one conversation per line")
    order = np.random.default_rng(seed).permutation(n)
    chats: list[SourceChat] = []
    skipped: dict[str, int] = {}
    examples: dict[str, str] = {}
    for index in order:
        if max_samples is not None and len(chats) >= max_samples:
            break
        origin, payload = table.fetch(int(index))
        try:
            raw = conv.parse_payload(origin, payload)
            row = conv.normalize(origin, raw)
        except PrepareError as e:
            raise RegenerateError(str(e), fix="correct or delete that line of the source (or drop the file "
                                              "from --data), then run again") from None
        if isinstance(row, conv.Tokens):
            reason = "pre-tokenised (input_ids), nothing to regenerate"
        elif isinstance(row, str):
            reason = row
        else:
            rid = raw.get("id") if isinstance(raw, dict) else None
            chats.append(SourceChat(int(index), origin, str(rid) if isinstance(rid, (str, int)) else origin,
                                    row.messages))
            continue
        skipped[reason] = skipped.get(reason, 0) + 1
        examples.setdefault(reason, origin)
    return Selection(chats, skipped, examples)


def find(seq: list[int], part: list[int], start: int) -> int:
    """The first index >= start where `part` occurs in `seq`, else -1."""
    if not part:
        return -1
    first, k = part[0], len(part)
    for i in range(start, len(seq) - k + 1):
        if seq[i] == first and seq[i:i + k] == part:
            return i
    return -1


@dataclass
class TokenRow:
    input_ids: list[int]
    loss_mask: list[int]
    unmatched_turns: int  # earlier answers not found verbatim in the last prompt (left out of the loss)


def token_row(turns: list[tuple[list[int], list[int]]]) -> TokenRow:
    """The training row of a regenerated chat from each turn's (prompt ids, generated ids).

    The row is the LAST request's prompt ids plus its generated ids: exactly the ids the server used
    and produced. The loss covers the last answer and every earlier answer found verbatim, in order,
    inside that prompt (the usual case: the template re-renders history as it was generated). An
    earlier answer the template rewrote (e.g. reasoning stripped from history) is not trained on.
    """
    prompt, gen = turns[-1]
    ids = list(prompt) + list(gen)
    mask = [0] * len(prompt) + [1] * len(gen)
    pos, unmatched = 0, 0
    for i, (p_ids, g_ids) in enumerate(turns[:-1]):
        full = list(p_ids) + list(g_ids)
        if prompt[:len(full)] == full and pos <= len(p_ids):  # history kept verbatim: exact positions
            at = len(p_ids)
        else:
            at = find(prompt, list(g_ids), pos)
            if at < 0 and len(g_ids) > 1:  # the end-of-turn token may be re-rendered differently
                at = find(prompt, list(g_ids[:-1]), pos)
                g_ids = g_ids[:-1]
        if at < 0:
            unmatched += 1
            continue
        for j in range(at, at + len(g_ids)):
            mask[j] = 1
        pos = at + len(g_ids)
    return TokenRow(ids, mask, unmatched)


def request_messages(msgs: list[dict]) -> list[dict[str, Any]]:
    """Messages as sent to the server: role and content (plus name/tool fields when present)."""
    return [{k: v for k, v in m.items() if k in ("role", "content", "name", "tool_calls", "tool_call_id")}
            for m in msgs]
