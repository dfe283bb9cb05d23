"""Stage-1 throughput: samples/s and tokens/s of data preparation, against two references.

    .venv/bin/python benchmarks/prepare_bench.py [--rows 2000] [--workers 1 2] [--model DIR]

Generates N synthetic multi-turn chats (1-8 user/assistant pairs, a few hundred to several thousand
tokens, log-uniform) and times, on the same rows and the same tokenizer (a byte-level BPE trained
here, ChatML template, unless --model names a local tokenizer directory):

  baseline   per row: apply_chat_template(tokenize=False) + tokenizer(text, offsets) + a regex for
             the assistant spans + a Python loop over the tokens to build the mask
  encode     the tokenizer's own batch encode of the already rendered texts (Rust, no masks)
  prepare    our path in-process (render + word encoder + masks + truncation), 1 process, with a
             fresh word memo every run (cold: the memo fills as it goes, as in a real run)
  exact      the same with --exact-tokenizer (render + Rust batch encode + masks)
  end-to-end prepare_dataset (read JSONL, process, write the datasets dir) with 1 and 2 workers

Targets (issue #3): prepare >= 3x baseline; prepare within 1.5x of encode. All timings are
single-threaded per process (TOKENIZERS_PARALLELISM=false). The in-process figures are CPU time
of this process, best of --repeat runs (robust when other jobs share the machine); the end-to-end
figures are wall time (and CPU time, children included).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


# -- synthetic chats ----------------------------------------------------------------------------------
def _lexicon(rng: random.Random, n: int = 6000) -> list[str]:
    syll = ["ka", "to", "ri", "en", "ul", "mar", "sen", "qua", "tion", "er", "in", "ex", "pro", "de", "lo",
            "at", "ble", "ing", "ment", "st", "or", "al", "vi", "co", "nu", "ph", "zy", "the", "and", "is"]
    words = {"".join(rng.choice(syll) for _ in range(rng.choice((1, 1, 2, 2, 3, 4)))) for _ in range(n)}
    return sorted(words)


def _paragraph(rng: random.Random, lex: list[str], n_words: int) -> str:
    out, sent = [], []
    for _ in range(n_words):
        w = rng.choice(lex)
        if rng.random() < 0.04:
            w = str(rng.randint(0, 10_000))
        sent.append(w)
        if len(sent) > rng.randint(6, 22):
            s = " ".join(sent)
            out.append(s[0].upper() + s[1:] + rng.choice((".", ".", ".", "?", "!", ":")))
            sent = []
    if sent:
        out.append(" ".join(sent) + ".")
    text = " ".join(out)
    if rng.random() < 0.2:  # markdown and code, as real assistant replies have
        code = "\n".join(f"    {rng.choice(lex)} = {rng.choice(lex)}({rng.randint(0, 99)})" for _ in range(rng.randint(2, 12)))
        text += f"\n\n```python\ndef {rng.choice(lex)}():\n{code}\n```\n\n- {rng.choice(lex)}\n- {rng.choice(lex)}"
    return text


def synthetic_chats(n: int, seed: int = 0) -> list[list[dict]]:
    rng = random.Random(seed)
    lex = _lexicon(rng)
    chats = []
    for _ in range(n):
        total_words = int(math.exp(rng.uniform(math.log(200), math.log(4000))))  # ~1.4 tokens per word
        pairs = rng.randint(1, 8)
        msgs = []
        if rng.random() < 0.3:
            msgs.append({"role": "system", "content": _paragraph(rng, lex, rng.randint(8, 40))})
        for _ in range(pairs):
            share = total_words / pairs
            msgs.append({"role": "user", "content": _paragraph(rng, lex, max(3, int(share * rng.uniform(0.1, 0.4))))})
            msgs.append({"role": "assistant", "content": _paragraph(rng, lex, max(3, int(share * rng.uniform(0.6, 0.9))))})
        chats.append(msgs)
    return chats


def stdlib_chats(n: int, seed: int = 0) -> list[list[dict]]:
    """Chats cut from this Python's standard library sources: natural identifiers, prose in
    docstrings and comments, a long-tailed vocabulary (the synthetic lexicon repeats 6000 words)."""
    import sysconfig

    rng = random.Random(seed)
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py"))
    rng.shuffle(files)
    text, pos, chats = "", 0, []
    for f in files:
        if len(text) > n * 12_000:
            break
        try:
            text += f.read_text(encoding="utf-8") + "\n"
        except (OSError, UnicodeDecodeError):
            continue
    for _ in range(n):
        total = int(math.exp(rng.uniform(math.log(800), math.log(16000))))  # ~3.5 chars per token
        pairs = rng.randint(1, 8)
        msgs = []
        for _ in range(pairs):
            for role, share in (("user", 0.25), ("assistant", 0.75)):
                k = max(8, int(total / pairs * share))
                msgs.append({"role": role, "content": text[pos : pos + k]})
                pos = (pos + k) % max(1, len(text) - 20_000)
        chats.append(msgs)
    return chats


def bench_tokenizer(out_dir: Path, chats: list[list[dict]], vocab_size: int) -> Path:
    from speculators_core.demo import build_tokenizer

    texts = [m["content"] for c in chats[:500] for m in c]
    tok = build_tokenizer(out_dir, vocab_size, texts)
    tok.chat_template = CHATML
    tok.save_pretrained(out_dir)
    return out_dir


# -- the timed paths ------------------------------------------------------------------------------------
_ASSISTANT = re.compile(r"<\|im_start\|>assistant\n(.*?<\|im_end\|>)", re.S)


def baseline(tok, chats):
    out = []
    for messages in chats:
        text = tok.apply_chat_template(messages, tokenize=False)
        enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
        spans = [m.span(1) for m in _ASSISTANT.finditer(text)]
        mask = []
        for s, e in enc["offset_mapping"]:
            mask.append(1 if any(s < b and e > a for a, b in spans) else 0)
        out.append((enc["input_ids"], mask))
    return out


def best_of(repeat, fn, *args):
    """Best CPU time of this process (robust on a shared machine; these paths are single-threaded)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.process_time()
        result = fn(*args)
        best = min(best, time.process_time() - t)
    return best, result


