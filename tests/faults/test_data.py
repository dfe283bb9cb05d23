"""Fault matrix, area "data": what stage 1 (prepare) must survive: bad rows of every kind, odd
files in data directories, huge rows, an output directory shared with checkpoints and caches, a
full disk, kill -9 and Ctrl-C mid-run."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from speculators_core.data.errors import PrepareError
from speculators_core.prepare import PrepareOptions, is_prepared, prepare_dataset
from tests.prepare.conftest import style_tokenizer, write_jsonl  # noqa: F401 (fixtures)
from tests.prepare.test_prepare import GOOD, chat, load, run

pytestmark = pytest.mark.fault("data")
REPO = Path(__file__).resolve().parents[2]
OWN = {"data-00000-of-00001.arrow", "state.json", "dataset_info.json", "token_freq.pt", "prepare_manifest.json"}


def _env(**extra):
    return dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", SPECULATORS_PREPARE_CACHE="0",
                PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _no_temps(parent: Path, name: str = "out") -> bool:
    return not [p for p in parent.iterdir() if p.name.startswith(f".{name}.")]


# -- bad rows: refused with file:line, nothing written ------------------------------------------------
BAD_ROWS = {
    "bad json line": ('{"messages": [{"role": "user"', r"data.jsonl:2: unreadable JSON line"),
    "not an object": ('[1, 2]', r"data.jsonl:2: unknown schema: expected a JSON object per row, got list"),
    "unknown schema": ('{"text": "hello"}', r"data.jsonl:2: unknown schema \(keys: text\)"),
    "unknown role": ('{"messages": [{"role": "robot", "content": "hi"}]}', r"data.jsonl:2: turn 0: unknown role 'robot'"),
    "missing role": ('{"messages": [{"content": "hi"}]}', r"data.jsonl:2: turn 0: unknown role None"),
    "non-string content": ('{"messages": [{"role": "user", "content": 5}]}',
                           r"data.jsonl:2: turn 0: content must be a string, got int"),
    "content part without text": ('{"messages": [{"role": "user", "content": [{"type": "image"}]}]}',
                                  r"data.jsonl:2: turn 0: content part .* has no text"),
    "turn not an object": ('{"conversations": ["hi"]}', r"data.jsonl:2: turn 0 is str"),
    "turns not a list": ('{"messages": "hi"}', r"data.jsonl:2: 'messages' must be a list of turns"),
    "ids without mask": ('{"input_ids": [1, 2]}', r"data.jsonl:2: has 'input_ids' but no 'loss_mask'"),
    "length mismatch": ('{"input_ids": [1, 2], "loss_mask": [1]}', r"data.jsonl:2: 'input_ids' has 2 entries"),
    "negative id": ('{"input_ids": [1, -2], "loss_mask": [0, 1]}', r"data.jsonl:2: 'input_ids' must hold non-negative"),
    "mask not 0/1": ('{"input_ids": [1, 2], "loss_mask": [0, 2]}', r"data.jsonl:2: 'loss_mask' must hold only 0 and 1"),
    "id outside vocab": ('{"input_ids": [1, 99999], "loss_mask": [0, 1]}', r"data.jsonl:2: token id 99999 is outside"),
}


@pytest.mark.parametrize("line, message", list(BAD_ROWS.values()), ids=list(BAD_ROWS))
def test_bad_row_is_refused_with_file_and_line(style_tokenizer, write_jsonl, tmp_path, line, message):
    data = write_jsonl([GOOD[0], line, GOOD[1]])
    with pytest.raises(PrepareError, match=message):
        run(style_tokenizer("chatml"), [data], tmp_path / "out")
    assert not (tmp_path / "out").exists() and _no_temps(tmp_path)


BAD_FILES = {
    "not utf-8": ("bad.jsonl", b'{"messages": []}\n\xff\xfe\n', r"bad.jsonl: not UTF-8 text"),
    "json not an array": ("bad.json", b"42", r"bad.json: expected a JSON array of conversations"),
    "broken json file": ("bad.json", b'[\n {"messages": []},\n {oops}\n]', r"bad.json:3: not valid JSON"),
    "unsupported file": ("data.csv", b"a,b\n", r"data.csv: unsupported file type"),
}


@pytest.mark.parametrize("name, content, message", list(BAD_FILES.values()), ids=list(BAD_FILES))
def test_bad_file_is_refused(style_tokenizer, tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(PrepareError, match=message):
        run(style_tokenizer("chatml"), [tmp_path / name], tmp_path / "out")
    assert not (tmp_path / "out").exists()


DROPPED = {
    "empty messages": ({"messages": []}, "empty", {}),
    "whitespace only": ({"conversations": [{"from": "human", "value": " "}, {"from": "gpt", "value": "\n"}]}, "empty", {}),
    "only user turns": ({"messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "?"}]},
                        "no_assistant_turn", {}),
    "nothing trainable": ({"input_ids": [1, 2, 3], "loss_mask": [0, 0, 0]}, "no_trainable_tokens", {}),
    "too few trainable": (chat(("Hi", "K")), "below_minimum_valid_tokens", {"minimum_valid_tokens": 3}),
}


@pytest.mark.parametrize("row, reason, kw", list(DROPPED.values()), ids=list(DROPPED))
def test_dropped_row_is_counted(style_tokenizer, write_jsonl, tmp_path, row, reason, kw):
    s = run(style_tokenizer("chatml"), [write_jsonl(GOOD + [row])], tmp_path / "out", **kw)
    assert s.rows_kept == len(GOOD) and s.dropped == {reason: 1}
    assert f"{reason}=1" in s.lines()[1]


def test_template_error_is_dropped_and_named(style_tokenizer, write_jsonl, tmp_path):
    s = run(style_tokenizer("strict"), [write_jsonl([GOOD[0], chat(("a", "b"), system="s")])], tmp_path / "out")
    assert s.dropped == {"template_error": 1} and "data.jsonl:2" in s.notes["template_error"]


# -- finding 18: a chat ending with the user's turn keeps its earlier assistant turns ---------------
@pytest.mark.parametrize("tail", [["and?"], ["and?", "hello?"]], ids=["one user turn", "two user turns"])
def test_trailing_user_turns_are_trimmed_not_dropped(style_tokenizer, write_jsonl, tmp_path, tail):
    base = chat(("What is 2 + 2?", "It is 4."), ("And 3 + 3?", "It is 6."))
    longer = {"messages": base["messages"] + [{"role": "user", "content": t} for t in tail]}
    tok = style_tokenizer("chatml")
    a = run(tok, [write_jsonl([base], "a.jsonl")], tmp_path / "a")
    b = run(tok, [write_jsonl([longer], "b.jsonl")], tmp_path / "b")
    assert b.rows_kept == 1 and b.dropped == {} and b.trainable_tokens == a.trainable_tokens
    assert load(tmp_path / "b").to_list() == load(tmp_path / "a").to_list()


# -- finding 13: files in data directories ------------------------------------------------------------
def _lines(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_upper_case_extensions_are_read(style_tokenizer, tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "A.JSONL").write_text(_lines(GOOD[:2]))
    (folder / "b.Json").write_text(json.dumps(GOOD[2:]))
    s = run(style_tokenizer("chatml"), [folder], tmp_path / "out")
    assert s.rows_total == 4 and s.rows_kept == 4
    s = run(style_tokenizer("chatml"), [folder / "A.JSONL"], tmp_path / "single")
    assert s.rows_total == 2


@pytest.mark.parametrize("name, content", [("bom.jsonl", _lines(GOOD)), ("bom.json", json.dumps(GOOD))])
def test_utf8_bom_is_accepted(style_tokenizer, tmp_path, name, content):
    (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + content.encode())
    s = run(style_tokenizer("chatml"), [tmp_path / name], tmp_path / "out")
    assert s.rows_kept == len(GOOD)


def test_skipped_files_are_reported_with_why(style_tokenizer, tmp_path):
    folder = tmp_path / "d"
    (folder / ".cache").mkdir(parents=True)
    (folder / "a.jsonl").write_text(_lines(GOOD))
    (folder / ".hidden.jsonl").write_text(_lines(GOOD))
    (folder / ".cache" / "x.jsonl").write_text(_lines(GOOD))
    (folder / "notes.txt").write_text(_lines(GOOD))
    logged: list[str] = []
    s = prepare_dataset(PrepareOptions(model=str(style_tokenizer("chatml")), data=[str(folder)],
                                       output=str(tmp_path / "out")), log=logged.append)
    assert s.rows_total == len(GOOD)
    skipped = {Path(p).name: why for p, why in s.skipped_files.items()}
    assert set(skipped) == {".hidden.jsonl", ".cache", "notes.txt"}
    assert "hidden" in skipped[".hidden.jsonl"] and "hidden" in skipped[".cache"]
    assert ".txt" in skipped["notes.txt"]
    text = "\n".join(s.lines() + logged)
    assert "notes.txt" in text and ".hidden.jsonl" in text


# -- finding 11: a huge row costs what seq_length tokens cost, with the same result -----------------
def _processor(tok_dir, seq_length, monkeypatch=None, bound=None):
    from speculators_core.data import long_rows
    from speculators_core.data.sources import RowTable
    from speculators_core.data.tokenizer_loading import load_tokenizer
    from speculators_core.data.worker import ChunkProcessor

    if bound is not None:
        monkeypatch.setattr(long_rows, "CHARS_PER_TOKEN", bound)
        monkeypatch.setattr(long_rows, "SLACK_CHARS", 0)
        monkeypatch.setattr(long_rows, "ATTEMPTS", 30)  # tiny bounds: grow to the whole text, never drop
    return lambda rows: ChunkProcessor(RowTable([_table(rows)]), load_tokenizer(str(tok_dir)), seq_length, None)(
        range(len(rows)))


def _table(rows):
    from speculators_core.data.sources import LocalFile

    return LocalFile(Path("rows"), list(rows), [f"rows:{i + 1}" for i in range(len(rows))])


def _varied_rows():
    text = ("The capital of France is Paris, a city of about two million people.  It sits on the Seine;\n"
            "def add(a, b):\n    return a + b\n\n\tWaves fold into foam, salt wind combs the dunes!! 12345 ")
    rows = []
    for i in range(1, 40):
        rows.append(chat((text[: 7 * i % len(text)] + "?", (text * (1 + i % 5))[: 13 * i])))
        rows.append(chat(("q" * i, text[i:] * 3), ("again", "  spaced   reply\n\n" * i), system="Be brief."))
    return rows


@pytest.mark.parametrize("style", ["chatml", "llama3", "deepseek", "qwen3", "generation", "tiny-qwen3"])
def test_cutting_long_text_gives_the_same_ids_and_mask(style_tokenizer, tiny_target, monkeypatch, style):
    """With the cut bound forced down to 1-3 chars per token, (almost) every ordinary row goes through
    the cut path: ids, mask and truncation flags must equal the uncut path's, row by row."""
    tok = tiny_target if style == "tiny-qwen3" else style_tokenizer(style)
    rows = _varied_rows()
    for seq_length in (8, 37, 200):
        full = _processor(tok, seq_length)(rows)
        for bound in (1, 3):
            with monkeypatch.context() as m:
                cut = _processor(tok, seq_length, m, bound)(rows)
            assert cut.drops == full.drops and cut.truncated == full.truncated
            assert [(p, i.tolist(), k.tolist()) for p, i, k in cut.kept] == \
                   [(p, i.tolist(), k.tolist()) for p, i, k in full.kept]
    assert cut.cut_rows > 0


