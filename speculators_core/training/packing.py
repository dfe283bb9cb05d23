"""Length-aware packing of samples into rows of `total_seq_len` tokens, and the per-rank step plan.

The plan is computed from the dataset's `seq_len` column alone (before any hidden states exist), so
every rank knows every epoch's steps up front and all ranks run the same number of steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from speculators_core.training.data import Sample

PACK_WINDOW = 512   # rows sorted together (first-fit decreasing inside a window keeps the shuffle)
PAD_MULTIPLE = 8


def sample_len(seq_len: int, cap: int) -> int:
    return min(seq_len - 1, cap)


def pack_rows(rows: list[int], seq_lens: list[int], cap: int, window: int = PACK_WINDOW) -> list[list[int]]:
    """Bins of row ids, each with sum(sample lengths) <= cap; first-fit decreasing per window."""
    bins: list[list[int]] = []
    for start in range(0, len(rows), window):
        chunk = rows[start:start + window]
        chunk = sorted(chunk, key=lambda r: -sample_len(seq_lens[r], cap))  # stable: ties keep their order
        open_bins: list[list[int]] = []
        room: list[int] = []
        for r in chunk:
            n = sample_len(seq_lens[r], cap)
            for i, free in enumerate(room):
                if n <= free:
                    open_bins[i].append(r)
                    room[i] -= n
                    break
            else:
                open_bins.append([r])
                room.append(cap - n)
        bins.extend(open_bins)
    return bins


def epoch_bins(train_rows: list[int], seq_lens: list[int], cap: int, seed: int, epoch: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed * 100003 + epoch)
    order = [train_rows[i] for i in torch.randperm(len(train_rows), generator=g).tolist()]
    return pack_rows(order, seq_lens, cap)


@dataclass
class StepItem:
    rows: list[int]
    counted: bool   # False for a padding step (a rank with no bin of its own repeats one, stats ignored)


def rank_steps(bins: list[list[int]], world: int, rank: int, pad_counts: bool) -> list[StepItem]:
    """This rank's bins: step s gets bin s*world + rank. When bins do not divide evenly, ranks wrap
    around to the first bins (trained on again, `counted=True`) or, for validation
    (`pad_counts=False`), run them with their statistics ignored."""
    if not bins:
        return []
    steps = -(-len(bins) // world)
    out = []
    for s in range(steps):
        i = s * world + rank
        if i < len(bins):
            out.append(StepItem(bins[i], True))
        else:
            out.append(StepItem(bins[i % len(bins)], pad_counts))
    return out


@dataclass
class Batch:
    input_ids: torch.Tensor
    aux: torch.Tensor
    verifier_last: torch.Tensor
    loss_mask: torch.Tensor
    position_ids: torch.Tensor
    doc_ids: torch.Tensor
    num_samples: int
    num_tokens: int       # real (non-padding) tokens
    counted: bool = True
    #: (row id, start, length) of each sample in the row: where `source.noise_on_device` adds its noise
    spans: tuple = ()

    def to(self, device, non_blocking: bool = True) -> "Batch":
        kw = dict(device=device, non_blocking=non_blocking)
        return Batch(self.input_ids.to(**kw), self.aux.to(**kw), self.verifier_last.to(**kw),
                     self.loss_mask.to(**kw), self.position_ids.to(**kw), self.doc_ids.to(**kw),
                     self.num_samples, self.num_tokens, self.counted, self.spans)

    def pin_memory(self) -> "Batch":
        return Batch(self.input_ids.pin_memory(), self.aux.pin_memory(), self.verifier_last.pin_memory(),
                     self.loss_mask.pin_memory(), self.position_ids.pin_memory(), self.doc_ids.pin_memory(),
                     self.num_samples, self.num_tokens, self.counted, self.spans)

    def tensors(self) -> tuple:
        return (self.input_ids, self.aux, self.verifier_last, self.loss_mask, self.position_ids, self.doc_ids)


def collate(samples: list[Sample], aux_size: int, hidden_size: int, counted: bool = True,
            dtype: torch.dtype = torch.float32) -> Batch:
    """One packed row [1, T] (T = the real tokens rounded up to a multiple of 8), doc ids -1 on padding.
    An empty list (every row of the bin skipped) gives a single padding row that trains nothing."""
    n = sum(s.length for s in samples)
    T = max(PAD_MULTIPLE, -(-n // PAD_MULTIPLE) * PAD_MULTIPLE)
    ids = torch.zeros(T, dtype=torch.int64)
    aux = torch.zeros(T, aux_size, dtype=dtype)
    last = torch.zeros(T, hidden_size, dtype=dtype)
    mask = torch.zeros(T, dtype=torch.int64)
    pos = torch.zeros(T, dtype=torch.int64)
    doc = torch.full((T,), -1, dtype=torch.int64)
    o = 0
    spans = []
    for d, s in enumerate(samples):
        t = s.length
        spans.append((s.row_id, o, t))
        ids[o:o + t] = s.input_ids
        aux[o:o + t] = s.aux.to(dtype)
        last[o:o + t] = s.verifier_last.to(dtype)
        mask[o:o + t] = s.loss_mask
        pos[o:o + t] = torch.arange(1, t + 1)
        doc[o:o + t] = d
        o += t
    return Batch(ids[None], aux[None], last[None], mask[None], pos[None], doc[None], len(samples), n, counted,
                 tuple(spans))
