"""The prepared dataset (stage 1 output) as the trainer sees it: rows, lengths, the split.

A training sample is made from one row and its hidden states [T, n+1, H] (layers in ascending id
order, the last = the verifier's last layer L): input_ids[1:], aux[:-1] (n layers side by side),
verifier_last[1:], loss_mask[1:] and document-local positions 1..T-1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

REQUIRED_COLUMNS = ("input_ids", "loss_mask", "seq_len")


@dataclass
class Sample:
    row_id: int
    input_ids: torch.Tensor      # [t] int64
    aux: torch.Tensor            # [t, n*H]
    verifier_last: torch.Tensor  # [t, H]
    loss_mask: torch.Tensor      # [t] int64

    @property
    def length(self) -> int:
        return int(self.input_ids.shape[0])


class PreparedData:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not (self.path / "dataset_info.json").exists() and not (self.path / "state.json").exists():
            raise FileNotFoundError(f"{self.path}: not a prepared dataset directory (no dataset_info.json/state.json); "
                                    f"run stage 1 (python -m speculators_core.prepare) first")
        from datasets import load_from_disk

        self.ds = load_from_disk(str(self.path))
        missing = [c for c in REQUIRED_COLUMNS if c not in self.ds.column_names]
        if missing:
            raise ValueError(f"{self.path}: the dataset lacks column(s) {', '.join(missing)} "
                             f"(has {', '.join(self.ds.column_names)}); re-run stage 1")
        self.seq_lens = [int(x) for x in self.ds["seq_len"]]

    def __len__(self) -> int:
        return len(self.seq_lens)

    def token_freq_path(self) -> Path:
        return self.path / "token_freq.pt"

    def row(self, row_id: int) -> tuple[list[int], list[int]]:
        r = self.ds[int(row_id)]
        ids, mask = list(r["input_ids"]), list(r["loss_mask"])
        if len(ids) != len(mask):
            raise ValueError(f"{self.path}: row {row_id} has {len(ids)} input_ids but {len(mask)} loss_mask values")
        return ids, mask

    def split(self, val_split: float, seed: int) -> tuple[list[int], list[int]]:
        """(train rows, validation rows): a seeded permutation, the first share held out; both sorted.
        Rows shorter than 2 tokens cannot make a sample and are left out."""
        if not 0.0 <= val_split < 1.0:
            raise ValueError(f"--val-split must be in [0, 1), got {val_split}")
        usable = [i for i, n in enumerate(self.seq_lens) if n >= 2]
        if not usable:
            raise ValueError(f"{self.path}: no row has 2 or more tokens")
        g = torch.Generator().manual_seed(seed)
        perm = [usable[i] for i in torch.randperm(len(usable), generator=g).tolist()]
        n_val = int(round(val_split * len(perm)))
        if val_split > 0 and n_val == 0 and len(perm) >= 2:
            n_val = 1
        n_val = min(n_val, len(perm) - 1)
        return sorted(perm[n_val:]), sorted(perm[:n_val])


def make_sample(row_id: int, input_ids: list[int], loss_mask: list[int], hidden_states: torch.Tensor,
                token_ids: torch.Tensor | None, num_aux: int, max_len: int) -> Sample:
    """Shift one row into a training sample (at most `max_len` tokens); checks the file matches the row."""
    T = len(input_ids)
    if hidden_states.dim() != 3:
        raise ValueError(f"row {row_id}: hidden states have shape {tuple(hidden_states.shape)}, expected [T, layers, H]")
    if hidden_states.shape[0] != T:
        raise ValueError(f"row {row_id}: hidden states cover {hidden_states.shape[0]} tokens, the row has {T}")
    if hidden_states.shape[1] != num_aux + 1:
        raise ValueError(f"row {row_id}: hidden states have {hidden_states.shape[1]} layers, expected {num_aux + 1} "
                         f"(the --target-layer-ids the server extracts: aux..., L)")
    ids = torch.as_tensor(input_ids, dtype=torch.int64)
    if token_ids is not None and not torch.equal(token_ids.to(torch.int64).flatten(), ids):
        raise ValueError(f"row {row_id}: the hidden-states file is for other token ids than the dataset row "
                         f"(a stale cache? delete it)")
    t = min(T - 1, max_len)
    hs = hidden_states
    aux = hs[:t, :num_aux].reshape(t, -1)
    last = hs[1:t + 1, num_aux]
    return Sample(row_id=row_id, input_ids=ids[1:t + 1], aux=aux, verifier_last=last,
                  loss_mask=torch.as_tensor(loss_mask[1:t + 1], dtype=torch.int64))
