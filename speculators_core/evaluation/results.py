"""eval.json, the stdout table, `type: "eval"` records for metrics.jsonl, the K to serve with, and
the best checkpoint by measured acceptance."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional


def result(k: int, drafts: float, draft_tokens: float, accepted: float, per_pos: list[float],
           output_tokens: int, seconds: float) -> dict:
    return {"num_speculative_tokens": k,
            "acceptance_length": 1.0 + accepted / drafts if drafts else 0.0,
            "per_position_acceptance": [p / drafts if drafts else 0.0 for p in per_pos],
            "num_drafts": int(drafts), "num_draft_tokens": int(draft_tokens), "num_accepted_tokens": int(accepted),
            "output_tokens": int(output_tokens), "tokens_per_s": output_tokens / seconds if seconds > 0 else 0.0}


def add_baseline(results: list[dict], baseline_tokens_per_s: Optional[float]) -> None:
    if not baseline_tokens_per_s:
        return
    for r in results:
        r["baseline_tokens_per_s"] = baseline_tokens_per_s
        r["speedup"] = r["tokens_per_s"] / baseline_tokens_per_s


def best_k(results: list[dict]) -> Optional[int]:
    """The K to serve with: the highest speedup (or, without a baseline, output tokens/s)."""
    if not results:
        return None
    key = "speedup" if all("speedup" in r for r in results) else "tokens_per_s"
    return max(results, key=lambda r: (r[key], -r["num_speculative_tokens"]))["num_speculative_tokens"]


def table(results: list[dict]) -> str:
    head = f"{'checkpoint':<28} {'K':>2} {'accept len':>10} {'per position':<28} {'tok/s':>8} {'speedup':>7}"
    lines = [head]
    for r in results:
        pp = " ".join(f"{x:.2f}" for x in r["per_position_acceptance"])
        sp = f"{r['speedup']:.2f}x" if "speedup" in r else "-"
        name = str(r.get("checkpoint", ""))[-28:]
        lines.append(f"{name:<28} {r['num_speculative_tokens']:>2} {r['acceptance_length']:>10.3f} {pp:<28} "
                     f"{r['tokens_per_s']:>8.1f} {sp:>7}")
    return "\n".join(lines)


def eval_record(r: dict, engine: str) -> dict:
    """One `type: "eval"` metrics.jsonl record (docs/metrics.md)."""
    return {"type": "eval", "time": time.time(), "engine": engine, "epoch": r.get("epoch"),
            "checkpoint": r.get("checkpoint"), "num_speculative_tokens": r["num_speculative_tokens"],
            "acceptance_length": r["acceptance_length"], "per_position_acceptance": r["per_position_acceptance"],
            "tokens_per_s": r["tokens_per_s"], "speedup": r.get("speedup"),
            "num_drafts": r["num_drafts"], "num_accepted_tokens": r["num_accepted_tokens"]}


def best_checkpoint(results: list[dict]) -> Optional[dict]:
    """The result (of any K) with the highest measured acceptance length among epoch checkpoints;
    ties: the earlier epoch."""
    cands = [r for r in results if r.get("epoch") is not None]
    if not cands:
        return None
    return max(cands, key=lambda r: (r["acceptance_length"], -int(r["epoch"])))


def write_eval_json(path: Path, doc: dict) -> Path:
    from speculators_core.fsutil import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.setdefault("written", time.time())
    return atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


def epoch_results_path(output: Path, epoch: int) -> Path:
    """Where one epoch's results are written while training runs (beside the stage's eval.json)."""
    return Path(output).parent / f"eval-epoch-{epoch}.json"


def covered(doc: dict, checkpoint: Path, ks: list[int], engine: str,
            epoch: Optional[int] = None) -> Optional[list[dict]]:
    """`doc`'s (an eval.json) results for `checkpoint` when they cover every K in `ks` with `engine`
    and the document is newer than the checkpoint's weights; else None (it must be measured)."""
    try:
        if doc.get("engine") != engine:
            return None
        rs = [r for r in doc.get("results", []) if r.get("checkpoint") == str(checkpoint)
              and (epoch is None or r.get("epoch") in (None, epoch))]
        if {int(k) for k in ks} - {int(r["num_speculative_tokens"]) for r in rs}:
            return None
        if float(doc.get("written", 0)) < (Path(checkpoint) / "model.safetensors").stat().st_mtime:
            return None
        return [r for r in rs if int(r["num_speculative_tokens"]) in set(ks)]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def read_doc(path: Path) -> Optional[dict]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