def test_a_multi_megabyte_row_is_cut_before_tokenising(tiny_target, tmp_path):
    """An 8 MB row costs about what a short one costs (measured against the same process with a
    short row: imports and the tokenizer are fixed costs)."""
    reply = ("Speculative decoding drafts tokens with a small model, and the target verifies them. " * 100_000)
    code = textwrap.dedent("""
        import json, sys, time
        from speculators_core.prepare import PrepareOptions, prepare_dataset
        t = time.perf_counter()
        s = prepare_dataset(PrepareOptions(model=sys.argv[1], data=[sys.argv[2]], output=sys.argv[3], seq_length=2048))
        # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve (it would be pytest's own peak)
        hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
        print(json.dumps({"s": time.perf_counter() - t, "rss_mb": hwm / 1024,
                          "kept": s.rows_kept, "truncated": s.truncated}))
    """)
    got = {}
    for name, text in (("small", reply[:2000]), ("big", reply)):
        data = tmp_path / f"{name}.jsonl"
        data.write_text(_lines([chat(("Tell me everything.", text)), chat(("Hi", "Hello."))]))
        p = subprocess.run([sys.executable, "-c", code, str(tiny_target), str(data), str(tmp_path / name)],
                           capture_output=True, text=True, env=_env(), timeout=120)
        assert p.returncode == 0, p.stderr[-2000:]
        got[name] = json.loads(p.stdout.strip().splitlines()[-1])
    assert (tmp_path / "big.jsonl").stat().st_size > 8_000_000
    assert got["big"]["kept"] == 2 and got["big"]["truncated"] == 1
    # before the cut: +8 s and +1.4 GB on a 2-core VM (the whole 8 MB tokenised); after: +0.3 s, +30 MB
    assert got["big"]["s"] - got["small"]["s"] < 2.5, got
    assert got["big"]["rss_mb"] - got["small"]["rss_mb"] < 250, got
    assert sorted(load(tmp_path / "big")["seq_len"])[-1] == 2048


