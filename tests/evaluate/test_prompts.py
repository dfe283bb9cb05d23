"""Evaluation prompts: token-id rows, chat rows (the conversation up to its last user turn,
rendered with the target's chat template and the generation prompt), a prepared dataset's
held-out rows cut before their reply (the trainer's validation split)."""

from __future__ import annotations

import json

from speculators_core.evaluation.inputs import load_prompts


def test_chat_rows_render_up_to_the_last_user_turn_with_the_generation_prompt(tmp_path, tiny_target):
    from transformers import AutoTokenizer

    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "and now?"}, {"role": "assistant", "content": "the reply"}]
    sharegpt = [{"from": "human", "value": "one"}, {"from": "gpt", "value": "two"}]
    p = tmp_path / "p.jsonl"
    p.write_text(json.dumps({"messages": msgs}) + "\n" + json.dumps({"conversations": sharegpt}) + "\n"
                 + json.dumps({"prompt_ids": [3, 4, 5]}) + "\n")
    got = load_prompts(str(p), tiny_target)
    tok = AutoTokenizer.from_pretrained(str(tiny_target))
    want0 = tok.apply_chat_template(msgs[:3], add_generation_prompt=True, tokenize=True, return_dict=False)
    want1 = tok.apply_chat_template([{"role": "user", "content": "one"}], add_generation_prompt=True,
                                    tokenize=True, return_dict=False)
    assert got.ids == [list(want0), list(want1), [3, 4, 5]]
    assert "the reply" not in tok.decode(got.ids[0]) and tok.decode(got.ids[0]).rstrip().endswith("assistant")
    assert load_prompts(str(p), tiny_target, num_prompts=1).ids == [list(want0)]


def test_a_prepared_dataset_gives_its_validation_rows_cut_before_the_reply(demo_prepared, tiny_target):
    from speculators_core.training.data import PreparedData

    data = PreparedData(demo_prepared)
    _, val = data.split(0.1, 0)
    got = load_prompts(str(demo_prepared), tiny_target)
    assert len(got.ids) == len(val)
    for r, ids in zip(val, got.ids):
        full, mask = data.row(r)
        assert full[:len(ids)] == ids and mask[len(ids)] == 1 and not any(mask[:len(ids)])
