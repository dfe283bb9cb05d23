"""Rendered rows far longer than `--seq-length` are cut before tokenising.

Tokenising a whole 50 MB conversation to keep its first 8192 tokens took minutes and gigabytes.
A row longer than `bound(seq_length)` characters (a generous chars-per-token bound) is encoded from
a prefix instead, and the result is used only when it provably equals the first `seq_length` tokens
of the whole text:

- the prefix yields more than `seq_length` tokens (so the whole text is truncated too), and
- between the end of token `seq_length - 1` and the cut there is an ASCII letter or digit, ASCII
  whitespace, and another letter or digit. Every pre-tokenizer of the supported tokenizers
  (byte-level regexes of GPT-2/Llama-3/Qwen/DeepSeek, Metaspace, whitespace splits) splits
  somewhere inside such a run, and a pre-token is encoded on its own: the pre-tokens before that
  split, and so the tokens and offsets before it, do not depend on what follows the split. (The
  regexes look ahead one character at most; the cut keeps a margin.)

Otherwise a four times longer prefix is tried, twice; a row whose prefix reaches the whole text
is encoded whole as before, and one that never gives such a proof (megabytes without a break: a
binary blob) is dropped, counted as `TOO_LONG`. Rows up to the bound are never cut: the output of
ordinary rows is the same bytes as without this module.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from speculators_core.data.masks import ids_and_mask

#: characters per token assumed by the first cut (real text averages 3-5; code with indentation ~8)
CHARS_PER_TOKEN = 32
SLACK_CHARS = 4096
ATTEMPTS = 3
GROWTH = 4
#: characters kept between the proof's break and the cut (the regexes' lookahead is one)
MARGIN = 16
TOO_LONG = "too_long_without_a_break"
_BREAK = re.compile(r"[A-Za-z0-9][ \t\n\r]+[A-Za-z0-9]")
#: the whole text must be encoded (the prefix would be all of it)
WHOLE = "whole"


def bound(seq_length: int) -> int:
    """Rendered characters above which a row is cut before tokenising."""
    return seq_length * CHARS_PER_TOKEN + SLACK_CHARS


def can_cut(tok_backend: Any) -> bool:
    """False when an added token could span a break (it would be split there): never cut then."""
    try:
        added = tok_backend.get_added_tokens_decoder().values()
    except AttributeError:  # pragma: no cover - older tokenizers
        return False
    return not any(_BREAK.search(str(getattr(t, "content", t))) for t in added)


def _clip(spans: Sequence[tuple[int, int]], end: int) -> list[tuple[int, int]]:
    return [(a, min(b, end)) for a, b in spans if a < end]


def encode_long(tok_backend: Any, text: str, spans: Sequence[tuple[int, int]], seq_length: int
                ) -> tuple[np.ndarray, np.ndarray] | str:
    """(ids, mask) of a prefix of `text` whose first `seq_length` tokens equal the whole text's
    (longer than seq_length: the caller truncates as usual), `WHOLE`, or `TOO_LONG`."""
    cut = bound(seq_length)
    for _ in range(ATTEMPTS):
        if cut >= len(text):
            return WHOLE
        enc = tok_backend.encode_batch([text[:cut]], add_special_tokens=False)[0]
        if len(enc.ids) > seq_length:
            end = max(e for _, e in enc.offsets[:seq_length])
            if _BREAK.search(text, end, cut - MARGIN):
                return ids_and_mask(enc, _clip(spans, cut))
        cut *= GROWTH
    return TOO_LONG
