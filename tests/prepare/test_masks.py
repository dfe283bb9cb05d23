"""Golden loss masks: rendered with real chat templates, tokenised by real (tiny) fast tokenizers."""

from __future__ import annotations

import numpy as np
import pytest

from speculators_core.data.masks import backend, encode_with_masks, mask_from_offsets
from speculators_core.data.render import ChatRenderer

SYSTEM_MULTI_TURN = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
    {"role": "user", "content": "And how many people live there?"},
    {"role": "assistant", "content": "About two million people."},
]


def _tok(style_tokenizer, style):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(style_tokenizer(style))


def render_mask(tok, messages):
    text, spans = ChatRenderer(tok).render(messages)
    enc = backend(tok).encode(text, add_special_tokens=False)
    [(ids, mask)] = encode_with_masks(backend(tok), [text], [spans])
    assert tok.decode(ids.tolist()) == text  # the tokens are exactly the rendered text
    # the fast Rust lookup agrees with the plain overlap rule on explicit offsets
    assert np.array_equal(mask, mask_from_offsets(np.asarray(enc.offsets), spans))
    return text, spans, ids, mask


def masked_runs(tok, ids, mask):
    runs, cur = [], []
    for t, m in zip(ids.tolist(), mask.tolist()):
        if m:
            cur.append(t)
        elif cur:
            runs.append(tok.decode(cur))
            cur = []
    if cur:
        runs.append(tok.decode(cur))
    return runs


@pytest.mark.parametrize("style, runs", [
    ("chatml", ["The capital of France is Paris.<|im_end|>", "About two million people.<|im_end|>"]),
    ("llama3", ["The capital of France is Paris.<|eot_id|>", "About two million people.<|eot_id|>"]),
    ("deepseek", ["The capital of France is Paris.<｜end▁of▁sentence｜>",
                  "About two million people.<｜end▁of▁sentence｜>"]),
    ("generation", ["The capital of France is Paris.<|im_end|>", "About two million people.<|im_end|>"]),
    ("qwen3", ["The capital of France is Paris.<|im_end|>", "About two million people.<|im_end|>"]),
])
def test_golden_masks_system_prompt_multi_turn(style_tokenizer, style, runs):
    tok = _tok(style_tokenizer, style)
    text, _spans, ids, mask = render_mask(tok, SYSTEM_MULTI_TURN)
    assert masked_runs(tok, ids, mask) == runs
    # nothing of the system/user turns or the role headers is trained on
    unmasked = tok.decode(ids[mask == 0].tolist())
    for m in SYSTEM_MULTI_TURN:
        if m["role"] != "assistant":
            assert m["content"] in unmasked
    assert "Paris." not in unmasked and "million" not in unmasked


def test_llama3_trimmed_content_and_bos(style_tokenizer):
    tok = _tok(style_tokenizer, "llama3")
    messages = [{"role": "user", "content": "  Hi there \n"}, {"role": "assistant", "content": "\n  Hello!  How can I help?  \n"}]
    text, _spans, ids, mask = render_mask(tok, messages)
    assert text.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>")
    assert masked_runs(tok, ids, mask) == ["Hello!  How can I help?<|eot_id|>"]
    assert tok.convert_tokens_to_ids("<|begin_of_text|>") == ids[0]  # written once, by the template
    assert (ids == ids[0]).sum() == 1


def test_generation_tags_match_transformers_assistant_mask(style_tokenizer):
    tok = _tok(style_tokenizer, "generation")
    _text, _spans, ids, mask = render_mask(tok, SYSTEM_MULTI_TURN)
    ref = tok.apply_chat_template(SYSTEM_MULTI_TURN, tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True)
    assert ids.tolist() == list(ref["input_ids"])
    assert mask.tolist() == list(ref["assistant_masks"])


