"""What `evaluate` measures: drafter checkpoints (checked to be ones, with a findable verifier) and
prompts (token-id rows, chat rows, or a prepared dataset's held-out split), each a clear error
naming the file and the fix when it is not usable."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from speculators_core.errors import ExitCode, SpeculatorsError


class EvaluateInputError(SpeculatorsError, ValueError):
    """A checkpoint, verifier or prompts file `evaluate` cannot use."""
    exit_code = ExitCode.USAGE


@dataclass
class Checkpoint:
    path: Path                  # the drafter directory (config.json + model.safetensors)
    verifier: Path              # the target's directory
    ttt_steps: int              # the K it was trained for
    epoch: Optional[int] = None  # <save>/<epoch>: the epoch number


def _is_checkpoint(d: Path) -> bool:
    try:
        cfg = json.loads((d / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and cfg.get("speculators_model_type") == "eagle3"


def find_checkpoints(path: str | Path) -> list[Checkpoint]:
    """One checkpoint directory, or every complete epoch checkpoint of a training save directory
    (ascending epochs). Raises EvaluateInputError when `path` is neither."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise EvaluateInputError(f"--checkpoint {p}: no such directory",
                                 fix="pass a drafter checkpoint (<save>/<epoch>/ or <save>/checkpoint_best) "
                                     "or a training save directory")
    if _is_checkpoint(p):
        epoch = int(p.resolve().name) if p.resolve().name.isdigit() else None
        return [load_checkpoint(p, epoch)]
    epochs = sorted((int(c.name), c) for c in p.iterdir() if c.is_dir() and c.name.isdigit() and _is_checkpoint(c))
    if not epochs:
        raise EvaluateInputError(
            f"--checkpoint {p}: not a speculators checkpoint (no config.json with speculators_model_type "
            f"\"eagle3\") and no epoch checkpoints (<epoch>/config.json) in it",
            fix="pass a directory written by `python -m speculators_core.train` (its --save-path, "
                "<save>/<epoch>/ or <save>/checkpoint_best)")
    return [load_checkpoint(c, e) for e, c in epochs]


def load_checkpoint(d: Path, epoch: Optional[int] = None) -> Checkpoint:
    cfg_path = d / "config.json"
    cfg = json.loads(cfg_path.read_text())
    if not (d / "model.safetensors").exists():
        raise EvaluateInputError(f"{d}: config.json but no model.safetensors (an incomplete checkpoint)",
                                 fix="pick another epoch's checkpoint, or re-run training with --resume")
    spec = cfg.get("speculators_config") or {}
    name = str((spec.get("verifier") or {}).get("name_or_path") or "")
    from speculators_core.paths import resolve_model

    verifier = Path(resolve_model(name)) if name else None
    if verifier is None or not (verifier / "config.json").exists():
        from speculators_core.target import TargetNotFound, find_config

        try:
            verifier = find_config(name).parent if name else None
        except TargetNotFound:
            verifier = None
        if verifier is None:
            raise EvaluateInputError(
                f"{cfg_path}: the verifier {name or '(none)'} named in speculators_config.verifier.name_or_path "
                f"cannot be found (no such directory with a config.json, nor in the Hugging Face cache)",
                fix="make the target model available at that path (or download it), or set "
                    "speculators_config.verifier.name_or_path in that config.json to the target's directory")
    steps = 3
    for m in spec.get("proposal_methods") or []:
        steps = int(m.get("speculative_tokens", steps))
    return Checkpoint(path=d, verifier=verifier, ttt_steps=steps, epoch=epoch)


@dataclass
class Prompts:
    source: str
    ids: list[list[int]]


def _chat_prompt(row: dict) -> Optional[list[dict]]:
    turns = row.get("messages")
    if turns is None and isinstance(row.get("conversations"), list):
        roles = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
        turns = [{"role": roles.get(str(t.get("from", t.get("role"))), "user"),
                  "content": t.get("value", t.get("content", ""))} for t in row["conversations"]]
    if not isinstance(turns, list):
        return None
    last_user = max((i for i, t in enumerate(turns) if isinstance(t, dict) and t.get("role") == "user"), default=None)
    if last_user is None:
        return None
    return [{"role": t["role"], "content": t.get("content", "")} for t in turns[:last_user + 1]]


