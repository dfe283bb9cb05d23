"""Done when #4: the tiny-cpu-demo-regenerate preset runs end to end through the real CLI and the
supervisor: one hf server start serves the regeneration and then training's hidden states."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from speculators_core import config as cfgmod
from speculators_core.fsutil import read_jsonl
from speculators_core.runs import rundir

pytestmark = pytest.mark.slow
PRESET = Path(__file__).resolve().parents[2] / "speculators_core" / "presets" / "tiny-cpu-demo-regenerate.toml"


def test_regenerate_preset_runs_end_to_end(tmp_path):
    from tests.conftest import free_port

    cfg = cfgmod.load(PRESET)
    cfg.data.max_samples = 10
    cfg.data.seq_length = 384
    cfg.data.regenerate_max_tokens = 24
    cfg.data.output = str(tmp_path / "data")
    cfg.hidden_states.port = free_port()
    cfg.hidden_states.start_timeout = 120.0
    cfg.training.epochs = 1
    cfg.training.total_seq_len = 1024
    cfg.training.checkpoint_dir = str(tmp_path / "ckpt")
    cfg.run.dir = str(tmp_path / "runs")
    cfgmod.save(cfg, tmp_path / "demo.toml")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    p = subprocess.run([sys.executable, "-m", "speculators_tui", "run", str(tmp_path / "demo.toml"), "--headless"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    run_dir = rundir.list_runs(tmp_path / "runs")[0]
    events = read_jsonl(run_dir / "events.jsonl")[0]
    started = [e.get("stage") for e in events if e["event"] == "stage_started"]
    assert started.index("server") < started.index("regenerate") < started.index("prepare") < started.index("train")
    assert started.count("server") == 1, started  # one server start for regeneration and hidden states
    assert events[-1]["event"] == "run_finished"
    regenerated = [json.loads(x) for x in Path(cfg.regenerated_data).read_text().splitlines()]
    assert len(regenerated) == 10 and len({r["source"] for r in regenerated}) == 10
    assert all(1 <= sum(r["loss_mask"]) and r["regenerate"]["max_tokens"] == 24 for r in regenerated)
    manifest = json.loads((Path(cfg.data.output) / "prepare_manifest.json").read_text())
    assert cfg.regenerated_data in json.dumps(manifest) or Path(cfg.regenerated_data).name in json.dumps(manifest)
    metrics = read_jsonl(run_dir / "metrics.jsonl")[0]
    progress = [m for m in metrics if m.get("type") == "regenerate"]
    assert progress and progress[-1]["rows_done"] == 10 and progress[-1]["rows_total"] == 10
    assert metrics[-1]["type"] == "end" and metrics[-1]["status"] == "completed"
    assert (tmp_path / "ckpt" / "checkpoint_best").exists()
    assert "regenerate" in (run_dir / "run.sh").read_text()
