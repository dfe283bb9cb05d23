"""Write the prepared dataset atomically: a `datasets.save_to_disk` directory with `input_ids`,
`loss_mask` and `seq_len`, plus `token_freq.pt` and `prepare_manifest.json`, assembled in a
temporary directory and renamed into place (a crash never leaves a half-written output): a new
output is renamed in whole; in an existing one only the dataset's own files are replaced, file by
file, from a temp directory inside it (`output_dir`).

Neither `datasets` nor `torch` is imported to write them (importing both costs ~3 s of CPU, which
stage 1's workers need): `save_arrow_dir` writes the files `Dataset.save_to_disk` writes (same
shards, record batches, schema metadata, dataset_info.json and state.json; only the fingerprint in
state.json is ours), and `save_token_freq` the bytes `torch.save` writes for a {int: int} dict. Both
are tested byte for byte against those functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct
import zlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from speculators_core.data.manifest import MANIFEST
from speculators_core.data.output_dir import TMP_PREFIX, remove_dead_writers_temps, replace_own_files
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
    """A `datasets.Dataset` from per-sample arrays, built column-wise (no per-token Python); the
    reference `save_arrow_dir` is tested against (the writer itself no longer imports datasets)."""
    import datasets

    table = build_table(input_ids, loss_masks, max_values)
    features = datasets.Features({
        "input_ids": datasets.Sequence(datasets.Value("int64")),
        "loss_mask": datasets.Sequence(datasets.Value("int8")),
        "seq_len": datasets.Value("int64"),
    })
    return datasets.Dataset(datasets.table.InMemoryTable(table), info=datasets.DatasetInfo(features=features))


# -- the datasets directory, without `datasets` -----------------------------------------------------------
#: `Features` of the output as `datasets` serialises them (schema metadata, dataset_info.json)
_FEATURES = {
    "input_ids": {"feature": {"dtype": "int64", "_type": "Value"}, "_type": "List"},
    "loss_mask": {"feature": {"dtype": "int8", "_type": "Value"}, "_type": "List"},
    "seq_len": {"dtype": "int64", "_type": "Value"},
}
_DATASET_INFO = {"citation": "", "description": "", "features": _FEATURES, "homepage": "", "license": ""}
_MAX_SHARD_BYTES = 500 * 10**6      # datasets.config.MAX_SHARD_SIZE ("500MB")
_MAX_ROW_GROUP_BYTES = 100 * 10**6  # datasets.config.MAX_ROW_GROUP_SIZE ("100MB")
_MAX_BATCH_ROWS = 1000              # datasets.config.DEFAULT_MAX_BATCH_SIZE


def build_table(input_ids: Sequence[np.ndarray], loss_masks: Sequence[np.ndarray], max_values: int = 1 << 30):
    """The output's pyarrow Table (columns chunked under `max_values` values: 32-bit list offsets)."""
    import pyarrow as pa

    ids_col = _list_column(input_ids, np.int64, max_values)
    mask_col = _list_column(loss_masks, np.int8, max_values)
    seq = pa.array(np.fromiter((len(a) for a in input_ids), dtype=np.int64, count=len(input_ids)))
    return pa.Table.from_arrays([ids_col, mask_col, seq], names=["input_ids", "loss_mask", "seq_len"])


