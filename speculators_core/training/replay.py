"""Acceptance length as vLLM's greedy loop would see it, replayed over teacher-forced validation.

The old figure, `1 + sum_k full_acc_k` (kept as `acceptance_length_estimate`), weighs every
response position equally. vLLM does not visit positions evenly: a draft starts at the column
after the last verified token, and after `a` accepted tokens (plus the target's bonus token) the
next draft starts `a + 1` columns later. Hard stretches (short accepts) therefore get more drafts
than easy ones. This module replays that loop over each response span of the validation rows,
from the per-step correctness the drafter's forward already computes (`StepStats.hit`):

- `leading_correct(hits)`: per column, how many leading TTT steps are right (0..K);
- `response_spans(valid, doc_ids)`: the [start, end) runs of trainable columns in one document;
- `replay(run, spans, K)`: start at each span's first column, count one draft of K tokens,
  accept `a = run[j]` of them, move to `j + a + 1`; stop before the span's last column (there
  the reply is finished: vLLM proposes no further draft).

Exact only when the response tokens are the target's own greedy continuations (on-policy data):
on other data the teacher-forced tokens are not what the target would have produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReplayCounts:
    """vLLM-style counters: drafts, accepted tokens, and accepted tokens per draft position."""
    num_drafts: int = 0
    num_accepted_tokens: int = 0
    accepted_per_pos: list[int] = field(default_factory=list)

    def add(self, other: "ReplayCounts") -> None:
        self.num_drafts += other.num_drafts
        self.num_accepted_tokens += other.num_accepted_tokens
        if len(self.accepted_per_pos) < len(other.accepted_per_pos):
            self.accepted_per_pos += [0] * (len(other.accepted_per_pos) - len(self.accepted_per_pos))
        for k, v in enumerate(other.accepted_per_pos):
            self.accepted_per_pos[k] += v

    @property
    def acceptance_length(self) -> float:
        return 1.0 + self.num_accepted_tokens / self.num_drafts if self.num_drafts else 0.0

    def per_position(self) -> list[float]:
        return [a / self.num_drafts if self.num_drafts else 0.0 for a in self.accepted_per_pos]


def leading_correct(hits: list) -> "torch.Tensor":  # noqa: F821
    """hits[k]: bool [B, T-k] (step k right at column i, i.e. the target of column i+k, and that
    column valid). Returns int [B, T]: per column the number of leading steps 0.. that are right."""
    import torch

    B, T = hits[0].shape
    run = torch.zeros(B, T, dtype=torch.int64, device=hits[0].device)
    alive = torch.ones(B, T, dtype=torch.bool, device=hits[0].device)
    for k, h in enumerate(hits):
        n = T - k
        step = torch.zeros(B, T, dtype=torch.bool, device=h.device)
        step[:, :n] = h.bool()
        alive = alive & step
        run += alive.long()
    return run


def response_spans(valid_row, doc_row) -> list[tuple[int, int]]:
    """[start, end) runs of consecutive valid columns of one document (a reply each)."""
    v = [bool(x) for x in valid_row.tolist()]
    d = doc_row.tolist()
    spans, start = [], None
    for i, ok in enumerate(v):
        if ok and start is not None and d[i] != d[i - 1]:
            spans.append((start, i))
            start = i
        elif ok and start is None:
            start = i
        elif not ok and start is not None:
            spans.append((start, i))
            start = None
    if start is not None:
        spans.append((start, len(v)))
    return spans


def replay(run_row: list[int], spans: list[tuple[int, int]], K: int) -> ReplayCounts:
    """vLLM's greedy loop over each span: drafts at s, s+a+1, ... while before the span's last column."""
    out = ReplayCounts(accepted_per_pos=[0] * K)
    for s, e in spans:
        j = s
        while j < e - 1:
            a = min(int(run_row[j]), K)
            out.num_drafts += 1
            out.num_accepted_tokens += a
            for k in range(a):
                out.accepted_per_pos[k] += 1
            j += a + 1
    return out


def replay_batch(hits: list, loss_mask, doc_ids, K: int) -> ReplayCounts:
    """The replay over every row of one packed batch (hits as for `leading_correct`)."""
    run = leading_correct(hits).cpu()
    valid = ((loss_mask > 0) & (doc_ids >= 0)).cpu()
    docs = doc_ids.cpu()
    total = ReplayCounts(accepted_per_pos=[0] * K)
    for b in range(run.shape[0]):
        total.add(replay(run[b].tolist(), response_spans(valid[b], docs[b]), K))
    return total