# -- finding 2: --overwrite replaces the dataset's own files, nothing else ------------------------------
FOREIGN = {
    "checkpoints": ("checkpoints/1/model.safetensors", b"weights"),
    "hidden-states cache": ("hidden_states/hs_0.safetensors", b"cached"),
    "server scratch": ("hs_scratch/req-1.safetensors", b"scratch"),
    "a user file": ("notes.txt", b"mine"),
}


@pytest.mark.parametrize("rel, content", list(FOREIGN.values()), ids=list(FOREIGN))
def test_overwrite_keeps_everything_but_the_dataset(style_tokenizer, write_jsonl, tmp_path, rel, content):
    tok, data, out = style_tokenizer("chatml"), write_jsonl(GOOD), tmp_path / "out"
    run(tok, [data], out)
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    (out / rel).write_bytes(content)
    with pytest.raises(PrepareError, match="--overwrite") as err:  # other inputs: refused
        run(tok, [data], out, seq_length=64)
    assert rel.split("/")[0] in str(err.value) and "kept" in str(err.value)
    s = run(tok, [data], out, seq_length=64, overwrite=True)
    assert not s.already_prepared and (out / rel).read_bytes() == content
    assert is_prepared(PrepareOptions(model=str(tok), data=[str(data)], output=str(out), seq_length=64))
    assert {p.name for p in out.iterdir()} == OWN | {rel.split("/")[0]}
    assert len(load(out)) == len(GOOD) and _no_temps(tmp_path)


