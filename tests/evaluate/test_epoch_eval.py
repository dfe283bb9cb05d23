"""every_epoch: the supervisor measures each epoch's checkpoint while training runs; the evaluate
stage afterwards reuses those results, selects checkpoint_best, and is skipped on a resumed run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from speculators_core.fsutil import read_jsonl
from speculators_core.plan.evaluate_stage import evaluate_stage
from speculators_core.plan.stages import Stage
from speculators_core.runs.epoch_eval import already_evaluated, epoch_argv
from speculators_core.runs.supervisor import Supervisor, stage_done


# A stand-in for the trainer process: it writes epoch checkpoints (copies of a trained drafter's)
# by the save protocol of training/checkpoint.py (written under a temporary name, renamed into
# place), appends its records, and ends. Epoch 1 is "trained" while epoch 0 may be measured; it waits
# (bounded) for that measurement only so that the order the test checks is not left to chance.
TRAINER = r"""
import json, os, shutil, sys, time
src, save, metrics, wait_for = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
os.makedirs(save, exist_ok=True)
for epoch in (0, 1):
    tmp = os.path.join(save, f".tmp-ckpt-{epoch}")
    shutil.copytree(os.path.join(src, str(epoch)), tmp)
    os.rename(tmp, os.path.join(save, str(epoch)))
    with open(metrics, "a") as f:
        f.write(json.dumps({"type": "checkpoint", "epoch": epoch}) + "\n")
    if epoch == 0:
        deadline = time.time() + 120
        while not os.path.exists(wait_for) and time.time() < deadline:
            time.sleep(0.2)
with open(metrics, "a") as f:
    f.write(json.dumps({"type": "end"}) + "\n")
"""


@pytest.fixture
def run_dir(tmp_path):
    from speculators_core import config as cfgmod
    from speculators_core.runs.rundir import create_run_dir

    cfg = cfgmod.RunConfig()
    cfg.model.target = "builtin:tiny-qwen3"
    cfg.hidden_states.engine, cfg.hidden_states.gpus, cfg.training.gpus = "hf", [], []
    cfg.training.checkpoint_dir = str(tmp_path / "ckpt")
    cfg.run.name, cfg.run.dir = "epoch-eval", str(tmp_path / "runs")
    return create_run_dir(cfg, source="test")


def _config(run_dir: Path, onpolicy_run, save: Path):
    from speculators_core import config as cfgmod

    cfg = cfgmod.load(run_dir / "run.toml")
    cfg.training.checkpoint_dir = str(save)
    cfg.training.gpus = []
    e = cfg.evaluation
    e.enabled, e.engine, e.every_epoch, e.select_best_by = True, "hf", True, "acceptance_length"
    e.prompts, e.num_prompts, e.max_tokens, e.num_speculative_tokens = str(onpolicy_run.data), 2, 8, [2]
    return cfg


@pytest.mark.slow
def test_epoch_zero_is_measured_before_training_ends_and_a_rerun_skips(onpolicy_run, run_dir, tmp_path):
    run_dir = Path(run_dir)
    save = tmp_path / "ckpt"
    cfg = _config(run_dir, onpolicy_run, save)
    ev = evaluate_stage(cfg, str(run_dir), "", "1", during_omp="1")
    assert ev.during_training_env == {"OMP_NUM_THREADS": "1"} and "--reuse-epoch-results" in ev.argv
    assert ev.skip_if == "evaluated"
    metrics = run_dir / "metrics.jsonl"
    train = Stage("train", [sys.executable, "-c", TRAINER, str(onpolicy_run.save), str(save), str(metrics),
                            str(run_dir / "eval-epoch-0.json")], log="train.log")
    rc = Supervisor(run_dir, stages=[train, ev], skip_check=lambda s: None, grace=5.0).run()
    assert rc == 0, (run_dir / "evaluate.log").read_text()
    recs = read_jsonl(metrics)[0]
    types = [(r["type"], r.get("epoch")) for r in recs]
    assert types.index(("eval", 0)) < types.index(("end", None)), types
    # one eval record per epoch and K: the stage reused what was measured while training ran
    assert sorted(r["epoch"] for r in recs if r["type"] == "eval") == [0, 1], types
    best = [r for r in recs if r["type"] == "eval_best"]
    assert len(best) == 1
    evals = {r["epoch"]: r["acceptance_length"] for r in recs if r["type"] == "eval"}
    assert evals[best[0]["epoch"]] == max(evals.values())
    assert (save / "checkpoint_best").resolve().name == str(best[0]["epoch"])
    doc = json.loads((run_dir / "eval.json").read_text())
    assert [r["epoch"] for r in doc["results"]] == [0, 1]
    log = (run_dir / "evaluate.log").read_text()
    assert "while training runs" in log and "measured while training ran" in log

    # A resumed run whose training is done: the skip rule holds (results newer than the weights) ...
    assert already_evaluated(ev) is not None
    assert stage_done(ev) == already_evaluated(ev)  # the supervisor's skip rule "evaluated"
    # ... and no longer once a checkpoint is newer than the results (or a K is missing).
    (save / "1" / "model.safetensors").touch()
    assert already_evaluated(ev) is None


def test_epoch_argv_measures_one_checkpoint_without_selecting():
    argv = ["py", "-m", "speculators_core.evaluate", "--checkpoint", "/s", "--output", "/r/eval.json",
            "--select-best-by", "acceptance_length", "--engine", "hf", "--reuse-epoch-results"]
    assert epoch_argv(argv, "/s/0", "/r/eval-epoch-0.json") == [
        "py", "-m", "speculators_core.evaluate", "--checkpoint", "/s/0", "--output", "/r/eval-epoch-0.json",
        "--engine", "hf"]


def test_on_gpus_the_epoch_evaluation_takes_a_gpu_nobody_uses_else_waits_for_training():
    """GPU training: each epoch is measured on a GPU neither training nor the server uses; with none
    free, nothing runs beside training (the stage measures every epoch afterwards)."""
    from types import SimpleNamespace

    from speculators_core import config as cfgmod
    from speculators_core.runs.epoch_eval import EpochEvalMixin

    cfg = cfgmod.RunConfig()
    cfg.hidden_states.gpus, cfg.training.gpus = [0], [1]
    cfg.evaluation.enabled, cfg.evaluation.every_epoch, cfg.evaluation.engine = True, True, "hf"
    ev = evaluate_stage(cfg, "/r", "1", "8", during_omp="4")
    assert "--device" not in ev.argv and ev.during_training_env == {}

    class Sup(EpochEvalMixin):
        def __init__(self, n_gpus, environ):
            self.stages, self.cfg, self.environ, self.events = [ev], cfg, environ, []
            self._gpus = [SimpleNamespace(index=i) for i in range(n_gpus)]

        def _event(self, event, message="", **fields):
            self.events.append(event)

    s = Sup(3, {})
    s._epoch_eval_begin()
    assert s._epoch_stage.env["CUDA_VISIBLE_DEVICES"] == "2"
    s = Sup(3, {"CUDA_VISIBLE_DEVICES": "4,5,7"})  # the config numbers GPUs within the inherited list
    s._epoch_eval_begin()
    assert s._epoch_stage.env["CUDA_VISIBLE_DEVICES"] == "7"
    s = Sup(2, {})
    s._epoch_eval_begin()
    assert s._epoch_stage is None and s.events == ["info"]
