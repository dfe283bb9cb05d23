"""Render a chat with the target's own chat template and find, in the rendered text, the character
spans the model is trained on: the content of every assistant turn plus the end-of-turn token the
template writes right after it.

Templates with ``{% generation %}`` blocks say where those spans are (the tokenizer's assistant
mask). Most real templates (ChatML/Qwen, Llama-3, DeepSeek) do not, so the spans are derived:

1. Render the same chat with each message's content replaced by a unique sentinel. The text around
   the sentinels is the template's own glue (role headers, injected ``<think></think>`` blocks,
   separators), which is the same in the real rendering as long as the template does not branch on
   the content itself.
2. Walk the real rendering glue by glue: after each glue comes the message content, possibly
   transformed by the template (stripped, reasoning split off); the variant that is followed by the
   next glue is the one rendered. This anchors each content at its own turn, so an assistant reply
   that also occurs in the prompt or in a role header cannot be matched in the wrong place.
3. If a template branches on content (the glue differs), or a turn carries reasoning (a
   `reasoning_content` field or a ``<think>...</think>`` block, which templates move around or
   drop), fall back to an in-order search of each message's content after the previous one. The
   reasoning, where the template renders it, is trained on like the answer (the target generates
   it); the template's own injected empty think blocks are not.
"""

from __future__ import annotations

import re
from typing import Any

from speculators_core.data.errors import PrepareError

_GENERATION_RE = re.compile(r"\{%-?\s*generation\s*-?%\}")
_SENTINEL_RE = re.compile("\ue000(\\d+)\ue001")


def _sentinel(i: int) -> str:
    return f"\ue000{i}\ue001"


class NoAssistantSpan(Exception):
    """The rendered text contains none of the assistant turns' content."""


def content_variants(content: str) -> list[str]:
    """The forms a template may render a message content in, most faithful first."""
    out = [content]
    for v in (content.strip(), content.lstrip("\n"), content.rstrip(), content.lstrip()):
        if v not in out:
            out.append(v)
    if "</think>" in content:  # reasoning split off by Qwen3/DeepSeek-R1 style templates
        tail = content.split("</think>")[-1]
        for v in (tail.lstrip("\n"), tail.strip(), tail):
            if v not in out:
                out.append(v)
    return out