def test_qwen3_injected_think_blocks_not_trained(style_tokenizer):
    """The template's own empty think block is not trained on; reasoning the row's assistant wrote
    (and the template rendered verbatim) is assistant content and is."""
    tok = _tok(style_tokenizer, "qwen3")
    messages = [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "<think>\nSimple sum.\n</think>\n\nIt is 4."},
        {"role": "user", "content": "Thanks!"},
        {"role": "assistant", "content": "You're welcome."},
    ]
    text, _spans, ids, mask = render_mask(tok, messages)
    assert text.count("<think>") == 2  # one injected block per assistant turn
    assert masked_runs(tok, ids, mask) == ["<think>\nSimple sum.\n</think>\n\nIt is 4.<|im_end|>",
                                           "You're welcome.<|im_end|>"]
    unmasked = tok.decode(ids[mask == 0].tolist())
    assert "<think>\n\n</think>\n\n" in unmasked


def test_reply_that_repeats_prompt_text_is_anchored_to_its_own_turn(style_tokenizer):
    tok = _tok(style_tokenizer, "chatml")
    messages = [
        {"role": "user", "content": "Say assistant"},
        {"role": "assistant", "content": "assistant"},  # also occurs in every role header
        {"role": "user", "content": "Echo this"},
        {"role": "assistant", "content": "Echo this"},  # also the previous user text
    ]
    text, spans, ids, mask = render_mask(tok, messages)
    first = text.index("<|im_start|>assistant\n") + len("<|im_start|>assistant\n")
    second = text.rindex("<|im_start|>assistant\n") + len("<|im_start|>assistant\n")
    assert spans == [(first, first + len("assistant<|im_end|>")), (second, second + len("Echo this<|im_end|>"))]
    assert masked_runs(tok, ids, mask) == ["assistant<|im_end|>", "Echo this<|im_end|>"]


def test_content_dependent_template_falls_back_to_ordered_search(style_tokenizer):
    """The Qwen3 template branches on '</think>' in the content (reformats the reasoning), so the
    skeleton differs from the real rendering; the in-order search finds the reasoning and the
    answer of the reply after its prompt (the prompt is the same text as the answer here)."""
    tok = _tok(style_tokenizer, "qwen3")
    messages = [
        {"role": "user", "content": "Paris."},
        {"role": "assistant", "content": "<think>x</think>Paris."},
    ]
    text, spans, ids, mask = render_mask(tok, messages)
    assert text.endswith("<|im_start|>assistant\n<think>\nx\n</think>\n\nParis.<|im_end|>\n")
    x = text.index("<think>\nx") + len("<think>\n")
    start = text.index("</think>\n\n") + len("</think>\n\n")
    assert spans == [(x, x + 1), (start, start + len("Paris.<|im_end|>"))]
    assert masked_runs(tok, ids, mask) == ["x", "Paris.<|im_end|>"]


def test_reasoning_content_field_is_trained_on(style_tokenizer):
    tok = _tok(style_tokenizer, "qwen3")
    messages = [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris.", "reasoning_content": "Recall the capital."},
        {"role": "user", "content": "Thanks!"},
        {"role": "assistant", "content": "You're welcome."},
    ]
    text, _spans, ids, mask = render_mask(tok, messages)
    assert "<think>\nRecall the capital.\n</think>\n\nParis." in text
    assert masked_runs(tok, ids, mask) == ["Recall the capital.", "Paris.<|im_end|>", "You're welcome.<|im_end|>"]


def test_truncation_and_padding_in_tokenizer_json_are_ignored(style_tokenizer):
    tok = _tok(style_tokenizer, "chatml")
    tok.backend_tokenizer.enable_truncation(max_length=4)
    tok.backend_tokenizer.enable_padding(length=512)
    text, spans = ChatRenderer(tok).render(SYSTEM_MULTI_TURN)
    [(ids, mask)] = encode_with_masks(backend(tok), [text], [spans])
    assert tok.decode(ids.tolist()) == text
    assert masked_runs(tok, ids, mask)[-1] == "About two million people.<|im_end|>"
