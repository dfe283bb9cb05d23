"""`prepare_dataset` end to end on local files: output format, accounting, truncation, order,
skip/resume, and the errors that name the file and line."""

from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np
import pytest

from speculators_core.data.errors import PrepareError
from speculators_core.prepare import PrepareOptions, is_prepared, prepare_dataset


def chat(*pairs, system=None, schema="messages"):
    turns = ([("system", system)] if system else []) + [t for p in pairs for t in (("user", p[0]), ("assistant", p[1]))]
    if schema == "messages":
        return {"messages": [{"role": r, "content": c} for r, c in turns]}
    names = {"user": "human", "assistant": "gpt", "system": "system"}
    return {"conversations": [{"from": names[r], "value": c} for r, c in turns]}


GOOD = [
    chat(("What is 2 + 2?", "It is 4.")),
    chat(("Capital of France?", "Paris."), ("How big?", "About two million people."), system="Be brief.",
         schema="conversations"),
    chat(("Write a haiku about the sea.", "Waves fold into foam; salt wind combs the dunes.")),
    chat(("Thanks!", "You're welcome."), schema="conversations"),
]


def run(tok_dir, data, out, **kw):
    opts = PrepareOptions(model=str(tok_dir), data=[str(d) for d in data], output=str(out), **kw)
    return prepare_dataset(opts)


def load(out):
    import datasets

    return datasets.load_from_disk(str(out))


def test_output_format_and_token_freq(style_tokenizer, write_jsonl, tmp_path):
    import torch

    tok = style_tokenizer("chatml")
    stale, live = tmp_path / ".out.tmp-999999999-abc", tmp_path / f".out.tmp-{os.getpid()}-xyz"
    stale.mkdir(), live.mkdir()  # a killed writer's leftovers, and a running writer's
    s = run(tok, [write_jsonl(GOOD)], tmp_path / "out")
    assert not stale.exists() and live.exists()
    live.rmdir()
    ds = load(tmp_path / "out")
    assert ds.column_names == ["input_ids", "loss_mask", "seq_len"]
    assert len(ds) == s.rows_kept == 4 and s.rows_in == 4 and s.dropped == {}
    rows = ds.to_list()
    assert all(r["seq_len"] == len(r["input_ids"]) == len(r["loss_mask"]) for r in rows)
    assert all(set(r["loss_mask"]) == {0, 1} for r in rows)
    assert s.tokens == sum(r["seq_len"] for r in rows)
    assert s.trainable_tokens == sum(sum(r["loss_mask"]) for r in rows)
    by_hand = Counter()
    for r in rows:
        for t, m in zip(r["input_ids"], r["loss_mask"]):
            if m == 1:
                by_hand[t] += 1
    freq = torch.load(tmp_path / "out" / "token_freq.pt")
    assert freq == dict(by_hand)
    assert all(type(k) is int and type(v) is int for k, v in freq.items())
    manifest = json.loads((tmp_path / "out" / "prepare_manifest.json").read_text())
    assert manifest["summary"]["rows_kept"] == 4 and manifest["inputs"]["options"]["seq_length"] == 8192
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temp dir left


def test_dropped_rows_are_counted_by_reason(style_tokenizer, write_jsonl, tmp_path):
    rows = GOOD + [
        {"messages": []},                                                     # empty
        {"conversations": [{"from": "human", "value": ""}, {"from": "gpt", "value": "  "}]},  # empty
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                      {"role": "user", "content": "and?"}]},                  # trailing user turn: trimmed, kept
        {"messages": [{"role": "user", "content": "hi"}]},                   # no assistant turn at all
        {"input_ids": [1, 2, 3], "loss_mask": [0, 0, 0]},                     # nothing to train
        chat(("Hi", "K")),                                                    # 2 trainable ("K", eot) < 3
    ]
    tok = style_tokenizer("chatml")
    s = run(tok, [write_jsonl(rows)], tmp_path / "out", minimum_valid_tokens=3)
    assert s.rows_in == 10 and s.rows_kept == 5 and len(load(tmp_path / "out")) == 5
    assert s.dropped == {"empty": 2, "no_assistant_turn": 1, "no_trainable_tokens": 1,
                         "below_minimum_valid_tokens": 1}


def test_template_errors_are_dropped_and_counted(style_tokenizer, write_jsonl, tmp_path):
    rows = [chat(("Hi", "Hello there.")), chat(("Hi", "Hello there."), system="Be brief.")]
    s = run(style_tokenizer("strict"), [write_jsonl(rows)], tmp_path / "out")
    assert s.rows_kept == 1 and s.dropped == {"template_error": 1}
    assert "roles must alternate" in s.notes["template_error"] and "data.jsonl:2" in s.notes["template_error"]


