"""The evaluate stage of a run (stage 4, `[evaluation]`): after training, measure the drafter's
acceptance length with `python -m speculators_core.evaluate`, appending `type: "eval"` records to
the run's metrics.jsonl and writing `<run>/eval.json`."""

from __future__ import annotations

import os
import sys
from typing import Optional

from speculators_core.config.schema import RunConfig
from speculators_core.plan import flags as stage_args
from speculators_core.plan.flags import extra_flags


def evaluate_stage(cfg: RunConfig, run_dir: Optional[str], visible_gpus: str, omp: Optional[str],
                   during_omp: Optional[str] = None):
    """The Stage, or None when [evaluation] is not enabled. Every epoch is measured when asked
    (every_epoch) or when checkpoint_best must follow the measured acceptance length.

    With every_epoch the supervisor measures each epoch's checkpoint while training runs
    (runs/epoch_eval.py, `during_training_env`: on CPU the evaluator's share of the cores, on GPUs a
    GPU neither training nor the server uses, picked when the run starts) and this stage, after
    training, measures only what is missing (--reuse-epoch-results) and selects checkpoint_best. An
    exported script cannot watch for checkpoints easily: there this stage measures every epoch
    after training (the results are the same, only later)."""
    from speculators_core.plan.stages import Stage

    e, t, hs = cfg.evaluation, cfg.training, cfg.hidden_states
    if not e.enabled:
        return None
    py = sys.executable
    all_epochs = e.every_epoch or e.select_best_by == "acceptance_length"
    ckpt = t.checkpoint_dir if all_epochs else os.path.join(t.checkpoint_dir, "checkpoint_best")
    out_dir = run_dir or t.checkpoint_dir
    argv = [py, "-m", "speculators_core.evaluate", "--checkpoint", ckpt,
            "--prompts", e.prompts or cfg.data.output, "--output", os.path.join(out_dir, "eval.json"),
            "--metrics", os.path.join(out_dir, "metrics.jsonl"), "--engine", e.engine,
            "--num-speculative-tokens", *[str(k) for k in e.num_speculative_tokens]]
    argv += extra_flags(stage_args.evaluate_parser, {
        "--max-tokens": e.max_tokens,
        "--num-prompts": e.num_prompts,
        "--select-best-by": e.select_best_by if all_epochs else None,
        "--python": (hs.python or None) if e.engine == "vllm" else None,
        "--val-split": t.val_split,
        "--seed": t.seed,
        "--device": "cpu" if not t.gpus else None,
    })
    if e.every_epoch:
        argv.append("--reuse-epoch-results")
    env = {"CUDA_VISIBLE_DEVICES": visible_gpus}
    if omp:
        env["OMP_NUM_THREADS"] = omp
    what = "every epoch" if all_epochs else "checkpoint_best"
    during = None
    if e.every_epoch:
        during = {"OMP_NUM_THREADS": during_omp or "1"} if not t.gpus else {}
    return Stage("evaluate", argv, env=env, log="evaluate.log", skip_if="evaluated", during_training_env=during,
                 description=f"measure acceptance length ({e.engine} engine, {what}, "
                             f"K = {', '.join(map(str, e.num_speculative_tokens))})")
