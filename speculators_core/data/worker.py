"""The per-chunk work of stage 1, run in the main process or in `chunk_pool` workers.

A chunk is a list of global row indices; the worker fetches the rows from the (inherited or
re-opened) row table, parses and normalises them, renders the chats, batch-encodes them, builds the
masks, truncates and filters. It returns the kept samples in chunk order plus the drop counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from speculators_core.data import conversation as conv
from speculators_core.data import long_rows
from speculators_core.data.errors import PrepareError
from speculators_core.data.masks import backend, encode_with_masks
from speculators_core.data.render import ChatRenderer, NoAssistantSpan
from speculators_core.data.word_encoder import WordEncoder, WordEncoderMismatch


@dataclass
class ChunkResult:
    #: (position in the chunk, input_ids, loss_mask) of every kept sample, in chunk order
    kept: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)
    #: (position in the chunk, reason) of every dropped row
    drops: list[tuple[int, str]] = field(default_factory=list)
    #: positions of kept rows that were truncated to seq_length
    truncated: list[int] = field(default_factory=list)
    #: assistant turns with text that the renderer could not find in the rendered text
    missing_turns: int = 0
    #: first message per drop reason that has one (e.g. the template's error text)
    notes: dict[str, str] = field(default_factory=dict)
    #: rendered rows encoded by the word encoder, and how many of those were checked with encode
    word_encoded: int = 0
    word_checked: int = 0
    #: rendered rows encoded by the tokenizer's encode_batch
    batch_encoded: int = 0
    #: rows far longer than seq_length encoded from a prefix (`long_rows`)
    cut_rows: int = 0


class ChunkProcessor:
    def __init__(self, table, tokenizer, seq_length: int, minimum_valid_tokens: int | None,
                 chat_template: str | None = None, exact_tokenizer: bool = False,
                 word_encoder: "tuple[WordEncoder | None, str] | None" = None) -> None:
        self.table = table
        self.tokenizer = tokenizer
        self.backend = backend(tokenizer)
        #: the exact faster encoder where the tokenizer allows it (None: encode_batch for every row)
        self.word_encoder: WordEncoder | None = None
        #: why there is no word encoder ("" when there is one)
        self.word_encoder_off = "--exact-tokenizer"
        if not exact_tokenizer:
            # (encoder, why not) built by the caller (e.g. from the tokenizer cache), or built here
            self.word_encoder, self.word_encoder_off = word_encoder or WordEncoder.build(self.backend)
        self.vocab_size = len(tokenizer)
        self.renderer: ChatRenderer | None = None
        self._chat_template = chat_template
        self.seq_length = seq_length
        self.min_valid = max(1, minimum_valid_tokens or 1)
        self.can_cut = long_rows.can_cut(self.backend)

    def _renderer(self) -> ChatRenderer:
        if self.renderer is None:
            self.renderer = ChatRenderer(self.tokenizer, self._chat_template)
        return self.renderer

    def _cut_long(self, res: ChunkResult, encoded: dict, *rows: list) -> tuple[list, ...]:
        """Encode rows far longer than seq_length from a prefix (into `encoded`) or drop them; the
        other rows are returned for the usual encoding."""
        rest = []
        for pos, text, row_spans, origin in zip(*rows):
            got = long_rows.WHOLE
            if len(text) > long_rows.bound(self.seq_length):
                got = long_rows.encode_long(self.backend, text, row_spans, self.seq_length)
            if got == long_rows.TOO_LONG:
                res.drops.append((pos, long_rows.TOO_LONG))
                res.notes.setdefault(long_rows.TOO_LONG, f"{origin}: {len(text)} characters with no break "
                                                          f"(letter, space, letter) to cut at")
            elif isinstance(got, str):
                rest.append((pos, text, row_spans, origin))
            else:
                encoded[pos] = got
                res.cut_rows += 1
        return tuple([r[k] for r in rest] for k in range(4))

    def __call__(self, indices: Sequence[int]) -> ChunkResult:
        res = ChunkResult()
        texts: list[str] = []
        spans: list[list[tuple[int, int]]] = []
        text_pos: list[int] = []
        origins: list[str] = []
        direct: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        missing_before = self.renderer.missing_turns if self.renderer is not None else 0
        for pos, index in enumerate(indices):
            origin, payload = self.table.fetch(int(index))
            row = conv.normalize(origin, conv.parse_payload(origin, payload))
            if isinstance(row, str):
                res.drops.append((pos, row))
                continue
            if isinstance(row, conv.Tokens):
                ids = np.asarray(row.input_ids, dtype=np.int64)
                if len(ids) and int(ids.max()) >= self.vocab_size:
                    raise PrepareError(
                        f"{origin}: token id {int(ids.max())} is outside the tokenizer's vocabulary "
                        f"({self.vocab_size} ids); these rows were tokenised for another model"
                    )
                direct[pos] = (ids.astype(np.int32), np.asarray(row.loss_mask, dtype=np.int8))
                continue
            try:
                text, row_spans = self._renderer().render(row.messages)
            except NoAssistantSpan:
                raise PrepareError(
                    f"{origin}: the chat template rendered none of this row's assistant turns "
                    f"(no assistant span found in the rendered text); the template rewrites or drops "
                    f"assistant content. Use a template with {{% generation %}} blocks (set the "
                    f"tokenizer's chat_template) or pre-tokenise the rows (input_ids + loss_mask)"
                ) from None
            except PrepareError:
                raise
            except Exception as exc:  # the template's raise_exception (e.g. roles must alternate)
                res.drops.append((pos, conv.TEMPLATE_ERROR))
                res.notes.setdefault(conv.TEMPLATE_ERROR, f"{origin}: {type(exc).__name__}: {exc}")
                continue
            texts.append(text)
            spans.append(row_spans)
            text_pos.append(pos)
            origins.append(origin)
        if self.renderer is not None:
            res.missing_turns = self.renderer.missing_turns - missing_before
        encoded: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if self.can_cut and any(len(t) > long_rows.bound(self.seq_length) for t in texts):
            text_pos, texts, spans, origins = self._cut_long(res, encoded, text_pos, texts, spans, origins)
        we = self.word_encoder
        if we is not None and texts:
            checked_before = we.checked
            rest = []
            for pos, text, row_spans, origin in zip(text_pos, texts, spans, origins):
                try:
                    got = we.encode_with_mask(text, row_spans)
                except WordEncoderMismatch as exc:
                    raise WordEncoderMismatch(f"{origin}: {exc}") from None
                if got is None:
                    rest.append((pos, text, row_spans))
                else:
                    encoded[pos] = got
            res.word_encoded = len(texts) - len(rest)
            res.word_checked = we.checked - checked_before
            text_pos, texts, spans = [r[0] for r in rest], [r[1] for r in rest], [r[2] for r in rest]
        if texts:
            res.batch_encoded = len(texts)
            encoded.update(zip(text_pos, encode_with_masks(self.backend, texts, spans)))
        encoded.update(direct)
        for pos in sorted(encoded):
            ids, mask = encoded[pos]
            cut = len(ids) > self.seq_length
            if cut:
                ids, mask = ids[: self.seq_length].copy(), mask[: self.seq_length].copy()
            n_valid = int(mask.sum())
            if n_valid == 0:
                res.drops.append((pos, conv.NO_TRAINABLE))
            elif n_valid < self.min_valid:
                res.drops.append((pos, conv.TOO_FEW_VALID))
            else:
                res.kept.append((pos, ids, mask))
                if cut:
                    res.truncated.append(pos)
        return res