def test_assistant_turns_the_template_drops_are_counted(style_tokenizer, write_jsonl, tmp_path):
    rows = [chat(("Capital of France?", "Paris."), ("How big?", "About two million people.")),
            chat(("What is 2 + 2?", "It is 4."))]
    s = run(style_tokenizer("last_only"), [write_jsonl(rows)], tmp_path / "out")
    assert s.rows_kept == 2 and s.assistant_turns_not_found == 1
    assert any("1 assistant turn(s) were not found" in line for line in s.lines())
    assert s.trainable_tokens == sum(sum(r["loss_mask"]) for r in load(tmp_path / "out").to_list())


def test_truncation_inside_an_assistant_turn(style_tokenizer, write_jsonl, tmp_path):
    tok = style_tokenizer("chatml")
    row = chat(("Tell me about the sea.", "Waves fold into foam; salt wind combs the dunes. " * 4))
    data = write_jsonl([row])
    run(tok, [data], tmp_path / "full")
    full = load(tmp_path / "full")[0]
    first = full["loss_mask"].index(1)
    cut = first + 5  # inside the assistant reply
    assert 0 not in full["loss_mask"][first:cut + 2]
    s = run(tok, [data], tmp_path / "cut", seq_length=cut)
    got = load(tmp_path / "cut")[0]
    assert got["input_ids"] == full["input_ids"][:cut] and got["loss_mask"] == full["loss_mask"][:cut]
    assert got["seq_len"] == cut and got["loss_mask"][-1] == 1 and sum(got["loss_mask"]) == 5
    assert s.truncated == 1 and s.trainable_tokens == 5
    # cut right before the reply: nothing left to train on -> dropped, and with no row kept it is an error
    with pytest.raises(PrepareError, match="no rows kept.*no_trainable_tokens=1"):
        run(tok, [data], tmp_path / "none", seq_length=first)
    assert not (tmp_path / "none").exists()


def test_pretokenized_rows_pass_through(style_tokenizer, write_jsonl, tmp_path):
    rows = [{"input_ids": [5, 6, 7, 8, 9], "loss_mask": [0, 0, 1, 1, 1]}, {"input_ids": [3, 4], "loss_mask": [0, 1]}]
    run(style_tokenizer("chatml"), [write_jsonl(rows)], tmp_path / "out", seq_length=4)
    got = sorted(load(tmp_path / "out").to_list(), key=lambda r: -r["seq_len"])
    assert got == [{"input_ids": [5, 6, 7, 8], "loss_mask": [0, 0, 1, 1], "seq_len": 4},
                   {"input_ids": [3, 4], "loss_mask": [0, 1], "seq_len": 2}]


def test_order_is_deterministic_and_independent_of_workers(style_tokenizer, write_jsonl, tmp_path):
    rows = [chat((f"Question number {i}?", f"Answer number {i}.")) for i in range(150)]
    data = write_jsonl(rows)
    tok = style_tokenizer("chatml")
    run(tok, [data], tmp_path / "a", seed=1)
    run(tok, [data], tmp_path / "b", seed=1, num_workers=2)
    run(tok, [data], tmp_path / "c", seed=2)
    s = run(tok, [data], tmp_path / "d", seed=1, max_samples=70, num_workers=2)
    a, b, c, d = (load(tmp_path / n)["input_ids"] for n in "abcd")
    assert a == b
    assert a != c and sorted(map(tuple, a)) == sorted(map(tuple, c))
    assert d == a[:70] and s.rows_in == 70 and s.rows_total == 150


def test_several_sources_json_array_and_directory(style_tokenizer, write_jsonl, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps(GOOD[:2]))
    (folder / "b.jsonl").write_text("\n".join(json.dumps(r) for r in GOOD[2:]) + "\n")
    single = write_jsonl([GOOD[0]], "single.jsonl")
    s = run(style_tokenizer("deepseek"), [folder, single], tmp_path / "out")
    assert s.rows_total == 5 and s.rows_kept == 5
    # an output kept inside the data directory is not read back as data
    s = run(style_tokenizer("deepseek"), [folder], folder / "prepared")
    assert s.rows_total == 4
    (folder / "more.jsonl").write_text(json.dumps(GOOD[0]) + "\n")
    s = run(style_tokenizer("deepseek"), [folder], folder / "prepared", overwrite=True)
    assert s.rows_total == 5 and not s.already_prepared


