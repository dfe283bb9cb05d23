"""The tokenizer cache of stage 1 (`data/tokenizer_cache.py`): a warm run writes the same bytes as a
cold one, any change to the tokenizer is a miss, a broken entry is a miss, and it can be turned off."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from speculators_core.data import tokenizer_cache
from speculators_core.prepare import PrepareOptions, prepare_dataset

ROWS = [{"messages": [{"role": "user", "content": f"Question {i}: what is {i} + {i}? Où est la gare ?"},
                      {"role": "assistant", "content": f"The answer is {2 * i}. Speculative decoding, 中文 {i}."}]}
        for i in range(30)]
OUTPUT_FILES = ("data-00000-of-00001.arrow", "dataset_info.json", "state.json", "token_freq.pt")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SPECULATORS_TUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SPECULATORS_PREPARE_CACHE", raising=False)
    return tmp_path / "cache" / "prepare" / "tokenizers"


def _tok_copy(style_tokenizer, tmp_path, style="chatml") -> Path:
    dst = tmp_path / f"tok-{style}"
    shutil.copytree(style_tokenizer(style), dst)
    return dst


def _run(model, data, out, **kw):
    return prepare_dataset(PrepareOptions(model=str(model), data=[str(data)], output=str(out), **kw))


def _same_bytes(a: Path, b: Path) -> None:
    for name in OUTPUT_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("style,workers", [("chatml", 1), ("llama3", 2), ("deepseek", 1)])
def test_a_warm_run_writes_the_same_bytes_as_a_cold_one(style_tokenizer, write_jsonl, tmp_path, cache, style, workers):
    model, data = _tok_copy(style_tokenizer, tmp_path, style), write_jsonl(ROWS)
    off = _run(model, data, tmp_path / "off", num_workers=workers, exact_tokenizer=True)
    cold = _run(model, data, tmp_path / "cold", num_workers=workers)
    warm = _run(model, data, tmp_path / "warm", num_workers=workers)
    assert (cold.tokenizer_cache, warm.tokenizer_cache) == ("stored", "hit")
    assert len(list(cache.glob("*.pkl"))) == 2  # the exact-tokenizer run has its own entry
    assert warm.timings["probes"] == 0.0 and cold.word_encoded == warm.word_encoded == len(ROWS)
    _same_bytes(tmp_path / "cold", tmp_path / "warm")
    _same_bytes(tmp_path / "off", tmp_path / "warm")
    assert set(cold.timings) >= {"check inputs", "load tokenizer", "probes", "read", "process", "write arrow",
                                 "token_freq"}


@pytest.mark.parametrize("change", ["template", "tokenizer.json", "config.json"])
def test_a_changed_tokenizer_is_a_miss(style_tokenizer, write_jsonl, tmp_path, cache, change):
    model, data = _tok_copy(style_tokenizer, tmp_path), write_jsonl(ROWS)
    assert _run(model, data, tmp_path / "a").tokenizer_cache == "stored"
    if change == "template":  # a template that also trains on the user turns' end marker
        cfg_path = model / "chat_template.jinja"
        if cfg_path.is_file():
            cfg_path.write_text(cfg_path.read_text().replace("<|im_start|>", "<|im_start|> "))
        else:
            cfg = json.loads((model / "tokenizer_config.json").read_text())
            cfg["chat_template"] = cfg["chat_template"].replace("<|im_start|>", "<|im_start|> ")
            (model / "tokenizer_config.json").write_text(json.dumps(cfg))
    elif change == "tokenizer.json":  # one more added token
        spec = json.loads((model / "tokenizer.json").read_text())
        new_id = max(t["id"] for t in spec["added_tokens"]) + 1
        spec["added_tokens"].append({"id": new_id, "content": "Speculative", "single_word": False, "lstrip": False,
                                     "rstrip": False, "normalized": False, "special": False})
        (model / "tokenizer.json").write_text(json.dumps(spec))
    else:  # config.json steers AutoTokenizer's class choice: part of the key
        (model / "config.json").write_text(json.dumps({"model_type": "llama"}))
    changed = _run(model, data, tmp_path / "b", overwrite=True)
    assert changed.tokenizer_cache == "stored" and len(list(cache.glob("*.pkl"))) == 2
    uncached = _run(model, data, tmp_path / "c", exact_tokenizer=True)
    from datasets import load_from_disk

    got, want = load_from_disk(str(tmp_path / "b")), load_from_disk(str(tmp_path / "c"))
    assert got["input_ids"] == want["input_ids"] and got["loss_mask"] == want["loss_mask"]
    if change != "config.json":
        assert got["input_ids"] != load_from_disk(str(tmp_path / "a"))["input_ids"]
    assert uncached.rows_kept == changed.rows_kept


def test_the_key_follows_library_versions_and_sources(tmp_path, monkeypatch):
    files = {"tokenizer.json": "ab" * 32}
    base = tokenizer_cache.cache_key(files, tmp_path, False)
    assert base == tokenizer_cache.cache_key(dict(files), tmp_path, False)
    assert base != tokenizer_cache.cache_key({"tokenizer.json": "cd" * 32}, tmp_path, False)
    assert base != tokenizer_cache.cache_key(files, tmp_path, True)
    monkeypatch.setattr(tokenizer_cache, "_version", lambda dist: "0.0-other")
    assert base != tokenizer_cache.cache_key(files, tmp_path, False)


def test_a_corrupt_or_foreign_entry_is_a_miss_and_rewritten(style_tokenizer, write_jsonl, tmp_path, cache):
    model, data = _tok_copy(style_tokenizer, tmp_path), write_jsonl(ROWS)
    _run(model, data, tmp_path / "a")
    (entry,) = cache.glob("*.pkl")
    entry.write_bytes(b"not a pickle")
    s = _run(model, data, tmp_path / "b")
    assert s.tokenizer_cache == "stored" and entry.stat().st_size > 100
    entry.write_bytes(pickle.dumps({"format": tokenizer_cache.FORMAT, "key": "someone else's"}))
    assert _run(model, data, tmp_path / "c").tokenizer_cache == "stored"
    _same_bytes(tmp_path / "a", tmp_path / "c")
    assert _run(model, data, tmp_path / "d").tokenizer_cache == "hit"


def test_off_by_environment_and_for_remote_code(style_tokenizer, write_jsonl, tmp_path, cache, monkeypatch):
    model, data = _tok_copy(style_tokenizer, tmp_path), write_jsonl(ROWS)
    assert _run(model, data, tmp_path / "a", trust_remote_code=True).tokenizer_cache == "off (remote code)"
    monkeypatch.setenv("SPECULATORS_PREPARE_CACHE", "0")
    assert _run(model, data, tmp_path / "b").tokenizer_cache == "off"
    assert not cache.exists()


def test_a_mismatch_drops_the_cached_encoder(style_tokenizer, write_jsonl, tmp_path, cache, monkeypatch):
    from speculators_core.data.word_encoder import WordEncoder

    model, data = _tok_copy(style_tokenizer, tmp_path), write_jsonl(ROWS)
    _run(model, data, tmp_path / "a")
    real_miss = WordEncoder._miss

    def wrong(self, word):
        ids = real_miss(self, word)
        return ids[::-1] if len(ids) > 1 else ids

    monkeypatch.setattr(WordEncoder, "_miss", wrong)
    s = _run(model, data, tmp_path / "b")
    assert s.tokenizer_cache == "stored" and "word encoder mismatch" in s.notes  # the exact run's own entry
    monkeypatch.undo()
    monkeypatch.setenv("SPECULATORS_TUI_CACHE", str(tmp_path / "cache"))
    assert _run(model, data, tmp_path / "c").tokenizer_cache == "stored"  # the dropped entry is rebuilt


def test_a_pickled_word_encoder_encodes_alike(style_tokenizer):
    from transformers import AutoTokenizer

    from speculators_core.data.masks import backend
    from speculators_core.data.word_encoder import WordEncoder

    be = backend(AutoTokenizer.from_pretrained(style_tokenizer("llama3")))
    enc, why = WordEncoder.build(be)
    assert enc is not None, why
    text = "<|start_header_id|>user<|end_header_id|>\n\nNaïve café, 中文 and 12345 tokens!<|eot_id|>"
    want = enc.encode_with_mask(text, [(10, 40)])
    copy = pickle.loads(pickle.dumps(enc)).bind(be)
    assert copy.memo == {} and copy.rows == 0 and copy.ok_chars >= enc.ok_chars - set(text)
    got = copy.encode_with_mask(text, [(10, 40)])
    assert (got[0] == want[0]).all() and (got[1] == want[1]).all()


def test_warm_cli_imports_neither_torch_nor_auto_tokenizer_before_processing(style_tokenizer, write_jsonl,
                                                                               tmp_path, cache):
    """The point of the cache: a warm run's tokenizer load needs no torch (imported later, on a
    thread, for token_freq.pt) and no AutoTokenizer."""
    model, data = _tok_copy(style_tokenizer, tmp_path), write_jsonl(ROWS)
    _run(model, data, tmp_path / "a")
    code = (
        "import sys\n"
        "from speculators_core import prepare\n"
        "from speculators_core.data import tokenizer_loading\n"
        "orig = tokenizer_loading.tokenizer_and_encoder\n"
        "def probe(*a, **k):\n"
        "    r = orig(*a, **k)\n"
        "    print('TORCH', 'torch' in sys.modules, 'AUTO', 'transformers.models.auto.tokenization_auto' in sys.modules)\n"
        "    return r\n"
        "tokenizer_loading.tokenizer_and_encoder = probe\n"
        f"sys.exit(prepare.main(['--model', {str(model)!r}, '--data', {str(data)!r}, '--output', {str(tmp_path / 'b')!r}]))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "TORCH False AUTO False" in p.stdout and "tokenizer cache: hit" in p.stdout


def test_cache_key_depends_on_the_loader(tmp_path, monkeypatch):
    """An entry the light loader built is not used once SPECULATORS_PREPARE_LIGHT_TOKENIZER=0 asks for
    AutoTokenizer (and back)."""
    files = {"tokenizer.json": "ab" * 32}
    monkeypatch.setenv("SPECULATORS_PREPARE_LIGHT_TOKENIZER", "1")
    light = tokenizer_cache.cache_key(files, tmp_path, False)
    monkeypatch.setenv("SPECULATORS_PREPARE_LIGHT_TOKENIZER", "0")
    assert tokenizer_cache.cache_key(files, tmp_path, False) != light
