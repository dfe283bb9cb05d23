"""benchmarks/gpu_bench.sh is not dead code: its small mode runs the real trainer path on the CPU
(torchrun, two gloo processes: FSDP2) and prints every figure the GPU run prints."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_bench_small_mode_runs_the_trainer(tmp_path):
    env = dict(os.environ, NPROC="2", PYTHON=os.environ.get("PYTHON", ""), OMP_NUM_THREADS="1",
               TMPDIR=str(tmp_path), PYTHONPATH=str(REPO))
    import sys

    env["PYTHON"] = sys.executable
    out = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_bench.sh"), "--small"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    line = out.stdout.strip().splitlines()[-1]
    assert line.startswith("trainer (small, 2 process(es), cpu") and "tokens/s over 4 steps of 512 tokens" in line
    assert "data wait" in line and "memory_fit predicts" in line
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("trainer-bench-")]  # inputs removed