def test_a_directory_without_a_dataset_is_refused_naming_what_is_there(style_tokenizer, write_jsonl, tmp_path):
    tok, data, out = style_tokenizer("chatml"), write_jsonl(GOOD), tmp_path / "out"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "w").write_text("w")
    with pytest.raises(PrepareError, match=r"checkpoints/.*--overwrite"):
        run(tok, [data], out)
    run(tok, [data], out, overwrite=True)  # written beside it
    assert (out / "checkpoints" / "w").read_text() == "w" and len(load(out)) == len(GOOD)


@pytest.mark.parametrize("name", ["qwen3-8b-sharegpt-online-5k", "qwen3-8b-sharegpt-hybrid-5k", "tiny-cpu-demo"])
def test_presets_keep_checkpoints_out_of_the_data_output(name):
    from speculators_core.config.presets import find_preset

    cfg = find_preset(name).load()
    data = os.path.normpath(cfg.data.output)
    ckpt = os.path.normpath(cfg.training.checkpoint_dir)
    assert os.path.commonpath([data, ckpt]) != data, (data, ckpt)


# -- a full disk while writing: no partial output, the previous one intact -------------------------------
@pytest.mark.parametrize("when", ["arrow", "token_freq", "manifest"])
@pytest.mark.parametrize("before", ["nothing", "a dataset", "a dataset and checkpoints"])
def test_disk_full_while_writing_leaves_the_previous_output(style_tokenizer, write_jsonl, tmp_path, monkeypatch,
                                                             when, before):
    from speculators_core.data import writer

    tok, data, out = style_tokenizer("chatml"), write_jsonl(GOOD), tmp_path / "out"
    if before != "nothing":
        run(tok, [data], out)
    if before.endswith("checkpoints"):
        (out / "checkpoints").mkdir()
        (out / "checkpoints" / "w").write_text("w")
    old = _tree(out) if out.exists() else None
    target = {"arrow": "save_arrow_dir", "token_freq": "save_token_freq", "manifest": "atomic_write_json"}[when]
    real = getattr(writer, target)

    def full(*args, **kw):
        real(*args, **kw)  # part of the bytes are on disk...
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer, target, full)
    with pytest.raises(OSError, match="No space left"):
        run(tok, [data], out, seq_length=64, overwrite=True)
    assert (_tree(out) if out.exists() else None) == old
    assert _no_temps(tmp_path)


