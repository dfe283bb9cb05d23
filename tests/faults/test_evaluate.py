"""Evaluate faults: bad checkpoints, a verifier that cannot be found, prompts that do not fit the
target's context, an empty prompts file. Each is exit code 2 with a message naming the file and a
fix, and no traceback (`python -m speculators_core.evaluate`, run in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.fault("data")


def _fake_checkpoint(d: Path, verifier: str) -> Path:
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({
        "speculators_model_type": "eagle3",
        "speculators_config": {"proposal_methods": [{"speculative_tokens": 3}],
                               "verifier": {"name_or_path": verifier}}}))
    (d / "model.safetensors").write_bytes(b"")
    return d


def _prompts(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run(capsys, argv) -> tuple[int, str]:
    from speculators_core.evaluate import main

    rc = main(argv + ["--engine", "hf", "--output", str(Path(argv[1]).parent / "eval.json")])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def test_a_directory_that_is_not_a_checkpoint(tmp_path, capsys):
    d = tmp_path / "not-a-ckpt"
    d.mkdir()
    (d / "notes.txt").write_text("hello")
    rc, err = _run(capsys, ["--checkpoint", str(d), "--prompts", str(_prompts(tmp_path / "p.jsonl", [{"prompt_ids": [1]}]))])
    assert rc == 2
    assert f"{d}: not a speculators checkpoint" in err and "fix:" in err and "speculators_core.train" in err


def test_a_checkpoint_whose_verifier_cannot_be_found(tmp_path, capsys):
    ck = _fake_checkpoint(tmp_path / "ckpt", str(tmp_path / "gone-model"))
    rc, err = _run(capsys, ["--checkpoint", str(ck), "--prompts", str(_prompts(tmp_path / "p.jsonl", [{"prompt_ids": [1]}]))])
    assert rc == 2
    assert f"{ck / 'config.json'}" in err and "gone-model" in err and "cannot be found" in err
    assert "fix:" in err and "verifier.name_or_path" in err


def test_prompts_longer_than_the_models_context(tmp_path, capsys, tiny_target):
    ck = _fake_checkpoint(tmp_path / "ckpt", str(tiny_target))
    ctx = json.loads((Path(tiny_target) / "config.json").read_text())["max_position_embeddings"]
    p = _prompts(tmp_path / "p.jsonl", [{"prompt_ids": [5, 6]}, {"prompt_ids": [7] * (ctx - 10)}])
    rc, err = _run(capsys, ["--checkpoint", str(ck), "--prompts", str(p), "--max-tokens", "64"])
    assert rc == 2
    assert str(p) in err and "prompt 2" in err and f"context of {ctx}" in err
    assert "fix:" in err and "--max-tokens" in err


def test_an_empty_prompts_file(tmp_path, capsys, tiny_target):
    ck = _fake_checkpoint(tmp_path / "ckpt", str(tiny_target))
    p = tmp_path / "empty.jsonl"
    p.write_text("\n")
    rc, err = _run(capsys, ["--checkpoint", str(ck), "--prompts", str(p)])
    assert rc == 2
    assert str(p) in err and "no prompts" in err and "fix:" in err


def test_a_row_that_is_neither_prompt_ids_nor_chat(tmp_path, capsys, tiny_target):
    ck = _fake_checkpoint(tmp_path / "ckpt", str(tiny_target))
    p = _prompts(tmp_path / "p.jsonl", [{"prompt_ids": [1, 2]}, {"text": "hi"}])
    rc, err = _run(capsys, ["--checkpoint", str(ck), "--prompts", str(p)])
    assert rc == 2
    assert f"{p}:2" in err and "fix:" in err
