"""Read only the verifier tensors the drafter needs from the target's safetensors: the input
embedding, the final norm and the lm_head (its draft-vocabulary rows). The target model itself is
never loaded. With `tie_word_embeddings` the lm_head is the embedding matrix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch

from speculators_core.errors import SpeculatorsError

EMBED_NAMES = ("model.embed_tokens.weight", "model.language_model.embed_tokens.weight",
               "language_model.model.embed_tokens.weight", "embed_tokens.weight", "transformer.wte.weight")
NORM_NAMES = ("model.norm.weight", "model.language_model.norm.weight", "language_model.model.norm.weight",
              "norm.weight", "transformer.ln_f.weight")
HEAD_NAMES = ("lm_head.weight", "language_model.lm_head.weight", "model.lm_head.weight")


class VerifierWeightsError(SpeculatorsError, FileNotFoundError):
    pass


def _index(model_dir: Path) -> dict[str, Path]:
    """Tensor name -> the safetensors file that holds it."""
    idx = model_dir / "model.safetensors.index.json"
    if idx.exists():
        try:
            weight_map = json.loads(idx.read_text())["weight_map"]
        except (OSError, json.JSONDecodeError, KeyError) as exc:
            raise VerifierWeightsError(f"{idx}: unreadable safetensors index ({exc})") from None
        return {k: model_dir / v for k, v in weight_map.items()}
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise VerifierWeightsError(f"{model_dir}: no *.safetensors files; the trainer reads the target's "
                                   f"embedding, final norm and lm_head from them (download the weights)")
    from safetensors import safe_open

    out: dict[str, Path] = {}
    for f in files:
        with safe_open(str(f), framework="pt") as fh:
            for k in fh.keys():
                out[k] = f
    return out


def _get(index: dict[str, Path], names: tuple[str, ...], what: str, model_dir: Path) -> Optional[torch.Tensor]:
    from safetensors import safe_open

    for name in names:
        if name in index:
            with safe_open(str(index[name]), framework="pt") as fh:
                return fh.get_tensor(name)
    return None


def load_verifier_tensors(model_dir: Path, tie_word_embeddings: bool, selected: torch.Tensor,
                          need_embed: bool = True) -> dict[str, torch.Tensor]:
    """{"embed": [V, H], "norm": [H], "lm_head_rows": [Vd, H]} as float32."""
    model_dir = Path(model_dir)
    index = _index(model_dir)
    norm = _get(index, NORM_NAMES, "final norm", model_dir)
    if norm is None:
        raise VerifierWeightsError(f"{model_dir}: final norm not found (looked for {', '.join(NORM_NAMES)})")
    embed = _get(index, EMBED_NAMES, "embedding", model_dir)
    head = None if tie_word_embeddings else _get(index, HEAD_NAMES, "lm_head", model_dir)
    if head is None:
        if embed is None:
            raise VerifierWeightsError(f"{model_dir}: neither lm_head nor the input embedding found "
                                       f"(looked for {', '.join(HEAD_NAMES + EMBED_NAMES)})")
        head = embed  # tied (or a checkpoint that omits the tied lm_head)
    if embed is None and need_embed:
        raise VerifierWeightsError(f"{model_dir}: input embedding not found (looked for {', '.join(EMBED_NAMES)})")
    sel = selected.to(torch.int64)
    if int(sel.max()) >= head.shape[0]:
        raise VerifierWeightsError(f"{model_dir}: lm_head has {head.shape[0]} rows, the draft vocabulary needs id {int(sel.max())}")
    return {
        "embed": embed.float() if embed is not None else None,
        "norm": norm.float(),
        "lm_head_rows": head[sel].float().contiguous(),
    }
