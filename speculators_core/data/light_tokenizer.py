"""Load a tokenizer for stage 1 without transformers (and so without torch) where that is exact.

Why: `AutoTokenizer.from_pretrained` imports most of transformers and torch (about 3 s on a 2-core
machine) before a row is processed, on every first run for a tokenizer. Stage 1 needs little of
it: the Rust backend (`tokenizers.Tokenizer`), the chat template, the named special tokens (the
template's variables), the special added tokens (end-of-turn markers) and the vocabulary size.

`load(model_dir)` returns a `LightTokenizer` with exactly those, read from `tokenizer.json` and
`tokenizer_config.json` (+ `chat_template.jinja`) the way transformers 5's `TokenizersBackend`
reads them, or `(None, why not)` for anything it cannot vouch for; the caller then loads with
`AutoTokenizer` as before. It vouches only for the plain case: a local directory, a
`tokenizer_class` of `TokenizersBackend`/`PreTrainedTokenizerFast` (which `AutoTokenizer` loads
as `TokenizersBackend`, the tokenizer.json verbatim), no custom code, every config key one it
knows to leave the backend untouched, every special token already a special added token of the
tokenizer.json (transformers would add it otherwise), a single chat template (a string in the
config, or `chat_template.jinja`), no post-processor rebuild, and transformers 5 (the version
whose loader this mirrors). Tests compare it with `AutoTokenizer` attribute by attribute and
render every test chat template both ways (`tests/prepare/test_light_tokenizer.py`).

Chat templates are rendered in `chat_env`, a replica of transformers' own jinja environment
(`transformers.utils.chat_template_utils._compile_jinja_template`), whose import costs a second.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: the named special tokens of transformers 5 (`PreTrainedTokenizerBase.SPECIAL_TOKENS_ATTRIBUTES`)
SPECIAL_TOKENS_ATTRIBUTES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                             "mask_token")
#: tokenizer_config.json keys that leave the backend, the special tokens and the template alone
_HARMLESS_KEYS = {"tokenizer_class", "backend", "model_max_length", "clean_up_tokenization_spaces",
                  "padding_side", "truncation_side", "model_input_names", "add_bos_token", "add_eos_token",
                  "processor_class", "errors", "legacy", "name_or_path", "is_local"}
_KNOWN_KEYS = _HARMLESS_KEYS | set(SPECIAL_TOKENS_ATTRIBUTES) | {
    "added_tokens_decoder", "extra_special_tokens", "additional_special_tokens", "chat_template",
    "split_special_tokens"}
_CLASSES = ("TokenizersBackend", "PreTrainedTokenizerFast")
#: model types for which AutoTokenizer ignores the hub's tokenizer_class and uses the model's own
#: tokenizer class, which rebuilds the normalizer/pre-tokenizer (a copy of transformers'
#: `tokenization_auto.MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS`; a test checks it covers the installed one)
MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS = frozenset({
    "arctic", "camembertv2-base", "chameleon", "chatlm", "cohere_asr", "deepseek_ocr", "deepseek_ocr2",
    "deepseek_v2", "deepseek_v3", "deepseek_v32", "deepseek_v4", "deepseek_vl", "deepseek_vl_hybrid",
    "deepseek_vl_v2", "ernie4_5", "ernie4_5_moe", "fuyu", "h2ovl_chat", "hyperclovax", "hyperclovax_vision_v2",
    "hyperclovax_vlm", "internlm2", "jamba", "janus", "llava", "llava_next", "minicpm3", "minicpmv",
    "minimax_m2", "modernbert", "modernbert-decoder", "molmo", "molmo2", "nemotron", "nvfp4", "opencua",
    "openvla", "paddleocr_vl", "phi3", "phi3_v", "phimoe", "qwen2", "qwen3_5", "qwen3_5_moe",
    "qwen3_5_moe_text", "qwen4_exp", "smolvlm", "step3_vl", "step3p5", "vipllava",
})
_ADDED_FIELDS = ("content", "single_word", "lstrip", "rstrip", "normalized", "special")


class LightTokenizer:
    """What stage 1 reads from a transformers tokenizer, with the same names and values."""

    is_fast = True

    def __init__(self, backend, name_or_path: str, chat_template: str | None,
                 named: dict[str, str], extra: list[str]) -> None:
        self.backend_tokenizer = backend
        self.name_or_path = name_or_path
        self.chat_template = chat_template
        self._named = named
        self._extra = extra

    def get_chat_template(self) -> str:
        if self.chat_template is None:
            raise ValueError("no chat template")
        return self.chat_template

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return dict(self._named)

    @property
    def all_special_tokens(self) -> list[str]:
        out: list[str] = []
        for tok in list(self._named.values()) + self._extra:
            if tok not in out:
                out.append(tok)
        return out

    @property
    def added_tokens_decoder(self) -> dict:
        return self.backend_tokenizer.get_added_tokens_decoder()

    def __len__(self) -> int:
        return self.backend_tokenizer.get_vocab_size(with_added_tokens=True)


def _token_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _transformers_major() -> int | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return int(version("transformers").split(".")[0])
    except (PackageNotFoundError, ValueError):
        return None


def load(model_dir: str | os.PathLike) -> tuple[LightTokenizer | None, str]:
    """(tokenizer, "") when loading without transformers is exact here, else (None, why not)."""
    d = Path(model_dir)
    if not d.is_dir():
        return None, "not a local directory"
    if _transformers_major() != 5:
        return None, "transformers is not version 5"
    tok_json, cfg_json = d / "tokenizer.json", d / "tokenizer_config.json"
    if not tok_json.is_file() or not cfg_json.is_file():
        return None, "no tokenizer.json or tokenizer_config.json"
    for name in ("chat_template.json", "additional_chat_templates", "special_tokens_map.json", "added_tokens.json"):
        if (d / name).exists():
            return None, f"{name} present"
    try:
        cfg = json.loads(cfg_json.read_text(encoding="utf-8"))
        spec = json.loads(tok_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"unreadable tokenizer files ({exc})"
    if not isinstance(cfg, dict) or cfg.get("tokenizer_class") not in _CLASSES:
        return None, f"tokenizer_class {cfg.get('tokenizer_class') if isinstance(cfg, dict) else None!r}"
    unknown = sorted(set(cfg) - _KNOWN_KEYS)
    if unknown:
        return None, f"tokenizer_config.json key(s) {', '.join(unknown)}"
    if cfg.get("split_special_tokens"):
        return None, "split_special_tokens"
    if "fast_tokenizer_files" in cfg:
        return None, "fast_tokenizer_files"
    model_cfg = d / "config.json"
    if model_cfg.is_file():
        try:
            mc = json.loads(model_cfg.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None, "unreadable config.json"
        if not isinstance(mc, dict) or "auto_map" in mc or "tokenizer_class" in mc:
            return None, "config.json names custom code or a tokenizer class"
        if mc.get("model_type") in MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS:
            return None, f"model_type {mc['model_type']}: transformers uses its own tokenizer class"
    if spec.get("post_processor") is None:
        return None, "tokenizer.json has no post-processor (transformers builds one)"

    # special tokens: named (bos_token...) and extra, each already a special added token
    named: dict[str, str] = {}
    for key in SPECIAL_TOKENS_ATTRIBUTES:
        if cfg.get(key) is None:
            continue
        text = _token_text(cfg[key])
        if text is None:
            return None, f"{key} of an unknown form"
        named[key] = text
    extra_cfg = cfg.get("extra_special_tokens")
    if not extra_cfg:
        extra_cfg = cfg.get("additional_special_tokens")
    extra: list[str] = []
    if extra_cfg:
        if not isinstance(extra_cfg, list):
            return None, "extra_special_tokens is not a list"
        for value in extra_cfg:
            text = _token_text(value)
            if text is None:
                return None, "an extra special token of an unknown form"
            extra.append(text)
    added = {int(t["id"]): t for t in spec.get("added_tokens") or []}
    special_added = {t["content"] for t in added.values() if t.get("special")}
    missing = [t for t in list(named.values()) + extra if t not in special_added]
    if missing:
        return None, f"special token(s) not special added tokens of tokenizer.json: {missing[:3]}"
    for idx, value in (cfg.get("added_tokens_decoder") or {}).items():
        mine = added.get(int(idx))
        if not isinstance(value, dict) or mine is None or any(
                value.get(f) != mine.get(f) for f in _ADDED_FIELDS):
            return None, f"added token {idx} differs between tokenizer_config.json and tokenizer.json"

    # chat template: chat_template.jinja wins over the config's (transformers' rule)
    template = cfg.get("chat_template")
    jinja = d / "chat_template.jinja"
    if jinja.is_file():
        with open(jinja, encoding="utf-8") as fh:  # text mode, like transformers (newlines translated)
            template = fh.read()
    if template is not None and not isinstance(template, str):
        return None, "chat templates given as a list of named templates"

    from tokenizers import Tokenizer

    try:
        backend = Tokenizer.from_file(str(tok_json))
    except Exception as exc:
        return None, f"tokenizers cannot load tokenizer.json ({type(exc).__name__})"
    return LightTokenizer(backend, str(model_dir), template, named, extra), ""