def test_file_size_limit_in_a_real_process(style_tokenizer, write_jsonl, tmp_path):
    """RLIMIT_FSIZE makes the kernel refuse the writes (EFBIG): the same guarantees, no mocks."""
    tok, data, out = style_tokenizer("chatml"), write_jsonl(GOOD * 200), tmp_path / "out"
    run(tok, [write_jsonl(GOOD, "small.jsonl")], out)
    old = _tree(out)
    code = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        from speculators_core.prepare import main
        sys.exit(main(["--model", {str(tok)!r}, "--data", {str(data)!r}, "--output", {str(out)!r}, "--overwrite"]))
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120)
    assert p.returncode != 0 and "File too large" in p.stderr, p.stderr[-2000:]
    assert _tree(out) == old and _no_temps(tmp_path)


# -- kill -9 and Ctrl-C ---------------------------------------------------------------------------------
_KILL_AT_STEP = """
import os, signal, sys
from speculators_core.data import writer
from speculators_core.prepare import main
step, real_write = int(sys.argv[1]), writer.write_output
def counting(real):
    def call(*a, **kw):
        counting.n += 1
        if counting.n == step:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*a, **kw)
    return call
counting.n = 0
def write_output(*a, **kw):
    os.replace, os.unlink, os.rename = counting(os.replace), counting(os.unlink), counting(os.rename)
    return real_write(*a, **kw)
writer.write_output = write_output
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("step", range(1, 13))
@pytest.mark.parametrize("beside", [True, False], ids=["with checkpoints beside", "dataset alone"])
def test_kill_9_while_replacing_then_rerun_completes(style_tokenizer, write_jsonl, tmp_path, step, beside):
    """kill -9 at the step-th rename/unlink of the write: the checkpoints beside the dataset survive,
    and the same command again leaves a complete dataset and no leftovers."""
    tok, data, out = style_tokenizer("chatml"), write_jsonl(GOOD), tmp_path / "out"
    run(tok, [data], out)
    if beside:
        (out / "checkpoints").mkdir()
        (out / "checkpoints" / "w").write_text("w")
    argv = ["--model", str(tok), "--data", str(data), "--output", str(out), "--seq-length", "64", "--overwrite"]
    p = subprocess.run([sys.executable, "-c", _KILL_AT_STEP, str(step), *argv], capture_output=True, text=True,
                       env=_env(), timeout=120)
    assert p.returncode in (0, -signal.SIGKILL), p.stderr[-2000:]
    opts = PrepareOptions(model=str(tok), data=[str(data)], output=str(out), seq_length=64)
    if p.returncode == 0:
        assert is_prepared(opts)
    s = prepare_dataset(PrepareOptions(**{**opts.__dict__, "overwrite": True}))
    assert s.already_prepared or p.returncode != 0
    assert is_prepared(opts) and len(load(out)) == len(GOOD) and _no_temps(tmp_path)
    assert {p.name for p in out.iterdir()} == OWN | ({"checkpoints"} if beside else set())
    if beside:
        assert (out / "checkpoints" / "w").read_text() == "w"


def _big_data(tmp_path: Path) -> Path:
    rows = [{"messages": [{"role": "user", "content": f"Question {i}: what is {i} squared?"},
                          {"role": "assistant", "content": f"{i} squared is {i * i}. " * 20}]} for i in range(30000)]
    data = tmp_path / "big.jsonl"
    data.write_text(_lines(rows))
    return data


def _start(argv, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "speculators_core.prepare", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path, start_new_session=True)
    deadline, seen = time.monotonic() + 120, ""
    while "prepare:" not in seen and time.monotonic() < deadline:  # the progress bar: processing began
        ch = proc.stderr.read(1)
        if not ch:
            break
        seen += ch
    assert "prepare:" in seen, seen
    return proc


def _group_gone(pgid: int) -> bool:
    for _ in range(20):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.25)
    return False


def test_kill_9_mid_run_then_rerun_completes(tiny_target, tmp_path):
    data, out = _big_data(tmp_path), tmp_path / "out"
    argv = ["--model", str(tiny_target), "--data", str(data), "--output", str(out), "--max-samples", "20000",
            "--num-preprocessing-workers", "2"]
    proc = _start(argv, tmp_path)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        # the workers notice the parent's pipe closing and exit
        assert _group_gone(proc.pid), "workers outlived a killed parent"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not out.exists()
    p = subprocess.run([sys.executable, "-m", "speculators_core.prepare", *argv], capture_output=True, text=True,
                       env=_env(), cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert len(load(out)) == 20000 and _no_temps(tmp_path)


@pytest.mark.parametrize("to_group", [False, True], ids=["to the process", "to the group (Ctrl-C)"])
def test_sigint_mid_run_leaves_no_output_and_no_workers(tiny_target, tmp_path, to_group):
    data, out = _big_data(tmp_path), tmp_path / "out"
    proc = _start(["--model", str(tiny_target), "--data", str(data), "--output", str(out),
                   "--num-preprocessing-workers", "2"], tmp_path)
    try:
        (os.killpg if to_group else os.kill)(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (130, -signal.SIGINT), err[-2000:]
        assert _group_gone(proc.pid), "worker processes survived Ctrl-C"
        assert not out.exists() and _no_temps(tmp_path)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# -- the hidden-states cache beside the dataset belongs to one preparation -------------------------------
def _source(out, cache, **kw):
    from speculators_core.training.data import PreparedData
    from speculators_core.training.source import RowSource

    args = dict(on_missing="raise", on_generate="delete", cache_dir=str(cache), num_aux=3, max_len=100)
    return RowSource(PreparedData(out), **{**args, **kw})


def test_training_refuses_a_cache_of_an_earlier_preparation(style_tokenizer, write_jsonl, tmp_path):
    from speculators_core.hidden_states.cache import CacheMismatch

    tok, out = style_tokenizer("chatml"), tmp_path / "out"
    run(tok, [write_jsonl(GOOD)], out)
    cache = out / "hidden_states"
    src = _source(out, cache, on_missing="generate", on_generate="cache", client=object())  # hybrid: claims it
    src.close()
    assert json.loads((cache / "cache_manifest.json").read_text())["dataset_fingerprint"]
    (cache / "hs_0.safetensors").write_bytes(b"row 0 of the first preparation")
    _source(out, cache).close()  # the same preparation: used
    run(tok, [write_jsonl(GOOD[:2], "other.jsonl")], out, overwrite=True)
    assert (cache / "hs_0.safetensors").exists()  # --overwrite keeps the cache...
    for kw in ({}, {"on_missing": "skip"}, {"on_missing": "generate", "on_generate": "cache", "client": object()}):
        with pytest.raises(CacheMismatch, match="another prepared dataset") as err:  # ...but it is not used
            _source(out, cache, **kw)
        assert str(cache) in str(err.value) and "hidden_states_cache" in err.value.fix


def test_training_refuses_an_old_cache_without_manifest(style_tokenizer, write_jsonl, tmp_path):
    from speculators_core.hidden_states.cache import CacheMismatch

    tok, out = style_tokenizer("chatml"), tmp_path / "out"
    run(tok, [write_jsonl(GOOD)], out)
    cache = out / "hidden_states"
    cache.mkdir()
    (cache / "hs_0.safetensors").write_bytes(b"old")
    with pytest.raises(CacheMismatch, match="older version"):
        _source(out, cache)


# -- an output that is a symlink (or a mount point): temp files on its own filesystem --------------------
@pytest.mark.parametrize("beside", [True, False], ids=["with checkpoints beside", "dataset alone"])
def test_symlinked_output_is_written_on_its_own_filesystem(style_tokenizer, write_jsonl, tmp_path, monkeypatch,
                                                            beside):
    from speculators_core.data import writer

    tok, data = style_tokenizer("chatml"), write_jsonl(GOOD)
    real, out = tmp_path / "elsewhere" / "ds", tmp_path / "link" / "out"
    real.mkdir(parents=True), out.parent.mkdir()
    out.symlink_to(real)
    run(tok, [data], out)
    if beside:
        (real / "checkpoints").mkdir()
        (real / "checkpoints" / "w").write_text("w")
    dirs = []
    real_mkdtemp = writer.tempfile.mkdtemp
    monkeypatch.setattr(writer.tempfile, "mkdtemp", lambda *a, **kw: dirs.append(kw.get("dir")) or real_mkdtemp(*a, **kw))
    run(tok, [data], out, seq_length=64, overwrite=True)
    assert dirs and all(os.path.realpath(d) == str(real.resolve()) for d in dirs), dirs  # not out's lexical parent
    assert out.is_symlink() and os.path.realpath(out) == str(real.resolve())  # still the link, data behind it
    assert is_prepared(PrepareOptions(model=str(tok), data=[str(data)], output=str(out), seq_length=64))
    assert {p.name for p in real.iterdir()} == OWN | ({"checkpoints"} if beside else set())
    assert not [p for p in out.parent.iterdir() if p.name != "out"]


@pytest.mark.parametrize("beside", [True, False], ids=["with checkpoints beside", "dataset alone"])
def test_a_rename_that_cannot_work_destroys_nothing(style_tokenizer, write_jsonl, tmp_path, monkeypatch, beside):
    """EXDEV (temp and output on different filesystems): the old dataset stays complete, and a rerun works."""
    tok, data, out = style_tokenizer("chatml"), write_jsonl(GOOD), tmp_path / "out"
    run(tok, [data], out)
    if beside:
        (out / "checkpoints").mkdir()
        (out / "checkpoints" / "w").write_text("w")
    old = _tree(out)
    real_replace = os.replace

    def cross_device(src, dst, *a, **kw):
        if Path(dst).parent == out or Path(src) == out:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", cross_device)
    with pytest.raises(OSError, match="cross-device"):
        run(tok, [data], out, seq_length=64, overwrite=True)
    assert _tree(out) == old and is_prepared(PrepareOptions(model=str(tok), data=[str(data)], output=str(out)))
    monkeypatch.setattr(os, "replace", real_replace)
    run(tok, [data], out, seq_length=64, overwrite=True)
    assert is_prepared(PrepareOptions(model=str(tok), data=[str(data)], output=str(out), seq_length=64))


def test_entries_made_in_the_output_during_the_write_are_kept(style_tokenizer, write_jsonl, tmp_path, monkeypatch):
    """Another run's server creates hs_scratch/ in the output while the dataset is replaced: it survives."""
    tok, data, out = style_tokenizer("chatml"), write_jsonl(GOOD), tmp_path / "out"
    run(tok, [data], out)  # the output holds the dataset alone
    real_replace = os.replace

    def racing(src, dst, *a, **kw):
        if not (out / "hs_scratch").exists() and (Path(dst).parent == out or Path(src) == out):
            (out / "hs_scratch").mkdir()
            (out / "hs_scratch" / "req-1.safetensors").write_bytes(b"scratch")
        return real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", racing)
    run(tok, [data], out, seq_length=64, overwrite=True)
    assert (out / "hs_scratch" / "req-1.safetensors").read_bytes() == b"scratch"
    assert {p.name for p in out.iterdir()} == OWN | {"hs_scratch"} and _no_temps(tmp_path)
