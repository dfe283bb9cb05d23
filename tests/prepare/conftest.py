"""Fixtures of the stage-1 tests: tiny tokenizers per chat-template style, JSONL writers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.prepare import chat_templates


@pytest.fixture(scope="session")
def style_tokenizer(tmp_path_factory):
    """style name -> directory of a tiny tokenizer with that chat template (built once per session)."""
    root = tmp_path_factory.mktemp("tokenizers")
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = chat_templates.build(root / name, chat_templates.STYLES[name])
        return built[name]

    return get


@pytest.fixture
def write_jsonl(tmp_path):
    def write(rows, name="data.jsonl") -> Path:
        path = tmp_path / name
        with open(path, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(row if isinstance(row, str) else json.dumps(row))
                fh.write("\n")
        return path

    return write
