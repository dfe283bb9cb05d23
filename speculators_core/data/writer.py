"""Write the prepared dataset atomically: a `datasets.save_to_disk` directory with `input_ids`,
`loss_mask` and `seq_len`, plus `token_freq.pt` and `prepare_manifest.json`, assembled in a
temporary sibling directory and renamed into place (a crash never leaves a half-written output).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from speculators_core.data.manifest import MANIFEST
from speculators_core.fsutil import atomic_write_json, replace_dir


def _list_array(arrays: Sequence[np.ndarray], dtype):
    import pyarrow as pa

    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    offsets = np.zeros(len(arrays) + 1, dtype=np.int32 if lengths.sum() < 2**31 else np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)
    cls = pa.ListArray if offsets.dtype == np.int32 else pa.LargeListArray
    return cls.from_arrays(pa.array(offsets), pa.array(values))


def build_dataset(input_ids: Sequence[np.ndarray], loss_masks: Sequence[np.ndarray]):
    """A `datasets.Dataset` from per-sample arrays, built column-wise (no per-token Python)."""
    import datasets
    import pyarrow as pa

    ids_col = _list_array(input_ids, np.int64)
    mask_col = _list_array(loss_masks, np.int8)
    seq = pa.array(np.fromiter((len(a) for a in input_ids), dtype=np.int64, count=len(input_ids)))
    if isinstance(ids_col, pa.LargeListArray):  # datasets' Sequence feature wants 32-bit offsets
        ids_col, mask_col = ids_col.cast(pa.list_(pa.int64())), mask_col.cast(pa.list_(pa.int8()))
    table = pa.Table.from_arrays([ids_col, mask_col, seq], names=["input_ids", "loss_mask", "seq_len"])
    features = datasets.Features({
        "input_ids": datasets.Sequence(datasets.Value("int64")),
        "loss_mask": datasets.Sequence(datasets.Value("int8")),
        "seq_len": datasets.Value("int64"),
    })
    return datasets.Dataset(datasets.table.InMemoryTable(table), info=datasets.DatasetInfo(features=features))


def token_freq(input_ids: Sequence[np.ndarray], loss_masks: Sequence[np.ndarray]) -> dict[int, int]:
    """{token_id: count} over loss-masked tokens only."""
    if not input_ids:
        return {}
    trained = np.concatenate([ids[m.astype(bool)] for ids, m in zip(input_ids, loss_masks)])
    counts = np.bincount(trained) if len(trained) else np.zeros(0, dtype=np.int64)
    nz = np.nonzero(counts)[0]
    return {int(t): int(counts[t]) for t in nz}


def write_output(output: str | Path, input_ids: Sequence[np.ndarray], loss_masks: Sequence[np.ndarray],
                 manifest: dict[str, Any]) -> Path:
    import torch

    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    try:
        _save_quietly(build_dataset(input_ids, loss_masks), tmp)
        torch.save(token_freq(input_ids, loss_masks), tmp / "token_freq.pt")
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