def test_is_prepared_does_not_reread_unchanged_data(style_tokenizer, write_jsonl, tmp_path, monkeypatch):
    from speculators_core.data import manifest

    data = write_jsonl(GOOD)
    opts = PrepareOptions(model=str(style_tokenizer("chatml")), data=[str(data)], output=str(tmp_path / "out"))
    prepare_dataset(opts)
    real, hashed = manifest.file_sha256, []
    monkeypatch.setattr(manifest, "file_sha256", lambda p: hashed.append(str(p)) or real(p))
    assert is_prepared(opts) and str(data) not in hashed
    os.utime(data, ns=(1, 1))  # touched: hashed again, same content -> still prepared
    assert is_prepared(opts) and str(data) in hashed


def test_skip_resume_and_overwrite(style_tokenizer, write_jsonl, tmp_path):
    tok, data, out = style_tokenizer("chatml"), write_jsonl(GOOD), tmp_path / "out"
    opts = PrepareOptions(model=str(tok), data=[str(data)], output=str(out))
    assert not is_prepared(opts)
    assert not prepare_dataset(opts).already_prepared
    assert is_prepared(opts)
    argv = ["--model", str(tok), "--data", str(data), "--output", str(out), "--num-preprocessing-workers", "3"]
    assert is_prepared(argv)  # the worker count does not change the output
    again = prepare_dataset(opts)
    assert again.already_prepared and "already prepared" in again.lines()[0]
    other = PrepareOptions(model=str(tok), data=[str(data)], output=str(out), seq_length=64)
    assert not is_prepared(other)
    with pytest.raises(PrepareError, match=r"other inputs \(different options\).*--overwrite"):
        prepare_dataset(other)
    other.overwrite = True
    assert not prepare_dataset(other).already_prepared and is_prepared(other) and not is_prepared(opts)
    data.write_text(data.read_text() + json.dumps(chat(("One more?", "Yes."))) + "\n")
    assert not is_prepared(other)  # the data changed
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(PrepareError, match="not a dataset prepared by this tool"):
        prepare_dataset(PrepareOptions(model=str(tok), data=[str(data)], output=str(foreign)))
    assert (foreign / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("line, message", [
    ('{"messages": [{"role": "user", "content": "hi"}', r"data.jsonl:2: unreadable JSON line"),
    ('{"text": "hello"}', r"data.jsonl:2: unknown schema \(keys: text\)"),
    ('{"messages": [{"role": "robot", "content": "hi"}]}', r"data.jsonl:2: turn 0: unknown role 'robot'"),
    ('{"input_ids": [1, 2], "loss_mask": [1]}', r"data.jsonl:2: 'input_ids' has 2 entries but 'loss_mask' has 1"),
    ('{"input_ids": [1, 99999], "loss_mask": [0, 1]}', r"data.jsonl:2: token id 99999 is outside the tokenizer's vocabulary"),
])
def test_bad_rows_name_file_and_line(style_tokenizer, write_jsonl, tmp_path, line, message):
    data = write_jsonl([GOOD[0], line, GOOD[1]])
    with pytest.raises(PrepareError, match=message):
        run(style_tokenizer("chatml"), [data], tmp_path / "out")
    many = write_jsonl([GOOD[0]] * 70 + [line] + [GOOD[1]] * 70, "many.jsonl")
    with pytest.raises(PrepareError, match=message.replace("data.jsonl:2", "many.jsonl:71")):
        run(style_tokenizer("chatml"), [many], tmp_path / "out", num_workers=2)  # raised in a worker
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_template_without_assistant_span_names_the_row(style_tokenizer, write_jsonl, tmp_path):
    data = write_jsonl([GOOD[0]])
    with pytest.raises(PrepareError, match=r"data.jsonl:1: the chat template rendered none of this row's assistant turns"):
        run(style_tokenizer("user_only"), [data], tmp_path / "out")


def test_tokenizer_not_found_offline(write_jsonl, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PrepareError, match=r"--model no-such-org/no-such-model: no tokenizer files found.*huggingface-cli download"):
        run("no-such-org/no-such-model", [write_jsonl(GOOD)], tmp_path / "out")


def test_missing_data_path_and_bad_json_file(style_tokenizer, tmp_path):
    with pytest.raises(PrepareError, match=r"--data .*nope.jsonl: no such file or directory"):
        run(style_tokenizer("chatml"), [tmp_path / "nope.jsonl"], tmp_path / "out")
    bad = tmp_path / "bad.json"
    bad.write_text('[\n  {"messages": []},\n  {oops}\n]')
    with pytest.raises(PrepareError, match=r"bad.json:3: not valid JSON"):
        run(style_tokenizer("chatml"), [bad], tmp_path / "out")


def test_hf_sources_use_datasets_load_dataset(style_tokenizer, write_jsonl, tmp_path, monkeypatch):
    """`sharegpt`/`ultrachat` go through `datasets.load_dataset(<id>, split=...)`; here it is
    answered from a local file (no internet), and refused offline with a clear fix."""
    import datasets

    real = datasets.load_dataset
    local = write_jsonl([chat(("Hi", "Hello!"), schema="conversations")] * 3, "sharegpt.jsonl")
    calls = []

    def fake(name, split=None, **kw):
        calls.append((name, split))
        return real("json", data_files=str(local), split="train")

    monkeypatch.setattr(datasets, "load_dataset", fake)
    s = run(style_tokenizer("chatml"), ["sharegpt"], tmp_path / "out")
    assert calls == [("Aeala/ShareGPT_Vicuna_unfiltered", "train")] and s.rows_kept == 3
    monkeypatch.setattr(datasets, "load_dataset", real)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(PrepareError, match=r"--data ultrachat: cannot load the HF dataset HuggingFaceH4/ultrachat_200k \(split train_sft\).*Fix"):
        run(style_tokenizer("chatml"), ["ultrachat"], tmp_path / "out2")


def test_is_prepared_is_cheap(style_tokenizer, write_jsonl, tmp_path):
    """The supervisor/TUI may call is_prepared on their start path: no torch/transformers/datasets."""
    import subprocess
    import sys

    data = write_jsonl(GOOD)
    argv = ["--model", str(style_tokenizer("chatml")), "--data", str(data), "--output", str(tmp_path / "out")]
    prepare_dataset(PrepareOptions(model=argv[1], data=[argv[3]], output=argv[5]))
    code = ("import sys; from speculators_core.prepare import is_prepared; ok = is_prepared(sys.argv[1:]); "
            "heavy = sorted(m for m in ('torch', 'transformers', 'datasets', 'numpy') if m in sys.modules); "
            "print(ok, heavy)")
    p = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert p.stdout.strip() == "True []", p.stderr


def test_writer_splits_columns_into_chunks_with_32bit_offsets(tmp_path):
    """Billions of tokens do not fit one arrow list array (32-bit offsets): columns are chunked."""
    import datasets

    from speculators_core.data.writer import build_dataset

    rng = np.random.default_rng(0)
    ids = [rng.integers(0, 1000, size=n) for n in (5, 7, 3, 9, 1, 6)]
    masks = [(rng.random(len(a)) < 0.5).astype(np.int8) for a in ids]
    ds = build_dataset(ids, masks, max_values=10)
    assert ds.data.column("input_ids").num_chunks > 1
    ds.save_to_disk(str(tmp_path / "d"))
    back = datasets.load_from_disk(str(tmp_path / "d"))
    assert back["input_ids"] == [a.tolist() for a in ids] and back["loss_mask"] == [m.tolist() for m in masks]
    assert back["seq_len"] == [len(a) for a in ids]


def test_a_dead_worker_is_an_error_not_a_hang(style_tokenizer, write_jsonl, tmp_path, monkeypatch):
    from speculators_core.data.worker import ChunkProcessor

    real = ChunkProcessor.__call__

    def dies_on_third_chunk(self, indices):
        if 150 in list(indices):
            os._exit(9)  # as if the OOM killer took this worker
        return real(self, indices)

    monkeypatch.setattr(ChunkProcessor, "__call__", dies_on_third_chunk)
    rows = [chat((f"Question number {i}?", f"Answer number {i}.")) for i in range(300)]
    with pytest.raises(PrepareError, match="worker process died.*--num-preprocessing-workers"):
        run(style_tokenizer("chatml"), [write_jsonl(rows)], tmp_path / "out", num_workers=2)
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(120)
def test_stopping_early_with_workers_mid_result_does_not_hang(style_tokenizer, write_jsonl, tmp_path, monkeypatch):
    """--max-samples reached while another worker is sending a large result: with
    multiprocessing.Pool, terminate() killed it holding the result queue's lock and hung for good."""
    import multiprocessing
    import time

    from speculators_core.data.worker import ChunkProcessor

    real = ChunkProcessor.__call__

    def slow_first_big_rest(self, indices):
        res = real(self, indices)
        if 0 in list(indices):
            time.sleep(0.5)  # one chunk is slow, while the other worker streams 16 MiB results
        else:
            res.notes["padding"] = "x" * (16 << 20)
        return res

    monkeypatch.setattr(ChunkProcessor, "__call__", slow_first_big_rest)
    rows = [chat((f"Question {i}?", f"Answer {i}.")) for i in range(64 * 16)]
    data = write_jsonl(rows)
    for k in range(3):
        s = run(style_tokenizer("chatml"), [data], tmp_path / f"out{k}", num_workers=2, max_samples=5 + k, seed=k)
        assert s.rows_kept == 5 + k
        assert load(tmp_path / f"out{k}").num_rows == 5 + k
    assert multiprocessing.active_children() == []