class ChatRenderer:
    """Renders chats with one tokenizer's chat template and returns (text, assistant char spans)."""

    def __init__(self, tokenizer: Any, chat_template: str | None = None) -> None:
        try:
            template = chat_template or tokenizer.get_chat_template()
        except ValueError:
            template = None
        if not template:
            raise PrepareError(
                f"the tokenizer {getattr(tokenizer, 'name_or_path', '')!s} has no chat template; "
                f"use the target's instruct/chat tokenizer (its tokenizer_config.json or "
                f"chat_template.jinja defines one)"
            )
        self.template = template
        self.has_generation = bool(_GENERATION_RE.search(template))
        #: assistant turns with text that were not found in the rendered text (running total)
        self.missing_turns = 0
        kwargs = {}
        for key, value in (tokenizer.special_tokens_map or {}).items():
            kwargs[key] = value
        self.template_kwargs = kwargs
        # Special (added) tokens the template may write right after an assistant content: the
        # end-of-turn marker (<|im_end|>, <|eot_id|>, <｜end▁of▁sentence｜>, </s>...).
        specials = set(getattr(tokenizer, "all_special_tokens", []) or [])
        for tok in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).values():
            if getattr(tok, "special", False):
                specials.add(str(tok))
        self.end_markers = sorted((s for s in specials if s), key=len, reverse=True)
        #: render in the replica of transformers' environment (no transformers import) for a
        #: tokenizer loaded without transformers; in transformers' own otherwise
        self._light = type(tokenizer).__name__ == "LightTokenizer"
        if self._light:
            from speculators_core.data.chat_env import compile_template

            self._compiled = compile_template(template)
        else:
            self._compiled = self._compile(template)

    @staticmethod
    def _compile(template: str):
        try:
            from transformers.utils.chat_template_utils import _compile_jinja_template
        except ImportError:  # pragma: no cover - older/newer transformers layout
            import jinja2
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                extensions=[jinja2.ext.loopcontrols])
            return env.from_string(template)
        return _compile_jinja_template(template)

    def _render(self, messages: list[dict]) -> str:
        return self._compiled.render(messages=messages, tools=None, documents=None,
                                     add_generation_prompt=False, **self.template_kwargs)

    def render(self, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
        """Rendered text and the sorted, non-overlapping char spans to train on.

        Raises NoAssistantSpan when the template renders no assistant content, and the template's
        own exception (jinja2 TemplateError, ...) when it rejects the chat.
        """
        if self.has_generation and self._light:
            from speculators_core.data.chat_env import render_with_generation

            text, indices = render_with_generation(self.template, messages, **self.template_kwargs)
            spans = [(a, b) for a, b in indices if b > a]
        elif self.has_generation:
            from transformers.utils.chat_template_utils import render_jinja_template

            texts, indices = render_jinja_template(
                conversations=[messages], chat_template=self.template,
                return_assistant_tokens_mask=True, add_generation_prompt=False, **self.template_kwargs,
            )
            text = texts[0]
            spans = [(a, b) for a, b in indices[0] if b > a]
        else:
            text = self._render(messages)
            spans, located = self._locate(messages, text)
            self.missing_turns += sum(1 for m in messages if m["role"] == "assistant" and m["content"].strip()) - located
            spans = [(a, self._extend_end(text, b)) for a, b in spans]
        if not spans:
            raise NoAssistantSpan()
        return text, _merge(spans)

    # -- span derivation for templates without generation tags ------------------------------------
    def _extend_end(self, text: str, end: int) -> int:
        for marker in self.end_markers:
            if text.startswith(marker, end):
                return end + len(marker)
        return end

    def _locate(self, messages: list[dict], text: str) -> tuple[list[tuple[int, int]], int]:
        """(spans, number of assistant messages given at least one span)."""
        found = None
        if not any(_reasoning(m) for m in messages if m["role"] == "assistant"):
            found = self._locate_by_skeleton(messages, text)
        if found is None:
            found = self._locate_by_search(messages, text)
        return found

    def _locate_by_skeleton(self, messages: list[dict], text: str) -> tuple[list[tuple[int, int]], int] | None:
        try:
            skeleton = self._render([{**m, "content": _sentinel(i)} for i, m in enumerate(messages)])
        except Exception:
            return None
        glues: list[str] = []
        order: list[int] = []
        pos = 0
        for m in _SENTINEL_RE.finditer(skeleton):
            glues.append(skeleton[pos:m.start()])
            order.append(int(m.group(1)))
            pos = m.end()
        tail = skeleton[pos:]
        if not order or any(b <= a for a, b in zip(order, order[1:])) or order[-1] >= len(messages):
            return None
        spans: list[tuple[int, int]] = []
        located = 0
        pos = 0
        for k, (glue, i) in enumerate(zip(glues, order)):
            if not text.startswith(glue, pos):
                return None
            pos += len(glue)
            nxt = glues[k + 1] if k + 1 < len(glues) else tail
            content = messages[i]["content"]
            for variant in content_variants(content):
                end = pos + len(variant)
                if text.startswith(variant, pos) and (
                    text.startswith(nxt, end) if k + 1 < len(glues) else text[end:] == tail
                ):
                    break
            else:
                return None
            if messages[i]["role"] == "assistant" and end > pos:
                spans.append((pos, end))
                located += bool(content.strip())
            pos = end
        return spans, located

    @staticmethod
    def _locate_by_search(messages: list[dict], text: str) -> tuple[list[tuple[int, int]], int]:
        spans: list[tuple[int, int]] = []
        located = 0
        cursor = 0
        for m in messages:
            n_before = len(spans)
            found = _find_first(text, content_variants(m["content"]), cursor)
            if m["role"] == "assistant":
                reasoning = _reasoning(m)
                in_content = "</think>" in m["content"] and not isinstance(m.get("reasoning_content"), str)
                if reasoning and not (in_content and found is not None and text[found[0]:found[1]] == m["content"]):
                    # reasoning rendered apart from the answer (a think block): both are trained on
                    r = _find_first(text, [reasoning], cursor)
                    if r is not None:
                        spans.append(r)
                        cursor = r[1]
                    found = _find_first(text, content_variants(_answer(m["content"])), cursor)
                if found is not None:
                    spans.append(found)
                located += len(spans) > n_before and bool(m["content"].strip())
            if found is not None:
                cursor = found[1]
        return spans, located


def _reasoning(message: dict) -> str:
    """The reasoning of an assistant message: `reasoning_content`, or a <think> block in the content."""
    rc = message.get("reasoning_content")
    if isinstance(rc, str) and rc.strip():
        return rc.strip()
    content = message["content"]
    if "</think>" in content:
        return content.split("</think>")[0].split("<think>")[-1].strip()
    return ""


def _answer(content: str) -> str:
    return content.split("</think>")[-1] if "</think>" in content else content


def _find_first(text: str, variants: list[str], cursor: int) -> tuple[int, int] | None:
    """The earliest occurrence at or after `cursor` of any non-empty variant (longest on ties)."""
    best: tuple[int, int] | None = None
    for variant in variants:
        if not variant:
            continue
        k = text.find(variant, cursor)
        if k >= 0 and (best is None or k < best[0] or (k == best[0] and len(variant) > best[1] - best[0])):
            best = (k, k + len(variant))
    return best


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spans = sorted(spans)
    out = [spans[0]]
    for a, b in spans[1:]:
        if a <= out[-1][1]:
            out[-1] = (out[-1][0], max(b, out[-1][1]))
        else:
            out.append((a, b))
    return out
