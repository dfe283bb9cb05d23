"""Stage 0 (regenerate) against the built-in hf engine: exact greedy ids, kill -9 + resume, pass-through
into prepare, and the engine's generation endpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO

PY = sys.executable


def regen(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "speculators_core.regenerate", *args], capture_output=True, text=True,
                          cwd=str(REPO), timeout=kw.pop("timeout", 300), **kw)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def spans(mask: list[int]) -> list[tuple[int, int]]:
    out, start = [], None
    for i, m in enumerate(mask + [0]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            out.append((start, i))
            start = None
    return out


@pytest.fixture(scope="module")
def reference(tiny_target):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_target, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(tiny_target)


def test_greedy_answers_equal_transformers_generate(hf_hidden_states_server, reference, tmp_path):
    """Done when #1: at temperature 0 every regenerated answer's ids are transformers' greedy `generate`
    of the target on the same prompt (multi-turn chats included: later turns see the new answers)."""
    import torch

    model, tok = reference
    out = tmp_path / "regen.jsonl"
    max_tokens = 24
    r = regen(["--endpoint", hf_hidden_states_server.url, "--data", "builtin:demo-chat", "--output", str(out),
               "--max-samples", "6", "--max-tokens", str(max_tokens), "--temperature", "0", "--concurrency", "4"])
    assert r.returncode == 0, r.stderr
    got = rows(out)
    assert len(got) == 6 and len({g["source"] for g in got}) == 6
    checked = multi = 0
    for row in got:
        ids, mask = row["input_ids"], row["loss_mask"]
        assert len(ids) == len(mask)
        assert row["regenerate"]["temperature"] == 0.0 and row["id"]
        assistant = [m for m in row["messages"] if m["role"] == "assistant"]
        found = spans(mask)
        assert found, row["source"]
        multi += len(assistant) > 1
        # The first turn's prompt is the chat template's own rendering of the source's first user turn(s).
        first_prompt = row["messages"][:next(i for i, m in enumerate(row["messages"]) if m["role"] == "assistant")]
        want = tok.apply_chat_template(first_prompt, add_generation_prompt=True, tokenize=False)
        assert ids[:found[0][0]] == tok(want, add_special_tokens=False)["input_ids"]
        for a, b in found:
            prompt = torch.tensor([ids[:a]])
            ref = model.generate(prompt, max_new_tokens=max_tokens, do_sample=False)[0, a:].tolist()
            assert ids[a:b] == ref, (row["source"], a, b)
            checked += 1
        # The last answer is the whole tail of the row, and its text is the decoded ids.
        assert found[-1][1] == len(ids)
        assert assistant[-1]["content"] == tok.decode(ids[found[-1][0]:], skip_special_tokens=True)
    assert checked >= 6


def test_kill_9_then_resume_writes_every_row_once(hf_hidden_states_server, tmp_path):
    """Done when #2: kill -9 in the middle (plus a torn last line), then --resume: every selected source
    row appears exactly once."""
    out = tmp_path / "regen.jsonl"
    n = 12
    args = ["--endpoint", hf_hidden_states_server.url, "--data", "builtin:demo-chat", "--output", str(out),
            "--max-samples", str(n), "--max-tokens", "32", "--concurrency", "1"]
    proc = subprocess.Popen([PY, "-m", "speculators_core.regenerate", *args], cwd=str(REPO),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    before = rows(out)
    assert 2 <= len(before) < n
    with open(out, "ab") as fh:  # a row torn mid-write
        fh.write(b'{"id": "torn", "source": "x", "messages": [')
    r = regen(args)
    assert r.returncode == 2 and "--resume" in r.stderr  # an existing output needs --resume or --overwrite
    r = regen(args + ["--resume"])
    assert r.returncode == 0, r.stderr
    assert f"{len(before)} were already there" in r.stdout
    after = rows(out)  # every line is a whole row (the torn one was cut)
    sources = [row["source"] for row in after]
    assert len(sources) == n and len(set(sources)) == n
    assert [row["source"] for row in after[:len(before)]] == [row["source"] for row in before]
    r = regen(args + ["--resume"])  # nothing left to do
    assert r.returncode == 0 and len(rows(out)) == n


def test_prepare_takes_regenerated_rows_as_they_are(hf_hidden_states_server, tiny_target, tmp_path):
    """prepare trains on the exact ids the server used and produced (pass-through rows)."""
    from datasets import load_from_disk

    from speculators_core.prepare import PrepareOptions, prepare_dataset

    out = tmp_path / "regen.jsonl"
    r = regen(["--endpoint", hf_hidden_states_server.url, "--data", "builtin:demo-chat", "--output", str(out),
               "--max-samples", "5", "--max-tokens", "16", "--temperature", "0.8", "--top-p", "0.9", "--seed", "3"])
    assert r.returncode == 0, r.stderr
    prepared = tmp_path / "data"
    prepare_dataset(PrepareOptions(model=str(tiny_target), data=[str(out)], output=str(prepared), seq_length=1024,
                                   num_workers=1))
    ds = load_from_disk(str(prepared))
    want = sorted((tuple(g["input_ids"]), tuple(g["loss_mask"])) for g in rows(out))
    have = sorted((tuple(int(x) for x in d["input_ids"]), tuple(int(x) for x in d["loss_mask"])) for d in ds)
    assert have == want


def test_engine_generation_endpoints(hf_hidden_states_server):
    """The hf engine's generation: vLLM's field names, seeded sampling is repeatable, limits are 400s."""
    url = hf_hidden_states_server.url
    with httpx.Client(timeout=120) as c:
        body = {"prompt": [5, 6, 7, 8], "max_tokens": 6, "temperature": 1.0, "seed": 11, "return_token_ids": True}
        a, b = c.post(f"{url}/completions", json=body).json(), c.post(f"{url}/completions", json=body).json()
        ca, cb = a["choices"][0], b["choices"][0]
        assert ca["prompt_token_ids"] == [5, 6, 7, 8] and len(ca["token_ids"]) == 6 == a["usage"]["completion_tokens"]
        assert ca["token_ids"] == cb["token_ids"] and ca["finish_reason"] == "length"
        assert "kv_transfer_params" not in a  # a generation writes no hidden-states file
        chat = c.post(f"{url}/chat/completions", json={"messages": [{"role": "user", "content": "hi"}],
                                                       "max_tokens": 3, "temperature": 0, "return_token_ids": True})
        j = chat.json()
        assert j["object"] == "chat.completion" and j["prompt_token_ids"] and len(j["choices"][0]["token_ids"]) <= 3
        assert j["choices"][0]["message"]["role"] == "assistant"
        plain = c.post(f"{url}/chat/completions", json={"messages": [{"role": "user", "content": "hi"}],
                                                        "max_tokens": 3, "temperature": 0}).json()
        assert "token_ids" not in plain["choices"][0] and "prompt_token_ids" not in plain
        too_long = c.post(f"{url}/completions", json={"prompt": [5] * 500, "max_tokens": 100})
        assert too_long.status_code == 400 and "max_tokens" in too_long.json()["error"]["message"]
        stream = c.post(f"{url}/chat/completions", json={"messages": [{"role": "user", "content": "x"}],
                                                         "stream": True})
        assert stream.status_code == 400 and "stream" in stream.json()["error"]["message"]
        bad = c.post(f"{url}/chat/completions", json={"messages": "hello"})
        assert bad.status_code == 400 and "messages" in bad.json()["error"]["message"]
