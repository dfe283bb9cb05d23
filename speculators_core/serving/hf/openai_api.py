"""The hf engine's generation requests in vLLM's OpenAI shapes (vLLM 0.32's protocol classes).

`/v1/chat/completions`: the messages rendered with the tokenizer's chat template (generation prompt
on, `chat_template_kwargs` passed through), tokenised without special tokens added, as vLLM does;
with `return_token_ids` the response carries `prompt_token_ids` (top level) and each choice's
`token_ids`. `/v1/completions` with `max_tokens > 1`: with `return_token_ids`, each choice carries
`prompt_token_ids` and `token_ids`. The generated ids include the end-of-sequence token that ended
the answer (as vLLM's do); the text is decoded without special tokens.

Validation errors are `ValueError`s whose text names the field (the HTTP layer answers 400).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Optional

from speculators_core.serving.hf.generation import GenRequest, SamplingParams

#: Request fields this engine understands (others are ignored, as OpenAI-compatible servers do).
UNSUPPORTED = ("stream", "stop", "logprobs", "top_logprobs", "n", "best_of", "echo", "tools")


def _number(body: dict, key: str, default: float, lo: float, hi: float) -> float:
    v = body.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise ValueError(f"{key}: expected a number in [{lo}, {hi}], got {str(v)[:40]}")
    return float(v)


def _int(body: dict, key: str, default: Optional[int], lo: int, hi: int) -> Optional[int]:
    v = body.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"{key}: expected an integer in [{lo}, {hi}], got {str(v)[:40]}")
    return v


def check_unsupported(body: dict) -> None:
    """ValueError for a field this engine does not implement (rather than silently ignoring it)."""
    for key in UNSUPPORTED:
        v = body.get(key)
        if v is None or v is False or v == [] or (key in ("n", "best_of") and v == 1):
            continue
        raise ValueError(f"{key}: not supported by the built-in hf engine (use vLLM for it)"
                         + ("; use stop_token_ids" if key == "stop" else ""))


def sampling_params(body: dict, prompt_len: int, max_model_len: int, vocab: int,
                    max_tokens_key: str = "max_tokens") -> SamplingParams:
    """The sampling settings of a request; ValueError naming the field when one is out of range."""
    room = max_model_len - prompt_len
    if room < 1:
        raise ValueError(f"This model's maximum context length is {max_model_len} tokens. However, your request "
                         f"has {prompt_len} input tokens. Please reduce the length of the input prompt. "
                         f"(--max-model-len)")
    max_tokens = body.get(max_tokens_key)
    if max_tokens is None and max_tokens_key == "max_tokens":
        max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = room
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens: expected a positive integer, got {str(max_tokens)[:40]}")
    if prompt_len + max_tokens > max_model_len:
        raise ValueError(f"max_tokens: {max_tokens} tokens plus the prompt's {prompt_len} exceed this model's "
                         f"maximum context length of {max_model_len} tokens (--max-model-len); ask for at most "
                         f"{room}")
    stop_ids = body.get("stop_token_ids") or []
    if not isinstance(stop_ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < vocab
                                                 for i in stop_ids):
        raise ValueError(f"stop_token_ids: expected a list of token ids in [0, {vocab})")
    seed = _int(body, "seed", None, -(1 << 63), (1 << 63) - 1)
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 1.0, 0.0, 100.0),
        top_p=_number(body, "top_p", 1.0, 1e-9, 1.0),
        top_k=int(_int(body, "top_k", 0, -1, vocab) or 0),
        seed=seed,
        stop_token_ids=tuple(stop_ids),
        ignore_eos=bool(body.get("ignore_eos", False)),
    )


def chat_prompt_ids(tokenizer, body: dict) -> list[int]:
    """The token ids of the chat prompt (`messages` rendered with the chat template, generation prompt on)."""
    if tokenizer is None:
        raise ValueError("messages: this server has no tokenizer, so it cannot render chats")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages: expected a non-empty list of {role, content} objects")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise ValueError(f"messages[{i}]: expected an object with a string 'role'")
        if not isinstance(m.get("content", ""), (str, list, type(None))):
            raise ValueError(f"messages[{i}].content: expected a string")
    kwargs = body.get("chat_template_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ValueError("chat_template_kwargs: expected an object")
    add_gen = body.get("add_generation_prompt", True)
    cont = bool(body.get("continue_final_message", False))
    if cont and add_gen is True and "add_generation_prompt" in body:
        raise ValueError("continue_final_message: cannot be used together with add_generation_prompt")
    if cont:
        add_gen = False
    template = body.get("chat_template")
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=bool(add_gen),
                                             continue_final_message=cont, chat_template=template, **kwargs)
    except Exception as e:  # noqa: BLE001 - jinja errors, a template that raises on purpose
        raise ValueError(f"messages: the chat template failed: {type(e).__name__}: {str(e)[:300]}") from None
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError("messages: the rendered prompt is empty")
    return list(ids)


def run(gen, prompt: list[int], params: SamplingParams, timeout: Optional[float] = None) -> GenRequest:
    req = GenRequest(prompt=list(prompt), params=params)
    gen.submit(req)  # RuntimeError when shutting down
    req.done.wait(timeout)
    return req


def _decode(tokenizer, ids: list[int]) -> str:
    if tokenizer is None:
        return ""
    try:
        return tokenizer.decode(ids, skip_special_tokens=True)
    except Exception:  # noqa: BLE001 - the ids are the answer; the text is informative
        return ""


def _usage(req: GenRequest) -> dict:
    return {"prompt_tokens": len(req.prompt), "completion_tokens": len(req.output),
            "total_tokens": len(req.prompt) + len(req.output)}


def chat_response(req: GenRequest, model: str, tokenizer, return_token_ids: bool) -> dict:
    choice: dict[str, Any] = {
        "index": 0, "message": {"role": "assistant", "content": _decode(tokenizer, req.output)},
        "logprobs": None, "finish_reason": req.finish_reason, "stop_reason": req.stop_reason,
    }
    out: dict[str, Any] = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                           "created": int(time.time()), "model": model, "choices": [choice], "usage": _usage(req)}
    if return_token_ids:
        choice["token_ids"] = list(req.output)
        out["prompt_token_ids"] = list(req.prompt)
    return out


def completion_response(req: GenRequest, model: str, tokenizer, return_token_ids: bool) -> dict:
    choice: dict[str, Any] = {"index": 0, "text": _decode(tokenizer, req.output), "logprobs": None,
                              "finish_reason": req.finish_reason, "stop_reason": req.stop_reason}
    if return_token_ids:
        choice["prompt_token_ids"] = list(req.prompt)
        choice["token_ids"] = list(req.output)
    return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
            "model": model, "choices": [choice], "usage": _usage(req)}


def eos_ids(model, tokenizer) -> set[int]:
    """End-of-sequence ids: the generation config's (int or list) and the tokenizer's."""
    out: set[int] = set()
    for src in (getattr(model, "generation_config", None), getattr(model, "config", None)):
        v = getattr(src, "eos_token_id", None) if src is not None else None
        if isinstance(v, int):
            out.add(v)
        elif isinstance(v, (list, tuple)):
            out.update(int(x) for x in v)
        if out:
            break
    t = getattr(tokenizer, "eos_token_id", None) if tokenizer is not None else None
    if isinstance(t, int):
        out.add(t)
    return out
