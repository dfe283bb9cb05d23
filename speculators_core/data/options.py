"""The options and the summary of a data preparation (stage 1): `PrepareOptions`, `PrepareSummary`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PrepareOptions:
    model: str
    data: list[str]
    output: str
    seq_length: int = 8192
    max_samples: int | None = None
    minimum_valid_tokens: int | None = None
    num_workers: int = 1
    seed: int = 0
    overwrite: bool = False
    trust_remote_code: bool = False
    #: encode every row with the tokenizer's encode_batch (no word encoder; same output, slower)
    exact_tokenizer: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "PrepareOptions":
        return cls(
            model=args.model, data=list(args.data), output=args.output, seq_length=args.seq_length,
            max_samples=args.max_samples, minimum_valid_tokens=args.minimum_valid_tokens,
            num_workers=args.num_preprocessing_workers, seed=args.seed, overwrite=args.overwrite,
            trust_remote_code=args.trust_remote_code, exact_tokenizer=args.exact_tokenizer,
        )

    def fingerprinted(self) -> dict[str, Any]:
        """The options that change the output (workers, overwrite and exact_tokenizer do not)."""
        return {"seq_length": self.seq_length, "max_samples": self.max_samples,
                "minimum_valid_tokens": self.minimum_valid_tokens, "seed": self.seed}


@dataclass
class PrepareSummary:
    output: str
    rows_total: int = 0          # rows in all sources
    rows_in: int = 0             # rows read (fewer than rows_total when --max-samples stops early)
    rows_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    truncated: int = 0
    assistant_turns_not_found: int = 0  # kept rows' assistant turns the template rewrote beyond recognition
    tokens: int = 0
    trainable_tokens: int = 0
    mean_length: float = 0.0
    seconds: float = 0.0         # whole call: hashing, tokenizer load, processing, writing
    process_seconds: float = 0.0  # rendering + tokenising + masks only
    already_prepared: bool = False
    notes: dict[str, str] = field(default_factory=dict)
    word_encoded: int = 0        # rows tokenised by the word encoder (the rest: encode_batch)
    word_checked: int = 0        # of those, rows also encoded by the tokenizer and compared
    batch_encoded: int = 0       # rows tokenised by the tokenizer's encode_batch
    word_encoder_off: str = ""   # why the word encoder was not used ("" when it was)
    #: seconds per step of the whole call (check inputs, load tokenizer, probes, read, worker
    #: start-up, process, write arrow, token_freq); see FIXED_COSTS
    timings: dict[str, float] = field(default_factory=dict)
    tokenizer_cache: str = ""    # "hit", "stored" (a miss, now cached), "off" or why not cached
    #: on a cache miss: "tokenizers" (loaded without transformers) or "transformers (why)"
    tokenizer_loader: str = ""
    #: entries of `--data` directories that were not read: path -> why (hidden, other file type...)
    skipped_files: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        if self.already_prepared:
            return [f"already prepared: {self.output} (same tokenizer, data and options); nothing to do"]
        dropped = ", ".join(f"{k}={v}" for k, v in sorted(self.dropped.items())) or "none"
        out = [
            f"prepared {self.output}",
            f"  rows in: {self.rows_in} (of {self.rows_total})   kept: {self.rows_kept}   dropped: "
            f"{sum(self.dropped.values())} ({dropped})   truncated: {self.truncated}",
            f"  tokens: {self.tokens}   trainable tokens: {self.trainable_tokens} "
            f"({100.0 * self.trainable_tokens / max(1, self.tokens):.1f}%)   mean length: {self.mean_length:.1f}",
            f"  time: {self.seconds:.1f}s in all; processing {self.process_seconds:.1f}s "
            f"({self.rows_in / max(self.process_seconds, 1e-9):.0f} rows/s, "
            f"{self.tokens / max(self.process_seconds, 1e-9):.0f} tokens/s)",
        ]
        if self.timings:
            out.append("  steps: " + ", ".join(f"{k} {v:.2f}s" for k, v in self.timings.items())
                       + (f" (tokenizer cache: {self.tokenizer_cache})" if self.tokenizer_cache else "")
                       + (f" (loaded with {self.tokenizer_loader})" if self.tokenizer_loader else ""))
        if self.word_encoder_off:
            out.append(f"  tokenizer: encode_batch for every row (word encoder off: {self.word_encoder_off})")
        else:
            out.append(f"  tokenizer: word encoder for {self.word_encoded} row(s) ({self.word_checked} checked "
                       f"against the tokenizer, all equal), encode_batch for {self.batch_encoded}")
        if self.assistant_turns_not_found:
            out.append(f"  warning: {self.assistant_turns_not_found} assistant turn(s) were not found in the "
                       f"rendered text and are not trained on (the chat template rewrites them)")
        if self.skipped_files:
            shown = [f"{p} ({why})" for p, why in list(self.skipped_files.items())[:10]]
            more = len(self.skipped_files) - len(shown)
            out.append(f"  not read from the data directories: {'; '.join(shown)}"
                       + (f"; and {more} more" if more > 0 else ""))
        out += [f"  first {k}: {v}" for k, v in self.notes.items()]
        return out
