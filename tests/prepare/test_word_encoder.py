"""The word encoder gives exactly the tokenizer's ids and the same loss masks, on text built to
break it: many scripts, emoji, combining marks, odd whitespace, contractions, digits, added tokens
inside words, characters the two regex engines classify differently. Where it cannot be exact
(unknown tokenizer shape, such characters, text NFC changes) it must hand the row to encode_batch,
and a disagreement it did not foresee must restart the preparation with encode_batch."""

from __future__ import annotations

import random

import numpy as np
import pytest
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from speculators_core.data import word_encoder as we_mod
from speculators_core.data.masks import encode_with_masks
from speculators_core.data.word_encoder import WordEncoder, WordEncoderMismatch

QWEN2 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
# DeepSeek-V3's three splits (digits in threes, CJK runs, then words), with an empty normaliser sequence
DEEPSEEK = [r"\p{N}{1,3}", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
            r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"]
LLAMA3 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

POOLS = {
    "ascii": ["the", " cat", "Hello", " World", "x", "I", " 's", "'S", "'ll", "'LL", "'re", " don't", "it's",
              "12345", " 7", "3.14", "==", "->", " (", ")", "{", "}", ";", "#", "`", "```", "\\", "\"", "'", "?!"],
    "space": [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\u00a0", "\u3000", "\u2028", "\u0085",
              "\x0b", "\x0c", "\x1c", "\x1f", "\u200b", "\u2009"],
    "world": ["caf\u00e9", "na\u00efve", "\u00fcber", "\u017f", "'\u017f", "\u212a", "\u0130stanbul", "\u00df",
              "\u4e2d\u6587", "\u65e5\u672c\u8a9e", "\ud55c\uad6d\uc5b4", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",
              "\u0660\u0661\u0662", "\u00b2", "\u2163", "\u2460", "\u0939\u093f\u0928\u094d\u0926\u0940",
              "\u0e20\u0e32\u0e29\u0e32", "\u05e2\u05d1\u05e8\u05d9\u05ea", "\u03a9\u03bc\u03b5\u03b3\u03b1",
              "\u0416\u0438\u0437\u043d\u044c"],
    "emoji": ["\U0001f600", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\u2764\ufe0f",
              "\U0001f1eb\U0001f1f7", "\U0001d400", "\U00020000"],
    "nfc": ["e\u0301", "A\u030a", "\u1e9b\u0323"],  # decomposed: NFC changes these
    "added": ["<|im_start|>", "<|im_end|>", "<think>", "<|im_", "im_end|>", "<<|im_end|>>", "x<think>y"],
    "new": ["\ua7ce", "\u0558", "\u088f"],  # assigned in newer Unicode: the engines may disagree
}


def _text(rng: random.Random, pools: list[str]) -> str:
    parts = []
    for _ in range(rng.randint(1, 60)):
        parts.append(rng.choice(POOLS[rng.choice(pools)]))
        if rng.random() < 0.5:
            parts.append(rng.choice(POOLS["ascii"] + POOLS["space"]))
    return "".join(parts)


def _corpus() -> list[str]:
    rng = random.Random(1)
    return [_text(rng, list(POOLS)) for _ in range(400)]


def _build(style: str) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    if style == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    elif style == "deepseek":
        tok.normalizer = normalizers.Sequence([])
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(p), "isolated") for p in DEEPSEEK]
            + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        if style == "qwen2":
            tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2 if style == "qwen2" else LLAMA3), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=1200, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|im_start|>", "<|im_end|>"], show_progress=False)
    tok.train_from_iterator(_corpus(), trainer=trainer)
    # a non-special added token matched on normalised text: the second added-token pass
    tok.add_tokens([AddedToken("<think>", normalized=True, special=False)])
    # a prefix of another added token: the tokenizer matches leftmost-longest
    tok.add_tokens([AddedToken("<|im", normalized=False, special=False)])
    return tok


@pytest.fixture(scope="module", params=["gpt2", "qwen2", "llama3", "deepseek"])
def tokenizer(request):
    return _build(request.param)


def _random_spans(rng: random.Random, n: int) -> list[tuple[int, int]]:
    cuts = sorted(rng.sample(range(n + 1), k=min(n + 1, 2 * rng.randint(0, 3))))
    return [(a, b) for a, b in zip(cuts[::2], cuts[1::2]) if b > a]


