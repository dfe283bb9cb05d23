"""The proof that the checkpoint is real: real vLLM (CPU) serves a drafter trained on the tiny
target's own greedy continuations, with speculative decoding active and draft tokens accepted.
The drafter and its vLLM server are the session's shared ones (tests/onpolicy_fixtures.py: the
pipeline of benchmarks/acceptance_bench.py); the tight figures (vLLM vs the hf engine vs the
validation replay) are asserted in tests/evaluate/test_evaluate_vllm.py."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from tests.onpolicy_fixtures import MAX_NEW_TOKENS


@pytest.mark.vllm
@pytest.mark.slow
def test_trained_checkpoint_serves_in_vllm_with_accepted_drafts(onpolicy_run, served_best):
    from speculators_core.evaluation.vllm_engine import parse_spec_counters

    ckpt = os.path.realpath(onpolicy_run.save / "checkpoint_best")
    cfg = json.loads(open(os.path.join(ckpt, "config.json")).read())
    assert cfg["speculators_model_type"] == "eagle3" and cfg["draft_vocab_size"] == 1024
    base = served_best.url
    model = httpx.get(base + "/v1/models", timeout=30).json()["data"][0]["id"]
    before = parse_spec_counters(httpx.get(base + "/metrics", timeout=30).text)
    from speculators_core.evaluation.inputs import load_prompts

    prompts = load_prompts(str(onpolicy_run.data), onpolicy_run.model_dir, num_prompts=6).ids  # held out
    for p in prompts:
        r = httpx.post(base + "/v1/completions", json={"model": model, "prompt": p, "max_tokens": MAX_NEW_TOKENS,
                                                       "temperature": 0.0}, timeout=300)
        r.raise_for_status()
        assert r.json()["choices"][0]["text"]
    d = parse_spec_counters(httpx.get(base + "/metrics", timeout=30).text).minus(before)
    assert d.num_drafts > 0, "vLLM did not run the drafter"
    assert d.num_accepted_tokens > 0, d
    # on-policy training of a correctly aligned drafter: well above a useless drafter (1.0); all 22
    # held-out prompts and the comparison with the replay: tests/evaluate/test_evaluate_vllm.py
    assert 1 + d.num_accepted_tokens / d.num_drafts > 1.3, d
