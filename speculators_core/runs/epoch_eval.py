"""Evaluate each epoch while training runs (`[evaluation] every_epoch`).

The evaluate stage's `during_training_env` asks for it. While the train stage runs, the supervisor
polls the save directory: an epoch checkpoint is complete once its final `<save>/<epoch>/` directory
exists (training/checkpoint.py writes it elsewhere and renames it into place). Each complete epoch
not yet measured gets `python -m speculators_core.evaluate --checkpoint <save>/<epoch>` (one at a
time, in its own process group, logged to evaluate.log), which appends `type: "eval"` records to
metrics.jsonl and writes `eval-epoch-<N>.json` beside the stage's eval.json. On CPU it runs with the
evaluator's share of the cores (plan.stages.cpu_threads); on GPUs only on a GPU that neither
training nor the server uses, else not at all (the stage measures every epoch after training). The
evaluate stage after training reuses these results (--reuse-epoch-results), measures what is missing
and selects checkpoint_best.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

from speculators_core.plan.stages import Stage


def _opt(argv: list[str], flag: str) -> Optional[str]:
    return argv[argv.index(flag) + 1] if flag in argv and argv.index(flag) + 1 < len(argv) else None


def epoch_argv(argv: list[str], checkpoint: str, output: str) -> list[str]:
    """The evaluate stage's argv measuring one epoch checkpoint into `output` (no best selection)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--checkpoint", "--output"):
            out += [a, checkpoint if a == "--checkpoint" else output]
            i += 2
        elif a == "--select-best-by":
            i += 2
        elif a == "--reuse-epoch-results":
            i += 1
        else:
            out.append(a)
            i += 1
    return out


def complete_epochs(save_dir: Path) -> list[int]:
    """Epochs whose final checkpoint directory is in place (the save protocol's completion mark)."""
    try:
        names = [p for p in Path(save_dir).iterdir() if p.name.isdigit() and p.is_dir() and not p.is_symlink()]
    except OSError:
        return []
    return sorted(int(p.name) for p in names if (p / "config.json").exists() and (p / "model.safetensors").exists())


def free_gpu(all_gpus: list[int], used: set[int]) -> Optional[int]:
    return next((g for g in sorted(all_gpus) if g not in used), None)


class EpochEvalMixin:
    """Supervisor methods: per-epoch evaluation beside the train stage (uses ChildrenMixin._spawn)."""

    def _epoch_eval_begin(self) -> None:
        self._epoch_stage: Optional[Stage] = None
        self._epoch_running: Optional[int] = None
        self._epoch_tried: set[int] = set()
        ev = next((s for s in self.stages if s.name == "evaluate" and s.during_training_env is not None), None)
        if ev is None or _opt(ev.argv, "--checkpoint") is None:
            return
        env = dict(ev.env)
        env.update(ev.during_training_env)
        if "--device" not in ev.argv:  # the stage runs on the training GPUs: find a GPU nobody uses
            used = set(self.cfg.training.gpus) | set(self.cfg.hidden_states.gpus)
            indices = [int(getattr(g, "index", i)) for i, g in enumerate(self._gpus)]
            g = free_gpu(indices, used)
            if g is None:
                self._event("info", "every_epoch: no GPU free of training and the server; every epoch is "
                                    "measured after training", stage=ev.name)
                return
            from speculators_core.plan.stages import _visible

            env["CUDA_VISIBLE_DEVICES"] = _visible([g], self.environ)
        self._epoch_stage = replace(ev, env=env)

    def _epoch_eval_poll(self, start: bool = True) -> None:
        """Reap a finished evaluation; with `start`, begin the next complete, unmeasured epoch."""
        ev = self._epoch_stage
        if ev is None:
            return
        child = self._children.get(ev.name)
        if child is not None:
            rc = child.proc.poll()
            if rc is None:
                return
            child.close()
            self._children.pop(ev.name, None)
            st = self._stage_state(ev.name)
            st.update(status="pending", returncode=None, pid=None)
            if rc != 0:
                self._event("warning", f"measuring epoch {self._epoch_running} failed (exit code {rc}, see "
                                       f"evaluate.log); the evaluate stage measures it after training",
                            stage=ev.name, kind="epoch_eval_failed")
            else:
                self._event("epoch_evaluated", f"epoch {self._epoch_running} measured", stage=ev.name,
                            epoch=self._epoch_running)
            self._save()
            self._epoch_running = None
        if not start:
            return
        save = Path(_opt(ev.argv, "--checkpoint"))
        output = Path(_opt(ev.argv, "--output") or save / "eval.json")
        for epoch in complete_epochs(save):
            if epoch in self._epoch_tried:
                continue
            self._epoch_tried.add(epoch)
            target = output.parent / f"eval-epoch-{epoch}.json"
            if _newer(target, save / str(epoch) / "model.safetensors"):
                continue  # measured before (a resumed run)
            stage = replace(ev, argv=epoch_argv(ev.argv, str(save / str(epoch)), str(target)))
            self._epoch_running = epoch
            self._spawn(stage, note=f" (epoch {epoch}, while training runs)")
            return

    def _epoch_eval_drain(self) -> None:
        """After training: let the evaluation in flight finish (the stage reuses its results)."""
        if getattr(self, "_epoch_stage", None) is None:
            return
        while self._epoch_stage.name in self._children:
            self._check_stop()
            self._epoch_eval_poll(start=False)
            time.sleep(self.poll_interval)
        self._epoch_stage = None


def _newer(doc_path: Path, weights: Path) -> bool:
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
        return float(doc.get("written", 0)) >= weights.stat().st_mtime
    except (OSError, ValueError, TypeError, AttributeError):
        return False


def already_evaluated(stage: Stage) -> Optional[str]:
    """The evaluate stage's skip rule ("evaluated"): its eval.json already holds results, newer than
    the weights, for every current checkpoint and every K (a resumed run whose training was done)."""
    from speculators_core.evaluation import results as res
    from speculators_core.evaluation.inputs import find_checkpoints
    from speculators_core.plan.flags import evaluate_parser

    args = evaluate_parser().parse_args(stage.stage_argv())
    output = Path(args.output) if args.output else Path(args.checkpoint) / "eval.json"
    doc = res.read_doc(output)
    if doc is None:
        return None
    try:
        ckpts = find_checkpoints(args.checkpoint)
    except Exception:  # no checkpoint: the stage runs and says why
        return None
    if not all(res.covered(doc, ck.path, list(args.num_speculative_tokens), args.engine, ck.epoch) for ck in ckpts):
        return None
    if args.select_best_by == "acceptance_length" and len(ckpts) > 1 and "checkpoint_best" not in doc:
        return None
    return f"{output} already has results for {len(ckpts)} checkpoint(s) (K = " \
           f"{', '.join(map(str, args.num_speculative_tokens))}), newer than their weights"