def test_ids_and_masks_equal_the_tokenizers(tokenizer):
    enc, why = WordEncoder.build(tokenizer)
    assert enc is not None, why
    rng = random.Random(7)
    common = [k for k in POOLS if k not in ("nfc", "new")]
    texts = ([_text(rng, common) for _ in range(250)] + [_text(rng, list(POOLS)) for _ in range(50)]
             + ["", " ", "\n", "<|im_end|>", "\u00a0\u00a0x"])
    spans = [_random_spans(rng, len(t)) for t in texts]
    expected = encode_with_masks(tokenizer, texts, spans)
    fast = 0
    for text, row_spans, (ids, mask) in zip(texts, spans, expected):
        got = enc.encode_with_mask(text, row_spans)
        if got is None:  # handed to encode_batch: only for the reasons the encoder names
            assert not enc.eligible(text) or not text
            continue
        fast += 1
        assert got[0].dtype == np.int32 and got[1].dtype == np.int8
        assert got[0].tolist() == ids.tolist(), repr(text)
        assert got[1].tolist() == mask.tolist(), (repr(text), row_spans)
    assert fast > 150  # most rows went through the word encoder (NFC changes the Kelvin sign: qwen2 hands those on)
    assert enc.checked >= we_mod.FIRST_CHECKED


def test_rows_the_encoder_cannot_vouch_for_go_to_encode_batch(tokenizer):
    enc, _ = WordEncoder.build(tokenizer)
    spec_nfc = isinstance(tokenizer.normalizer, normalizers.NFC)
    decomposed = "caf" + "e\u0301" + " ok"
    assert (enc.encode_with_mask(decomposed, [(0, 3)]) is None) == spec_nfc
    # a character the engines disagree on (if this regex build disagrees on any of them)
    enc._probe(set(POOLS["new"]))
    for c in enc.bad_chars:
        assert enc.encode_with_mask(f"a {c} b", [(0, 1)]) is None
    assert enc.encode_with_mask("plain ascii", [(0, 5)]) is not None


def test_probe_finds_no_disagreement_on_common_scripts(tokenizer):
    enc, _ = WordEncoder.build(tokenizer)
    common = {c for word in POOLS["world"] + POOLS["emoji"] + POOLS["space"] for c in word}
    enc._probe(common)
    assert not enc.bad_chars & common, sorted(enc.bad_chars & common)
    assert all(chr(i) in enc.ok_chars for i in range(128))


@pytest.mark.parametrize("change, reason", [
    (lambda t: setattr(t, "normalizer", normalizers.Lowercase()), "normalizer Lowercase"),
    (lambda t: setattr(t, "pre_tokenizer", pre_tokenizers.Metaspace()), "not byte-level"),
    (lambda t: setattr(t, "pre_tokenizer", pre_tokenizers.ByteLevel(add_prefix_space=True)), "add_prefix_space"),
    (lambda t: setattr(t, "post_processor", processors.ByteLevel(trim_offsets=True)), "trims offsets"),
    (lambda t: t.add_tokens([AddedToken("<x>", lstrip=True)]), "strip"),
])
def test_unknown_tokenizer_shapes_are_refused_with_the_reason(change, reason):
    tok = _build("gpt2")
    change(tok)
    enc, why = WordEncoder.build(tok)
    assert enc is None and reason in why


def test_a_disagreement_is_caught_by_the_row_check(tokenizer, monkeypatch):
    enc, _ = WordEncoder.build(tokenizer)
    real = enc._miss

    def wrong(word):
        ids = real(word)
        return ids[::-1] if len(ids) > 1 else ids

    monkeypatch.setattr(enc, "_miss", wrong)
    with pytest.raises(WordEncoderMismatch, match="differ from the tokenizer's"):
        for _ in range(we_mod.FIRST_CHECKED):
            enc.encode_with_mask("internationalisation and tokenisation", [(0, 5)])


def test_prepare_restarts_with_encode_batch_after_a_mismatch(style_tokenizer, write_jsonl, tmp_path, monkeypatch):
    from datasets import load_from_disk

    from speculators_core.prepare import PrepareOptions, prepare_dataset

    rows = [{"messages": [{"role": "user", "content": f"question {i}: what is {i} + {i}?"},
                          {"role": "assistant", "content": f"The answer is {2 * i}. Internationalisation!"}]}
            for i in range(40)]
    data = write_jsonl(rows)
    model = str(style_tokenizer("chatml"))
    exact = prepare_dataset(PrepareOptions(model=model, data=[str(data)], output=str(tmp_path / "exact"),
                                           exact_tokenizer=True))
    assert exact.word_encoder_off == "--exact-tokenizer" and exact.batch_encoded == 40

    fine = prepare_dataset(PrepareOptions(model=model, data=[str(data)], output=str(tmp_path / "fine"), num_workers=2))
    assert fine.word_encoded == 40 and fine.batch_encoded == 0 and fine.word_checked >= we_mod.FIRST_CHECKED

    real_miss = WordEncoder._miss

    def wrong(self, word):
        ids = real_miss(self, word)
        return ids[::-1] if len(ids) > 1 else ids

    monkeypatch.setattr(WordEncoder, "_miss", wrong)
    logs: list[str] = []
    broken = prepare_dataset(PrepareOptions(model=model, data=[str(data)], output=str(tmp_path / "broken"),
                                            num_workers=2), log=logs.append)
    assert any("starting over with the tokenizer's encode_batch" in m for m in logs), logs
    assert broken.word_encoder_off == "--exact-tokenizer" and "word encoder mismatch" in broken.notes
    want = load_from_disk(str(tmp_path / "exact"))
    for out in ("fine", "broken"):
        got = load_from_disk(str(tmp_path / out))
        assert got["input_ids"] == want["input_ids"] and got["loss_mask"] == want["loss_mask"], out


