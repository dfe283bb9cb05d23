"""The embedded demo target: built offline, matches its description, renders ChatML."""

from __future__ import annotations

import json

from speculators_core.builtin import demo
from speculators_core.builtin.spec import TINY_QWEN3_CONFIG
from speculators_core.target import load_target


def test_demo_chat_data_has_both_schemas_and_ends_with_assistant():
    rows = [json.loads(line) for line in demo.ASSETS_DIR.joinpath("demo_chat.jsonl").read_text().splitlines()]
    assert len(rows) >= 200
    assert any("conversations" in r for r in rows) and any("messages" in r for r in rows)
    for r in rows:
        turns = r.get("conversations") or r["messages"]
        last = turns[-1].get("from") or turns[-1].get("role")
        assert last in ("gpt", "assistant")


def test_built_target_matches_its_spec_and_renders_chatml(tiny_target):
    from transformers import AutoTokenizer

    info = load_target("builtin:tiny-qwen3")
    assert info.path == tiny_target
    for key in ("num_hidden_layers", "hidden_size", "head_dim", "num_key_value_heads"):
        assert info.config[key] == TINY_QWEN3_CONFIG[key]
    assert info.architectures == ["Qwen3ForCausalLM"]
    tok = AutoTokenizer.from_pretrained(tiny_target)
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
                                   tokenize=False)
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"
    enc = tok(text, return_offsets_mapping=True)
    assert tok.decode(enc["input_ids"]) == text and len(tok) <= info.vocab_size
    # idempotent: a complete build is reused, not rebuilt
    mtime = (tiny_target / "model.safetensors").stat().st_mtime
    assert demo.build(tiny_target) == tiny_target
    assert (tiny_target / "model.safetensors").stat().st_mtime == mtime