def cpu_and_wall(fn):
    """(wall s, CPU s of this process and its reaped children, result)."""
    t0, c0 = time.perf_counter(), os.times()
    result = fn()
    c1 = os.times()
    cpu = (c1.user + c1.system + c1.children_user + c1.children_system) - (
        c0.user + c0.system + c0.children_user + c0.children_system)
    return time.perf_counter() - t0, cpu, result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--model", default=None, help="local tokenizer/model directory (default: train a BPE here)")
    p.add_argument("--vocab-size", type=int, default=16384)
    p.add_argument("--corpus", choices=("synthetic", "stdlib"), default="synthetic",
                   help="synthetic chats (a 6000-word lexicon) or chats cut from Python's stdlib sources")
    p.add_argument("--seq-length", type=int, default=8192)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)

    import numpy as np
    from transformers import AutoTokenizer

    from speculators_core.data.sources import RowTable, LocalFile
    from speculators_core.data.worker import ChunkProcessor
    from speculators_core.prepare import CHUNK_ROWS, PrepareOptions, prepare_dataset

    work = Path(tempfile.mkdtemp(prefix="prepare-bench-"))
    chats = (stdlib_chats if a.corpus == "stdlib" else synthetic_chats)(a.rows)
    model = Path(a.model) if a.model else bench_tokenizer(work / "tok", chats, a.vocab_size)
    tok = AutoTokenizer.from_pretrained(model)
    tok.model_max_length = 10**9  # the baseline's per-row call would warn about long rows
    import datasets  # noqa: F401  (imported up front: the end-to-end timings should not include imports)
    import torch  # noqa: F401
    if a.model:  # a real target template: the regex baseline only knows ChatML
        tok.chat_template = CHATML
    data = work / "chats.jsonl"
    data.write_text("".join(json.dumps({"messages": c}) + "\n" for c in chats))
    texts = [tok.apply_chat_template(c, tokenize=False) for c in chats]
    be = tok.backend_tokenizer

    table = RowTable([LocalFile(data, [{"messages": c} for c in chats], [f"row {i}" for i in range(len(chats))])])
    def fresh(exact):
        return ChunkProcessor(table, tok, a.seq_length, None, chat_template=tok.chat_template, exact_tokenizer=exact)

    if fresh(False).word_encoder is None:
        print(f"note: no word encoder for this tokenizer ({fresh(False).word_encoder_off})")
    chunks = [list(range(i, min(i + CHUNK_ROWS, len(chats)))) for i in range(0, len(chats), CHUNK_ROWS)]
    paths = {
        "base": lambda: baseline(tok, chats),
        "enc": lambda: be.encode_batch(texts, add_special_tokens=False),
        "hf": lambda: tok(texts, add_special_tokens=False),
        "ours": lambda: [p(c) for p in [fresh(False)] for c in chunks],
        "exact": lambda: [p(c) for p in [fresh(True)] for c in chunks],
    }
    best = {k: float("inf") for k in paths}
    out = {}
    for _ in range(a.repeat):  # round-robin, so drifting machine load hits every path alike
        for k, fn in paths.items():
            secs, out[k] = best_of(1, fn)
            best[k] = min(best[k], secs)
    t_base, t_enc, t_hf, t_ours, t_exact = best["base"], best["enc"], best["hf"], best["ours"], best["exact"]
    base = out["base"]
    n_tokens = sum(len(ids) for ids, _ in base)

    def same_as_base(results):
        ours = [(ids, m) for r in results for _, ids, m in r.kept]
        return sum(np.array_equal(ids[: a.seq_length], np.asarray(b_ids[: a.seq_length]))
                   and np.array_equal(m, np.asarray(b_m[: a.seq_length], dtype=np.int8))
                   for (ids, m), (b_ids, b_m) in zip(ours, base))

    def line(name, secs, tokens=n_tokens):
        print(f"  {name:<44} {a.rows / secs:>9.1f} samples/s {tokens / secs:>12.0f} tokens/s  ({secs:.2f} s)")

    lengths = [len(ids) for ids, _ in base]
    print(f"corpus: {a.rows} chats, {n_tokens} tokens, length mean {np.mean(lengths):.0f} / "
          f"min {min(lengths)} / max {max(lengths)}, vocab {len(tok)}; ids and masks equal to the "
          f"baseline's: word encoder {same_as_base(out['ours'])}/{len(base)}, "
          f"exact {same_as_base(out['exact'])}/{len(base)}")
    print("in-process, CPU time:")
    line("baseline (per-row template + token loop)", t_base)
    line("tokenizer batch encode (Rust encode_batch)", t_enc)
    line("tokenizer batch encode (HF tokenizer(texts))", t_hf)
    line("prepare, in-process (render+encode+masks)", t_ours)
    line("prepare --exact-tokenizer, in-process", t_exact)
    print("end-to-end, wall time:")
    e2e: list[str] = []
    for w in a.workers:
        out = work / f"out-{w}"
        opts = PrepareOptions(model=str(model), data=[str(data)], output=str(out), seq_length=a.seq_length,
                              num_workers=w, overwrite=True)
        wall, cpu, s = cpu_and_wall(lambda: prepare_dataset(opts))
        line(f"prepare_dataset, {w} worker(s): whole call", wall, s.tokens)
        line(f"prepare_dataset, {w} worker(s): processing", s.process_seconds, s.tokens)
        print(f"  {'':<44} (whole call: CPU {cpu:.2f} s incl. workers; tokenizer load, read, process, write)")
        e2e.append(f"{w} worker(s) {t_base / s.process_seconds:.2f}x processing, {t_base / wall:.2f}x whole call")
        if s.word_encoder_off or s.batch_encoded:
            print(f"  {'':<44} (encode_batch for {s.batch_encoded} rows: {s.word_encoder_off or 'characters'})")
        import shutil
        shutil.rmtree(out, ignore_errors=True)
    print(f"speedup vs baseline, 1 process: {t_base / t_ours:.2f}x (target >= 3x; --exact-tokenizer: "
          f"{t_base / t_exact:.2f}x); cost vs Rust batch encode: {t_ours / t_enc:.2f}x, vs HF batch "
          f"encode: {t_ours / t_hf:.2f}x (target <= 1.5x; --exact-tokenizer: {t_exact / t_enc:.2f}x)")
    print(f"end-to-end vs the 1-process baseline (wall time vs its CPU time): {'; '.join(e2e)}")
    import shutil
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
