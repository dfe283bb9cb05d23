"""What a row means: a chat (either turn schema) or an already tokenised sample.

Accepted schemas:
- ``{"conversations": [{"from": "human"|"gpt"|"system", "value": ...}, ...]}`` (ShareGPT);
- ``{"messages": [{"role": "user"|"assistant"|"system", "content": ...}, ...]}`` (OpenAI/UltraChat);
- ``{"input_ids": [...], "loss_mask": [...]}`` (passed through, only truncated).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from speculators_core.data.errors import PrepareError

#: Role aliases -> the role names chat templates expect.
ROLE_ALIASES = {
    "human": "user", "user": "user",
    "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant", "bing": "assistant",
    "bard": "assistant", "model": "assistant",
    "system": "system",
    "tool": "tool", "function": "tool", "ipython": "ipython",
}

# Drop reasons (keys of the summary's `dropped`).
EMPTY = "empty"
NO_ASSISTANT = "no_assistant_turn"
TEMPLATE_ERROR = "template_error"
NO_TRAINABLE = "no_trainable_tokens"
TOO_FEW_VALID = "below_minimum_valid_tokens"


@dataclass
class Chat:
    messages: list[dict[str, str]]


@dataclass
class Tokens:
    input_ids: list[int]
    loss_mask: list[int]


def parse_payload(origin: str, payload: Any) -> Any:
    if isinstance(payload, str):
        try:
            return json.loads(payload)
        except json.JSONDecodeError as exc:
            raise PrepareError(f"{origin}: unreadable JSON line ({exc.msg} at column {exc.colno})") from None
    return payload


def _text(origin: str, i: int, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: [{"type": "text", "text": ...}, ...]
        parts = []
        for part in value:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
            else:
                raise PrepareError(f"{origin}: turn {i}: content part {part!r:.60} has no text; only text is supported")
        return "".join(parts)
    raise PrepareError(f"{origin}: turn {i}: content must be a string, got {type(value).__name__}")


def normalize(origin: str, row: Any) -> Chat | Tokens | str:
    """A decoded row -> Chat, Tokens, or a drop reason (str). Raises PrepareError on a bad schema."""
    if not isinstance(row, dict):
        raise PrepareError(f"{origin}: unknown schema: expected a JSON object per row, got {type(row).__name__}")
    if row.get("input_ids") is not None:
        return _tokens(origin, row)
    if "conversations" in row:
        turns, role_key, text_key = row["conversations"], "from", "value"
    elif "messages" in row:
        turns, role_key, text_key = row["messages"], "role", "content"
    else:
        raise PrepareError(
            f"{origin}: unknown schema (keys: {', '.join(sorted(map(str, row))) or 'none'}); expected "
            f"'conversations' with from/value turns, 'messages' with role/content turns, or "
            f"'input_ids' + 'loss_mask'"
        )
    if not turns:
        return EMPTY
    if not isinstance(turns, list):
        raise PrepareError(f"{origin}: '{'conversations' if role_key == 'from' else 'messages'}' must be a list of turns")
    messages: list[dict[str, str]] = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise PrepareError(f"{origin}: turn {i} is {type(turn).__name__}, expected an object with "
                               f"'{role_key}' and '{text_key}'")
        # Accept the other schema's keys inside a turn too (mixed exports exist).
        raw_role = turn.get(role_key, turn.get("role", turn.get("from")))
        role = ROLE_ALIASES.get(str(raw_role).lower()) if raw_role is not None else None
        if role is None:
            raise PrepareError(
                f"{origin}: turn {i}: unknown role {raw_role!r}; expected one of "
                f"{', '.join(sorted(ROLE_ALIASES))}"
            )
        content = _text(origin, i, turn.get(text_key, turn.get("content", turn.get("value"))))
        msg = {"role": role, "content": content}
        for extra in ("reasoning_content", "name", "tool_calls", "tool_call_id"):
            if turn.get(extra) is not None:
                msg[extra] = turn[extra]
        messages.append(msg)
    if not any(m["content"].strip() for m in messages):
        return EMPTY
    # A chat that ends with the user's (or a tool's) turn still trains on its earlier replies: the
    # trailing turns have no reply to learn from, so they are trimmed (the last turn trained on is
    # the last assistant turn, as when the chat had ended there).
    while messages and messages[-1]["role"] != "assistant":
        messages.pop()
    if not messages:
        return NO_ASSISTANT
    if not any(m["content"].strip() for m in messages if m["role"] == "assistant"):
        return EMPTY
    return Chat(messages)


def _tokens(origin: str, row: dict) -> Tokens:
    ids, mask = row.get("input_ids"), row.get("loss_mask")
    if mask is None:
        raise PrepareError(f"{origin}: has 'input_ids' but no 'loss_mask'; pre-tokenised rows need both")
    if not isinstance(ids, list) or not isinstance(mask, list):
        raise PrepareError(f"{origin}: 'input_ids' and 'loss_mask' must be lists of integers")
    if len(ids) != len(mask):
        raise PrepareError(f"{origin}: 'input_ids' has {len(ids)} entries but 'loss_mask' has {len(mask)}")
    if not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in ids):
        raise PrepareError(f"{origin}: 'input_ids' must hold non-negative integers")
    if not all(m in (0, 1) for m in mask):
        raise PrepareError(f"{origin}: 'loss_mask' must hold only 0 and 1")
    return Tokens([int(t) for t in ids], [int(m) for m in mask])