def save_arrow_dir(table, path: Path, fingerprint: str) -> list[str]:
    """Write `table` as `Dataset.save_to_disk` (datasets 4-5) writes it: ceil-ish(nbytes / 500 MB)
    contiguous shards `data-XXXXX-of-YYYYY.arrow`, each an Arrow IPC stream of record batches of
    min(1000, rows per 100 MB) rows with the features in the schema metadata, then state.json and
    dataset_info.json. Returns the shard file names."""
    import pyarrow as pa

    n = table.num_rows
    nbytes = table.nbytes
    num_shards = min(n, int(nbytes / _MAX_SHARD_BYTES) + 1)
    batch = _MAX_BATCH_ROWS
    if nbytes > 0:
        batch = min(batch, max(1, n * _MAX_ROW_GROUP_BYTES // nbytes))
    schema = table.schema.with_metadata({"huggingface": json.dumps({"info": {"features": _FEATURES}})})
    path.mkdir(parents=True, exist_ok=True)
    names = [f"data-{i:05d}-of-{num_shards:05d}.arrow" for i in range(num_shards)]
    div, mod = divmod(n, num_shards) if num_shards else (0, 0)
    for i, name in enumerate(names):
        start = div * i + min(i, mod)
        end = start + div + (1 if i < mod else 0)
        with pa.OSFile(str(path / name), "wb") as sink:
            writer = pa.RecordBatchStreamWriter(sink, schema)
            for off in range(start, end, batch):
                part = table.slice(off, min(batch, end - off)).combine_chunks()
                writer.write_table(part.replace_schema_metadata(schema.metadata), batch)
            writer.close()
    state = {"_data_files": [{"filename": name} for name in names], "_fingerprint": fingerprint,
             "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
             "_output_all_columns": False, "_split": None}
    with open(path / "state.json", "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=2, sort_keys=True)
    with open(path / "dataset_info.json", "w", encoding="utf-8") as fh:
        json.dump({k: _DATASET_INFO[k] for k in sorted(_DATASET_INFO)}, fh, indent=2)
    return names


def dataset_fingerprint(manifest: dict[str, Any]) -> str:
    """state.json's `_fingerprint` (datasets' cache key for maps of this dataset): 16 hex digits
    derived from the preparation's own fingerprint (its inputs determine the content), random when
    there is none, as datasets does for data it cannot hash."""
    fp = manifest.get("fingerprint")
    if not fp:
        return os.urandom(8).hex()
    return hashlib.sha256(f"speculators prepared dataset {fp}".encode()).hexdigest()[:16]


# -- token_freq.pt, without `torch` -------------------------------------------------------------------
_M64 = (1 << 64) - 1
#: first half of `.data/serialization_id`: torch's combined std::hash of the record names, the same
#: for every file holding no tensors (data.pkl, .format_version, .storage_alignment, byteorder, version)
_RECORD_NAMES_HASH = "02908468677762923104"


def _hash_combine(seed: int, value: int) -> int:  # c10::hash_combine on 64-bit size_t
    return (seed ^ ((value + 0x9E3779B9 + (seed << 6) + (seed >> 2)) & _M64)) & _M64


def save_token_freq(freq: dict[int, int], path: Path) -> None:
    """The bytes `torch.save(freq, path)` writes (torch 2.x zip format, 64-byte record alignment,
    no tensors): records data.pkl (pickle protocol 2), .format_version, .storage_alignment,
    byteorder, version and .data/serialization_id, stored, in a zip64-ended archive named after
    the file. Keys and values must be Python ints (as `TokenCounter.as_dict` makes them)."""
    archive = Path(path).stem
    records = [("data.pkl", pickle.dumps(freq, protocol=2)), (".format_version", b"1"),
               (".storage_alignment", b"64"), ("byteorder", b"little"), ("version", b"3\n")]
    combined = 0
    for _, data in records:
        combined = _hash_combine(combined, zlib.crc32(data))
    records.append((".data/serialization_id", f"{_RECORD_NAMES_HASH}{combined:020d}".encode()))
    out, central = bytearray(), bytearray()
    for name, data in records:
        full = f"{archive}/{name}".encode()
        offset = len(out)
        pad = -(offset + 30 + len(full) + 4) % 64  # the record's data starts 64-byte aligned
        extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
        crc = zlib.crc32(data)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 0, 0x0808, 0, 0, 0, 0, 0, 0, len(full), len(extra))
        out += full + extra + data + struct.pack("<IIII", 0x08074B50, crc, len(data), len(data))
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0, 0, 0x0808, 0, 0, 0, crc, len(data),
                               len(data), len(full), 0, 0, 0, 0, 0, offset) + full
    if len(out) + len(central) >= 0xFFFFFFFF:  # pragma: no cover - a vocabulary is far smaller
        raise ValueError("token_freq too large for this writer")
    cd_offset, n = len(out), len(records)
    out += central
    zip64_end = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 0x002D, 0, 0, n, n, len(central), cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, zip64_end, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), cd_offset, 0)
    with open(path, "wb") as fh:
        fh.write(out)


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
    remove_dead_writers_temps(out)
    exists = out.is_dir()  # a symlink to a directory, or a mount point, too: then it is never moved
    if exists:  # temp inside it: on its filesystem, whatever its lexical parent is
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=out))
    else:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    try:
        t = time.perf_counter()
        save_arrow_dir(build_table(input_ids, loss_masks), tmp, dataset_fingerprint(manifest))
        timings["write arrow"] = time.perf_counter() - t
        t = time.perf_counter()
        save_token_freq(freq if freq is not None else token_freq(input_ids, loss_masks), tmp / "token_freq.pt")
        timings["token_freq"] = time.perf_counter() - t
        atomic_write_json(tmp / MANIFEST, manifest)
        if exists:  # file by file: checkpoints, caches, a server's scratch made meanwhile... never touched
            replace_own_files(tmp, out)
        else:
            replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
