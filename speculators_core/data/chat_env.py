"""transformers' chat-template jinja environment, without importing transformers (a second of import).

A replica of `transformers.utils.chat_template_utils._cached_compile_jinja_template` (transformers 5):
an `ImmutableSandboxedEnvironment` with trim_blocks, lstrip_blocks, loop controls and the
`{% generation %}` tracker, its own `tojson` filter (no HTML escaping), `raise_exception` and
`strftime_now`. Templates are rendered with `messages`, `tools`, `documents`,
`add_generation_prompt` and the tokenizer's named special tokens, as transformers renders them.
`tests/prepare/test_light_tokenizer.py` renders every test template both ways and requires the same text.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache

import jinja2
import jinja2.exceptions
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment


class _AssistantTracker(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}`: records the char range of what it renders."""

    tags = {"generation"}

    def __init__(self, environment) -> None:
        super().__init__(environment)
        environment.extend(activate_tracker=self.activate_tracker)
        self._rendered_blocks = None
        self._generation_indices = None

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _generation_support(self, context, caller) -> str:
        rv = caller()
        if self.is_active():
            start_index = len("".join(self._rendered_blocks))
            self._generation_indices.append((start_index, start_index + len(rv)))
        return rv

    def is_active(self) -> bool:
        return self._rendered_blocks is not None or self._generation_indices is not None

    @contextmanager
    def activate_tracker(self, rendered_blocks: list, generation_indices: list):
        try:
            if self.is_active():
                raise ValueError("AssistantTracker should not be reused before closed")
            self._rendered_blocks = rendered_blocks
            self._generation_indices = generation_indices
            yield
        finally:
            self._rendered_blocks = None
            self._generation_indices = None


def _raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(format):
    return datetime.now().strftime(format)


@lru_cache
def compile_template(chat_template: str):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                       extensions=[_AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env.from_string(chat_template)


def render_with_generation(chat_template: str, messages: list[dict], add_generation_prompt: bool = False,
                           **kwargs) -> tuple[str, list[tuple[int, int]]]:
    """(text, generation char ranges), as `render_jinja_template(return_assistant_tokens_mask=True)`."""
    compiled = compile_template(chat_template)
    blocks: list[str] = []
    indices: list[tuple[int, int]] = []
    with compiled.environment.activate_tracker(blocks, indices):
        for block in compiled.generate(messages=messages, tools=None, documents=None,
                                       add_generation_prompt=add_generation_prompt, **kwargs):
            blocks.append(block)
        text = "".join(blocks)
    return text, indices
