"""Rendered texts -> token ids and the loss mask, in one batched call to the Rust tokenizer.

A token is trained on when its character range overlaps a trained span. The spans are mapped to
token indices through the encoding's offsets (`Encoding.char_to_token`, a Rust lookup), so the cost
per row is one batch-encode share plus a few lookups per assistant turn, with no Python loop over
tokens.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from speculators_core.data.errors import PrepareError


def backend(tokenizer: Any):
    """The `tokenizers.Tokenizer` behind a fast HF tokenizer (offsets need a fast tokenizer), with
    any truncation/padding stored in its tokenizer.json switched off."""
    be = getattr(tokenizer, "backend_tokenizer", None)
    if be is None or not getattr(tokenizer, "is_fast", False):
        raise PrepareError(
            f"the tokenizer {getattr(tokenizer, 'name_or_path', '')!s} is not a fast (Rust) tokenizer; "
            f"token offsets need one: provide tokenizer.json with the target (convert it with "
            f"`AutoTokenizer.from_pretrained(path).save_pretrained(path)` where a fast version exists)"
        )
    # A tokenizer.json may carry truncation/padding settings (HF's wrapper resets them per call);
    # the raw batch encode must see the whole rendered text, unpadded.
    if be.truncation is not None:
        be.no_truncation()
    if be.padding is not None:
        be.no_padding()
    return be


def _first_ending_after(enc, n: int, pos: int) -> int:
    """Index of the first token whose char range ends after `pos` (n if none); offsets are
    non-decreasing, so a binary search with O(1) `token_to_chars` lookups finds it."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if enc.token_to_chars(mid)[1] > pos:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _first_starting_at(enc, n: int, pos: int) -> int:
    """Index of the first token whose char range starts at or after `pos` (n if none)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if enc.token_to_chars(mid)[0] >= pos:
            hi = mid
        else:
            lo = mid + 1
    return lo


def encode_with_masks(
    tok_backend, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Encode `texts` (no special tokens added: the template wrote them) and build each loss mask."""
    encodings = tok_backend.encode_batch(list(texts), add_special_tokens=False)
    return [ids_and_mask(enc, row_spans) for enc, row_spans in zip(encodings, spans)]


def ids_and_mask(enc, row_spans: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """One encoding's ids and the mask of its tokens overlapping `row_spans`."""
    ids = np.asarray(enc.ids, dtype=np.int32)  # widened to int64 when written
    mask = np.zeros(len(ids), dtype=np.int8)
    n = len(ids)
    for a, b in row_spans:
        # tokens overlapping [a, b): from the first ending after a to the last starting before b
        mask[_first_ending_after(enc, n, a) : _first_starting_at(enc, n, b)] = 1
    return ids, mask


def mask_from_offsets(offsets: np.ndarray, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Reference rule with explicit offsets: token i is trained iff [s_i, e_i) overlaps a span.

    Used by tests to check `encode_with_masks`; `offsets` is an [n, 2] array.
    """
    mask = np.zeros(len(offsets), dtype=np.int8)
    for a, b in spans:
        hit = (offsets[:, 0] < b) & (offsets[:, 1] > a) & (offsets[:, 1] > offsets[:, 0])
        mask |= hit.astype(np.int8)
    return mask
