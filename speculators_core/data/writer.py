"""Write the prepared dataset atomically: a `datasets.save_to_disk` directory with `input_ids`,
`loss_mask` and `seq_len`, plus `token_freq.pt` and `prepare_manifest.json`, assembled in a
temporary sibling directory and renamed into place (a crash never leaves a half-written output).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from speculators_core.data.manifest import MANIFEST
from speculators_core.fsutil import atomic_write_json, replace_dir


def _list_chunk(arrays: Sequence[np.ndarray], dtype):
    import pyarrow as pa

    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    offsets = np.zeros(len(arrays) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))


def _list_column(arrays: Sequence[np.ndarray], dtype, max_values: int = 1 << 30):
    """A chunked list<dtype> column, each chunk under `max_values` values (32-bit list offsets)."""
    import pyarrow as pa

    chunks, start, total = [], 0, 0
    for i, a in enumerate(arrays):
        if total + len(a) > max_values and i > start:
            chunks.append(_list_chunk(arrays[start:i], dtype))
            start, total = i, 0
        total += len(a)
    chunks.append(_list_chunk(arrays[start:], dtype))
    return pa.chunked_array(chunks, type=pa.list_(pa.from_numpy_dtype(np.dtype(dtype))))


def build_dataset(input_ids: Sequence[np.ndarray], loss_masks: Sequence[np.ndarray], max_values: int = 1 << 30):
    """A `datasets.Dataset` from per-sample arrays, built column-wise (no per-token Python)."""
    import datasets
    import pyarrow as pa

    ids_col = _list_column(input_ids, np.int64, max_values)
    mask_col = _list_column(loss_masks, np.int8, max_values)
    seq = pa.array(np.fromiter((len(a) for a in input_ids), dtype=np.int64, count=len(input_ids)))
    table = pa.Table.from_arrays([ids_col, mask_col, seq], names=["input_ids", "loss_mask", "seq_len"])
    features = datasets.Features({
        "input_ids": datasets.Sequence(datasets.Value("int64")),
        "loss_mask": datasets.Sequence(datasets.Value("int8")),
        "seq_len": datasets.Value("int64"),
    })
    return datasets.Dataset(datasets.table.InMemoryTable(table), info=datasets.DatasetInfo(features=features))


class TokenCounter:
    """Counts of loss-masked token ids, accumulated sample by sample (no big temporary)."""

    def __init__(self) -> None:
        self.counts = np.zeros(0, dtype=np.int64)

    def add(self, ids: np.ndarray, mask: np.ndarray) -> None:
        trained = ids[mask.astype(bool)]
        if not len(trained):
            return
        c = np.bincount(trained)
        if len(c) > len(self.counts):
            c[: len(self.counts)] += self.counts
            self.counts = c
        else:
            self.counts[: len(c)] += c

    def as_dict(self) -> dict[int, int]:
        nz = np.nonzero(self.counts)[0]
        return {int(t): int(self.counts[t]) for t in nz}


def token_freq(input_ids: Sequence[np.ndarray], loss_masks: Sequence[np.ndarray]) -> dict[int, int]:
    """{token_id: count} over loss-masked tokens only."""
    counter = TokenCounter()
    for i in range(0, len(input_ids), 1024):  # batched: one bincount per 1024 samples
        counter.add(np.concatenate(input_ids[i : i + 1024]), np.concatenate(loss_masks[i : i + 1024]))
    return counter.as_dict()


def write_output(output: str | Path, input_ids: Sequence[np.ndarray], loss_masks: Sequence[np.ndarray],
                 manifest: dict[str, Any], freq: dict[int, int] | None = None,
                 timings: dict[str, float] | None = None) -> Path:
    """`timings` (optional) receives the seconds of "write arrow" and "token_freq" (imports included)."""
    timings = timings if timings is not None else {}
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    try:
        t = time.perf_counter()
        _save_quietly(build_dataset(input_ids, loss_masks), tmp)
        timings["write arrow"] = time.perf_counter() - t
        t = time.perf_counter()
        import torch

        torch.save(freq if freq is not None else token_freq(input_ids, loss_masks), tmp / "token_freq.pt")
        timings["token_freq"] = time.perf_counter() - t
        atomic_write_json(tmp / MANIFEST, manifest)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _save_quietly(ds, path: Path) -> None:
    """save_to_disk without datasets' own progress bar (stage 1 prints its own summary)."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        ds.save_to_disk(str(path))
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def remove_stale_temps(out: Path) -> list[Path]:
    """Remove temp directories of earlier writers of `out` that were killed (their pid is gone)."""
    removed = []
    prefix = f".{out.name}.tmp-"
    for p in out.parent.glob(prefix + "*"):
        pid_text = p.name[len(prefix):].split("-", 1)[0]
        if not pid_text.isdigit() or not p.is_dir():
            continue
        try:
            os.kill(int(pid_text), 0)
            continue  # a live writer
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed
