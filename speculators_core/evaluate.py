"""Stage 4: measure a drafter the way it will be used: greedy speculative decoding on prompts.

    python -m speculators_core.evaluate --checkpoint CKPT_DIR --prompts FILE [--output eval.json]
        [--num-speculative-tokens K [K ...]] [--max-tokens 128] [--engine vllm|hf] [--baseline]

`--engine vllm` serves the checkpoint with `vllm serve` (or uses --endpoint) and reports vLLM's own
spec-decode counters; `--engine hf` decodes in-process with transformers and the drafter, counting
the same way. Writes eval.json ({"engine", "checkpoint", "prompts", "results": [...]}) and prints a
table. With a training save directory every epoch checkpoint is measured; `--metrics` appends
`type: "eval"` records; `--select-best-by acceptance_length` re-points checkpoint_best at the
checkpoint with the highest measured acceptance length.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

from speculators_core.errors import EXIT_CODES_HELP, SpeculatorsError, report
from speculators_core.evaluation.inputs import EvaluateInputError


def _vllm_python(args) -> str:
    py = args.python or os.environ.get("SPECULATORS_VLLM_PYTHON") or sys.executable
    if not Path(py).exists():
        raise EvaluateInputError(f"--python {py}: no such interpreter",
                                 fix="pass --python the vLLM venv's python (e.g. ~/.cache/speculators-tui/vllm-venv/bin/python)")
    return py


def _measure_vllm(args, ckpts, prompts, ks, max_len, out_dir: Path) -> tuple[list[dict], Optional[float]]:
    from speculators_core.evaluation import results as res
    from speculators_core.evaluation.vllm_engine import VllmServer, run_prompts

    out: list[dict] = []
    if args.endpoint:
        if len(ckpts) != 1 or len(ks) != 1:
            raise EvaluateInputError("--endpoint measures the one drafter and K that server runs",
                                     fix="pass one checkpoint and one --num-speculative-tokens with --endpoint")
        c, n, s = run_prompts(args.endpoint, prompts, args.max_tokens, args.temperature)
        k = ks[0]
        if c.num_drafts:  # the K that server really runs (its draft tokens per draft)
            served = int(round(c.num_draft_tokens / c.num_drafts))
            if served != k:
                print(f"[evaluate] note: {args.endpoint} drafts {served} tokens per step, not "
                      f"--num-speculative-tokens {k}: reporting K = {served}", flush=True)
                k = served
        per = [c.accepted_per_pos.get(i, 0.0) for i in range(k)]
        out.append(res.result(k, c.num_drafts, c.num_draft_tokens, c.num_accepted_tokens, per, n, s))
        out[-1].update(checkpoint=str(ckpts[0].path), epoch=ckpts[0].epoch)
        return out, None
    py = _vllm_python(args)
    for ck in ckpts:
        for k in ks:
            log = out_dir / f"vllm-eval-{ck.path.name}-k{k}.log"
            print(f"[evaluate] vllm serve {ck.path} (K = {k}); log {log}", flush=True)
            with VllmServer(py, ck.path.resolve(), log, num_speculative_tokens=k, max_model_len=max_len,
                            extra=tuple(args.vllm_arg)) as srv:
                c, n, s = run_prompts(srv.url, prompts, args.max_tokens, args.temperature)
            per = [c.accepted_per_pos.get(i, 0.0) for i in range(k)]
            out.append(res.result(k, c.num_drafts, c.num_draft_tokens, c.num_accepted_tokens, per, n, s))
            out[-1].update(checkpoint=str(ck.path), epoch=ck.epoch)
    base = None
    if args.baseline:
        log = out_dir / "vllm-eval-baseline.log"
        with VllmServer(py, ckpts[0].verifier, log, max_model_len=max_len, extra=tuple(args.vllm_arg)) as srv:
            _, n, s = run_prompts(srv.url, prompts, args.max_tokens, args.temperature)
        base = n / s if s > 0 else None
    return out, base


def _measure_hf(args, ckpts, prompts, ks) -> tuple[list[dict], Optional[float]]:
    from speculators_core.evaluation import results as res
    from speculators_core.evaluation.hf_engine import HfEngine

    if args.temperature != 0:
        raise EvaluateInputError(f"--temperature {args.temperature}: the hf engine measures greedy decoding only",
                                 fix="use --temperature 0, or --engine vllm")
    out: list[dict] = []
    base = None
    for ck in ckpts:
        eng = HfEngine(ck.path, ck.verifier, args.device)
        for k in ks:
            c = eng.run(prompts, k, args.max_tokens)
            out.append(res.result(k, c.num_drafts, c.num_draft_tokens, c.num_accepted_tokens, c.accepted_per_pos,
                                  c.output_tokens, c.seconds))
            out[-1].update(checkpoint=str(ck.path), epoch=ck.epoch)
        if args.baseline and base is None:
            b = eng.baseline(prompts, args.max_tokens)
            base = b.output_tokens / b.seconds if b.seconds > 0 else None
    return out, base


def evaluate(args) -> dict:
    from speculators_core.evaluation import results as res
    from speculators_core.evaluation.inputs import check_lengths, context_length, find_checkpoints, load_prompts

    ks = list(args.num_speculative_tokens)
    if any(k < 1 for k in ks):
        raise EvaluateInputError(f"--num-speculative-tokens {' '.join(map(str, ks))}: each K must be at least 1")
    if args.max_tokens < 1:
        raise EvaluateInputError(f"--max-tokens {args.max_tokens}: must be at least 1")
    ckpts = find_checkpoints(args.checkpoint)
    prompts = load_prompts(args.prompts, ckpts[0].verifier, args.num_prompts, args.val_split, args.seed)
    limit = context_length(ckpts[0].verifier)
    check_lengths(prompts, args.max_tokens, max(ks), limit, ckpts[0].verifier)
    output = Path(args.output) if args.output else Path(args.checkpoint) / "eval.json"
    need = max(len(p) for p in prompts.ids) + args.max_tokens + max(ks) + 1
    reused: dict[str, list[dict]] = {}
    if getattr(args, "reuse_epoch_results", False):
        for ck in ckpts:
            if ck.epoch is not None:
                doc = res.read_doc(res.epoch_results_path(output, ck.epoch))
                got = res.covered(doc, ck.path, ks, args.engine) if doc else None
                if got:
                    reused[str(ck.path)] = got
                    print(f"[evaluate] epoch {ck.epoch}: measured while training ran "
                          f"({res.epoch_results_path(output, ck.epoch).name})", flush=True)
    todo = [ck for ck in ckpts if str(ck.path) not in reused]
    results, base = [], None
    if todo and args.engine == "vllm":
        results, base = _measure_vllm(args, todo, prompts.ids, ks, min(limit, need), output.parent)
    elif todo:
        results, base = _measure_hf(args, todo, prompts.ids, ks)
    res.add_baseline(results, base)
    fresh = list(results)
    results = [r for ck in ckpts for r in (reused.get(str(ck.path))
                                          or [x for x in fresh if x.get("checkpoint") == str(ck.path)])]
    doc = {"engine": args.engine, "checkpoint": str(args.checkpoint), "prompts": prompts.source,
           "num_prompts": len(prompts.ids), "max_tokens": args.max_tokens, "temperature": args.temperature,
           "results": results}
    last = [r for r in results if r.get("checkpoint") == results[-1].get("checkpoint")]
    doc["best_num_speculative_tokens"] = res.best_k(last)
    if args.select_best_by == "acceptance_length" and len(ckpts) > 1:
        best = res.best_checkpoint(results)
        if best is not None:
            from speculators_core.training.checkpoint import set_best

            set_best(Path(args.checkpoint), int(best["epoch"]))
            doc["checkpoint_best"] = {"epoch": best["epoch"], "checkpoint": best["checkpoint"],
                                      "acceptance_length": best["acceptance_length"],
                                      "num_speculative_tokens": best["num_speculative_tokens"]}
            print(f"[evaluate] checkpoint_best -> epoch {best['epoch']} (measured acceptance length "
                  f"{best['acceptance_length']:.3f})", flush=True)
    res.write_eval_json(output, doc)
    if args.metrics:
        from speculators_core.fsutil import append_jsonl

        for r in fresh:  # reused results were recorded when they were measured
            append_jsonl(Path(args.metrics), res.eval_record(r, args.engine))
        if "checkpoint_best" in doc:
            append_jsonl(Path(args.metrics), {"type": "eval_best", "engine": args.engine, **doc["checkpoint_best"]})
    print(res.table(results), flush=True)
    if doc["best_num_speculative_tokens"] is not None:
        print(f"serve with K = {doc['best_num_speculative_tokens']} "
              f"(--speculative-config '{{\"num_speculative_tokens\": {doc['best_num_speculative_tokens']}}}'); "
              f"wrote {output}", flush=True)
    return doc


def main(argv: Optional[list[str]] = None) -> int:
    from speculators_core.plan.flags import evaluate_parser

    p = evaluate_parser()
    p.epilog = EXIT_CODES_HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    args = p.parse_args(argv)
    try:
        evaluate(args)
    except SpeculatorsError as exc:
        return report("evaluate", exc)
    except RuntimeError as exc:  # a server that failed to start: its log tail is in the message
        return report("evaluate", SpeculatorsError(str(exc)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