def load_prompts(path: str, verifier: Path, num_prompts: Optional[int] = None, val_split: float = 0.1,
                 seed: int = 0) -> Prompts:
    """Prompt token ids from a jsonl file (prompt_ids, or chat rows rendered with the target's chat
    template and the generation prompt) or a prepared dataset directory (its held-out rows, cut
    before their first trainable token: the same rows training validated on)."""
    p = Path(path).expanduser()
    if p.is_dir():
        from speculators_core.training.data import PreparedData

        try:
            data = PreparedData(p)
            _, val_rows = data.split(val_split, seed)
        except (FileNotFoundError, ValueError) as exc:
            raise EvaluateInputError(f"--prompts {p}: {exc}",
                                     fix="pass a prompts .jsonl file or a prepared dataset directory") from None
        out = []
        for r in val_rows:
            ids, mask = data.row(r)
            first = next((i for i, m in enumerate(mask) if m), None)
            if first:
                out.append(ids[:first])
        prompts = Prompts(str(p), out)
    else:
        if not p.is_file():
            raise EvaluateInputError(f"--prompts {p}: no such file",
                                     fix="pass a .jsonl file of prompt_ids or chat rows, or a prepared dataset directory")
        rows, tok = [], None
        with open(p, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if num_prompts is not None and len(rows) >= num_prompts:
                    break
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    raise EvaluateInputError(f"{p}:{n}: not JSON ({exc})", fix="one JSON object per line") from None
                if isinstance(row, dict) and isinstance(row.get("prompt_ids"), list):
                    ids = row["prompt_ids"]
                    if not ids or not all(isinstance(x, int) and x >= 0 for x in ids):
                        raise EvaluateInputError(f"{p}:{n}: prompt_ids must be a non-empty list of token ids",
                                                 fix="write the prompt's token ids as integers")
                    rows.append(list(ids))
                    continue
                chat = _chat_prompt(row) if isinstance(row, dict) else None
                if chat is None:
                    raise EvaluateInputError(f"{p}:{n}: neither prompt_ids nor a chat row with a user turn "
                                             f"(messages / conversations)",
                                             fix="give each row prompt_ids, or messages with at least one user turn")
                if tok is None:
                    from transformers import AutoTokenizer

                    tok = AutoTokenizer.from_pretrained(str(verifier))
                rows.append(list(tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=True,
                                                         return_dict=False)))
        prompts = Prompts(str(p), rows)
    if num_prompts is not None:
        prompts.ids = prompts.ids[:num_prompts]
    if not prompts.ids:
        raise EvaluateInputError(f"--prompts {p}: no prompts in it (empty, or no held-out row with a reply)",
                                 fix="add rows with prompt_ids or chat messages (a user turn each), "
                                     "or point --prompts at a file that has some")
    return prompts


def context_length(verifier: Path) -> int:
    cfg = json.loads((verifier / "config.json").read_text())
    text = cfg.get("text_config") or cfg
    return int(text.get("max_position_embeddings") or cfg.get("max_position_embeddings") or 2048)


def check_lengths(prompts: Prompts, max_tokens: int, max_k: int, limit: int, verifier: Path) -> None:
    """Every prompt plus its reply (and the last draft) must fit the target's context."""
    for i, ids in enumerate(prompts.ids):
        need = len(ids) + max_tokens + max_k
        if need > limit:
            raise EvaluateInputError(
                f"--prompts {prompts.source}: prompt {i + 1} has {len(ids)} tokens; with --max-tokens {max_tokens} "
                f"and {max_k} speculative tokens it needs {need}, over the context of {limit} "
                f"({verifier}/config.json max_position_embeddings)",
                fix="lower --max-tokens, or remove the long prompts (or keep the first ones with --num-prompts)")
