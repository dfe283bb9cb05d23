"""ONE drafter trained on the tiny target's own greedy continuations (on-policy data), shared by
every evaluate test of the session: the prepared dataset, the save directory (every epoch and
checkpoint_best) and its metrics.jsonl. Validation rows (the trainer's seeded 10% split) are also
the evaluation prompts (`--prompts <prepared dir>` uses the same split), so the replayed validation
acceptance length and the measured one describe the same replies."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: tokens per continuation: the evaluation's --max-tokens must equal it for the replay to match
MAX_NEW_TOKENS = 64
EPOCHS = 5


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
    sys.path.insert(0, str(REPO))
    from benchmarks import acceptance_bench as ab

    import torch

    work = tmp_path_factory.mktemp("onpolicy")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pairs, _ = ab.greedy_continuations(Path(tiny_target), ab.demo_prompts(), MAX_NEW_TOKENS)
    finally:
        torch.set_num_threads(threads)
    data = ab.write_prepared(work / "data", pairs)
    ab.train_drafter(Path(tiny_target), data, work, epochs=EPOCHS, lr=3e-3)
    return OnPolicyRun(Path(tiny_target), data, work / "ckpt", work)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The hf engine's many tiny forwards run fastest on one thread (and do not fight the other
    processes of a loaded test machine); restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
