"""Tiny local tokenizers with the chat-template styles stage 1 must handle (built offline with the
`tokenizers` library, like `speculators_core.builtin.demo.build_tokenizer`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Llama-3 style: bos in the text, headers made of special tokens, content trimmed, <|eot_id|>.
LLAMA3 = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

# DeepSeek-V3 style: system text right after bos, <｜User｜>/<｜Assistant｜> markers, no newlines.
DEEPSEEK = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}"
    "{% elif message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{{ '<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<｜Assistant｜>' }}{% endif %}"
)

# ChatML with {% generation %} blocks around what the model generates.
GENERATION = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Qwen3-like: injects an empty think block into every assistant turn, renders `reasoning_content`
# or reasoning split off the content in it, strips the leading newlines of the content.
QWEN3 = (
    "{%- for message in messages -%}"
    "{%- if message.role == 'assistant' -%}"
    "{%- set content = message.content -%}"
    "{%- if message.reasoning_content is string -%}{%- set reasoning = message.reasoning_content -%}"
    "{%- elif '</think>' in content -%}"
    "{%- set reasoning = content.split('</think>')[0].split('<think>')[-1].strip('\\n') -%}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') -%}"
    "{%- else -%}{%- set reasoning = '' -%}{%- endif -%}"
    "{{ '<|im_start|>assistant\\n<think>\\n' + reasoning + '\\n</think>\\n\\n' + content.lstrip('\\n') + '<|im_end|>\\n' }}"
    "{%- else -%}"
    "{{ '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

# Llama-2 style strictness: raises on non-alternating roles (rows it rejects are dropped, counted).
STRICT = (
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
)

# Drops assistant turns entirely: no assistant span can be found.
USER_ONLY = (
    "{% for message in messages %}{% if message['role'] != 'assistant' %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endif %}{% endfor %}"
)

# Renders only the last assistant reply; earlier ones are replaced by a placeholder.
LAST_ONLY = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' and not loop.last %}{{ '<|im_start|>assistant\n(earlier reply)<|im_end|>\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endif %}"
    "{% endfor %}"
)


@dataclass(frozen=True)
class Style:
    name: str
    template: str
    specials: tuple[str, ...]
    eos: str
    bos: str | None = None


CHATML_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
STYLES = {
    "chatml": Style("chatml", CHATML, CHATML_SPECIALS, "<|im_end|>"),
    "llama3": Style("llama3", LLAMA3, ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
                    "<|eot_id|>", "<|begin_of_text|>"),
    "deepseek": Style("deepseek", DEEPSEEK, ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"),
                      "<｜end▁of▁sentence｜>", "<｜begin▁of▁sentence｜>"),
    "generation": Style("generation", GENERATION, CHATML_SPECIALS, "<|im_end|>"),
    "qwen3": Style("qwen3", QWEN3, CHATML_SPECIALS + ("<think>", "</think>"), "<|im_end|>"),
    "strict": Style("strict", STRICT, CHATML_SPECIALS, "<|im_end|>"),
    "user_only": Style("user_only", USER_ONLY, CHATML_SPECIALS, "<|im_end|>"),
    "last_only": Style("last_only", LAST_ONLY, CHATML_SPECIALS, "<|im_end|>"),
}

CORPUS = [
    "The capital of France is Paris, a city of about two million people.",
    "Write a haiku about the sea. Waves fold into foam; salt wind combs the dunes.",
    "Speculative decoding drafts tokens with a small model and verifies them with the target.",
    "def add(a, b):\n    return a + b\n",
    "You are a helpful assistant. Answer briefly and accurately.",
    "What is 2 + 2? It is 4. Thanks! You're welcome, anytime.",
] * 4


def build(out_dir: Path, style: Style, vocab_size: int = 400) -> Path:
    """Train a tiny byte-level BPE, attach the style's specials and template, save_pretrained."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(style.specials),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    kwargs = {"eos_token": style.eos, "pad_token": style.specials[0]}
    if style.bos:
        kwargs["bos_token"] = style.bos
    others = [s for s in style.specials if s not in (style.eos, style.bos)]
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, additional_special_tokens=others, **kwargs)
    fast.chat_template = style.template
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out_dir)
    return out_dir