def test_ascii_rows_use_the_stdlib_rewrite_and_stay_exact(tokenizer):
    enc, _ = WordEncoder.build(tokenizer)
    assert enc.ascii_patterns is not None  # every known pattern has an ASCII rewrite
    rng = random.Random(3)
    texts = [_text(rng, ["ascii", "space", "added"]).encode("ascii", "ignore").decode() for _ in range(200)]
    texts = [t for t in texts if t.isascii()]
    spans = [_random_spans(rng, len(t)) for t in texts]
    for text, row_spans, (ids, mask) in zip(texts, spans, encode_with_masks(tokenizer, texts, spans)):
        got = enc.encode_with_mask(text, row_spans)
        assert got is not None, repr(text)
        assert got[0].tolist() == ids.tolist() and got[1].tolist() == mask.tolist(), repr(text)


@pytest.mark.parametrize("pattern", [r"\p{Greek}+", r"(?>a+)b", r"\h+", r"[\P{L}x]", r"[a-z&&[^aeiou]]", r"(?<n>a)"])
def test_ascii_rewrite_declines_what_it_does_not_know(pattern):
    assert we_mod.ascii_pattern(pattern) is None


def test_a_wrong_ascii_rewrite_is_caught_by_the_probe(monkeypatch):
    # drop the lookahead alternative: runs of spaces before a word split differently
    real = we_mod.ascii_pattern
    monkeypatch.setattr(we_mod, "ascii_pattern", lambda p: real(p).replace(r"\s+(?!\S)|", ""))
    enc, why = WordEncoder.build(_build("gpt2"))
    assert enc is not None, why
    assert enc.ascii_patterns is None  # the probe saw the difference; regex does all the splitting


def test_bytes_missing_from_the_vocabulary_send_the_row_to_encode_batch():
    tok = Tokenizer(models.BPE())  # no byte-level alphabet, no unk token: the tokenizer drops z and q
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.train_from_iterator(["hello world"] * 5, trainers.BpeTrainer(vocab_size=50, show_progress=False))
    enc, why = WordEncoder.build(tok)
    assert enc is not None, why
    assert enc.encode_with_mask("hello world", [(0, 5)]) is not None
    assert enc.encode_with_mask("hello zq", [(0, 5)]) is None and enc.fallback_rows == 1


def test_byte_lengths_and_spec_match_the_full_serialisation():
    """nbytes is computed vectorised and the spec component by component: both as from to_str()."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    from speculators_core.data.word_encoder import _spec, bytes_to_unicode

    alphabet = sorted(set(bytes_to_unicode().values()))
    vocab = {c: i for i, c in enumerate(alphabet)}
    vocab.update({"\u4e2d": len(vocab), "ab": len(vocab) + 1, "\u0120the": len(vocab) + 2})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[("a", "b"), ("\u0120", "t"), ("\u0120t", "he")][:1]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens(["<|end|>"])
    enc, why = WordEncoder.build(tok)
    assert enc is not None, why
    assert enc.nbytes[vocab["\u4e2d"]] == -1 and enc.nbytes[vocab["ab"]] == 2 and enc.nbytes[vocab["\u0120the"]] == 4
    assert enc.nbytes[tok.token_to_id("<|end|>")] == len("<|end|>")
    assert all(enc.nbytes[vocab[c]] == 1 for c in alphabet)
    full, spec = json.loads(tok.to_str()), _spec(tok)
    for key in ("normalizer", "pre_tokenizer", "post_processor"):
        assert spec[key] == full[key], key
    assert spec["model"]["type"] == full["model"]["type"] == "BPE"
    assert [t["content"] for t in spec["added_tokens"]] == [t["content"] for t in full["added_tokens"]]
