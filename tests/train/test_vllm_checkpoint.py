"""The proof that the checkpoint is real: real vLLM (CPU) serves a drafter trained on the tiny
target's own greedy continuations, with speculative decoding active and draft tokens accepted.
One vLLM server: the format check doubles as the (loose) quality measurement; the tight figure is
printed by benchmarks/acceptance_bench.py."""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests.train.helpers import REPO

sys.path.insert(0, str(REPO))


@pytest.mark.vllm
@pytest.mark.slow
def test_trained_checkpoint_serves_in_vllm_with_accepted_drafts(vllm_python_path, tiny_target, tmp_path):
    from benchmarks import acceptance_bench as ab

    res = ab.run(tmp_path, epochs=6, lr=3e-3, held_out=12, max_new_tokens=64, vllm_python=vllm_python_path)
    print(json.dumps(res, indent=2))
    ckpt = res["best"]
    cfg = json.loads(open(os.path.join(ckpt, "config.json")).read())
    assert cfg["speculators_model_type"] == "eagle3" and cfg["draft_vocab_size"] == 1024
    assert res["completions"] == 12
    assert res["num_drafts"] > 0, "vLLM did not run the drafter"
    assert res["num_accepted_tokens"] > 0, res
    # on-policy training of a correctly aligned drafter: well above a useless drafter (1.0).
    # Measured 1.73 on these 12 held-out prompts (the benchmark's 20 prompts: 1.58); a 4-epoch,
    # 48-token variant of this setup stays near 1.14, so the margin below is not slack.
    assert res["acceptance_length"] > 1.4, res
