"""The output writer without `datasets` and `torch`: the same bytes as `Dataset.save_to_disk`
(all files; state.json's fingerprint aside) and as `torch.save`, on real prepared data and on
synthetic columns that take several shards, record batches and arrow chunks."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from speculators_core.data import writer
from speculators_core.prepare import PrepareOptions, prepare_dataset
from tests.prepare.test_prepare import GOOD, chat


def _columns(n, seed=0, max_len=60):
    rng = np.random.default_rng(seed)
    ids = [rng.integers(0, 129000, size=int(rng.integers(1, max_len))) for _ in range(n)]
    masks = [(rng.random(len(a)) < 0.5).astype(np.int8) for a in ids]
    return ids, masks


def _save_with_datasets(ids, masks, path, max_shard_size=None, max_values=1 << 30):
    import datasets

    datasets.disable_progress_bars()
    writer.build_dataset(ids, masks, max_values=max_values).save_to_disk(str(path), max_shard_size=max_shard_size)


def _assert_same_dir(ours, ref):
    names = sorted(p.name for p in ref.iterdir())
    assert sorted(p.name for p in ours.iterdir()) == names
    for name in names:
        a, b = (ours / name).read_bytes(), (ref / name).read_bytes()
        if name == "state.json":
            sa, sb = json.loads(a), json.loads(b)
            assert len(sa.pop("_fingerprint")) == len(sb.pop("_fingerprint")) == 16
            assert sa == sb and list(json.loads(a)) == list(json.loads(b))
        else:
            assert a == b, name


@pytest.mark.parametrize("n, shard_bytes, max_values", [
    (5, None, 1 << 30),           # one shard, one record batch
    (2600, None, 1 << 30),        # one shard, three record batches (1000 rows each)
    (2600, 100_000, 1 << 30),     # several shards, uneven split
    (2600, 150_000, 5_000),       # several shards over a column of many arrow chunks
])
def test_arrow_dir_is_what_save_to_disk_writes(tmp_path, monkeypatch, n, shard_bytes, max_values):
    ids, masks = _columns(n)
    _save_with_datasets(ids, masks, tmp_path / "ref", shard_bytes, max_values)
    if shard_bytes:
        monkeypatch.setattr(writer, "_MAX_SHARD_BYTES", shard_bytes)
    names = writer.save_arrow_dir(writer.build_table(ids, masks, max_values), tmp_path / "ours", "0123456789abcdef")
    assert len(names) == (1 if shard_bytes is None else len(list((tmp_path / "ref").glob("*.arrow"))))
    if shard_bytes:
        assert len(names) > 2
    _assert_same_dir(tmp_path / "ours", tmp_path / "ref")

    import datasets

    a, b = datasets.load_from_disk(str(tmp_path / "ours")), datasets.load_from_disk(str(tmp_path / "ref"))
    assert a.features == b.features and a.column_names == b.column_names
    assert a["input_ids"] == [x.tolist() for x in ids] and a["loss_mask"] == [m.tolist() for m in masks]
    assert a.data.table.equals(b.data.table)
    assert json.loads((tmp_path / "ours" / "state.json").read_text())["_fingerprint"] == "0123456789abcdef"


@pytest.mark.parametrize("freq", [{}, {7: 1}, "many"])
def test_token_freq_is_what_torch_save_writes(tmp_path, freq):
    import torch

    if freq == "many":  # several pickle SETITEMS batches, ints of every pickle width
        rng = np.random.default_rng(1)
        keys = np.unique(rng.integers(0, 129000, size=50000))
        freq = {int(k): int(v) for k, v in zip(keys, rng.integers(1, 1 << 40, size=len(keys)))}
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    torch.save(freq, tmp_path / "a" / "token_freq.pt")
    writer.save_token_freq(freq, tmp_path / "b" / "token_freq.pt")
    assert (tmp_path / "a" / "token_freq.pt").read_bytes() == (tmp_path / "b" / "token_freq.pt").read_bytes()
    back = torch.load(tmp_path / "b" / "token_freq.pt", weights_only=True)
    assert back == freq and list(back) == list(freq)


def test_prepared_output_is_what_datasets_and_torch_write(style_tokenizer, write_jsonl, tmp_path, monkeypatch):
    """Real prepared data: the output directory against save_to_disk/torch.save of the same rows,
    in one shard and in several."""
    import datasets
    import torch

    rows = [chat((f"Question {i}: " + "word " * (i % 40), f"Answer {i}. " + "more " * (i % 70))) for i in range(300)]
    out = tmp_path / "out"
    prepare_dataset(PrepareOptions(model=str(style_tokenizer("chatml")), data=[str(write_jsonl(rows + GOOD))],
                                   output=str(out), num_workers=2))
    ds = datasets.load_from_disk(str(out))
    ids = [np.array(x, dtype=np.int64) for x in ds["input_ids"]]
    masks = [np.array(x, dtype=np.int8) for x in ds["loss_mask"]]
    _save_with_datasets(ids, masks, tmp_path / "ref")
    (tmp_path / "ref" / "tf").mkdir()
    torch.save(writer.token_freq(ids, masks), tmp_path / "ref" / "tf" / "token_freq.pt")
    assert (out / "token_freq.pt").read_bytes() == (tmp_path / "ref" / "tf" / "token_freq.pt").read_bytes()
    (tmp_path / "ref" / "tf" / "token_freq.pt").unlink(), (tmp_path / "ref" / "tf").rmdir()
    for name in ("token_freq.pt", "prepare_manifest.json"):
        (tmp_path / "ref" / name).write_bytes((out / name).read_bytes())
    _assert_same_dir(out, tmp_path / "ref")
    # several shards of the same real rows
    shard_bytes = ds.data.nbytes // 3
    _save_with_datasets(ids, masks, tmp_path / "ref3", shard_bytes)
    monkeypatch.setattr(writer, "_MAX_SHARD_BYTES", shard_bytes)
    writer.save_arrow_dir(writer.build_table(ids, masks), tmp_path / "ours3", "0" * 16)
    assert len(list((tmp_path / "ours3").glob("*.arrow"))) > 2
    _assert_same_dir(tmp_path / "ours3", tmp_path / "ref3")


def test_writing_imports_neither_datasets_nor_torch(style_tokenizer, write_jsonl, tmp_path):
    code = (
        "import sys\n"
        "from speculators_core.prepare import PrepareOptions, prepare_dataset\n"
        f"prepare_dataset(PrepareOptions(model={str(style_tokenizer('chatml'))!r}, data=[{str(write_jsonl(GOOD))!r}], "
        f"output={str(tmp_path / 'out')!r}, num_workers=2))\n"
        "print(sorted(m for m in ('torch', 'datasets', 'transformers') if m in sys.modules))\n"
    )
    env_out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert env_out.stdout.strip().splitlines()[-1] == "[]"
