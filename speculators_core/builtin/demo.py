"""Build the embedded demo target `builtin:tiny-qwen3` offline: a tiny random Qwen3 model with a
small BPE tokenizer trained on the bundled chat data and a ChatML chat template.

    python -m speculators_core.demo [--model-dir DIR] [--force]

Idempotent: an already complete directory is left alone. Written atomically (temp dir + rename).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from speculators_core.builtin.spec import CHATML_TEMPLATE, SPECIAL_TOKENS, TINY_QWEN3_CONFIG
from speculators_core.fsutil import replace_dir
from speculators_core.paths import ASSETS_DIR, BUILTIN_DATA, builtin_model_dir

MARKER = ".speculators-demo-complete"


def demo_texts(path: Path | None = None) -> list[str]:
    """All message texts of the bundled demo chat data (both schemas)."""
    path = path or ASSETS_DIR / BUILTIN_DATA["demo-chat"]
    texts: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            for turn in row.get("conversations") or row.get("messages") or []:
                texts.append(turn.get("value") or turn.get("content") or "")
    return texts


def build_tokenizer(out_dir: Path, vocab_size: int, texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHATML_TEMPLATE
    fast.model_max_length = TINY_QWEN3_CONFIG["max_position_embeddings"]
    fast.save_pretrained(out_dir)
    return fast


def build(model_dir: Path, force: bool = False, seed: int = 0) -> Path:
    model_dir = Path(model_dir)
    if (model_dir / MARKER).exists() and not force:
        return model_dir
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    model_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{model_dir.name}.", dir=model_dir.parent))
    tmp.chmod(0o755)
    try:
        cfg_values = dict(TINY_QWEN3_CONFIG)
        tokenizer = build_tokenizer(tmp, cfg_values["vocab_size"], demo_texts())
        cfg_values["vocab_size"] = max(cfg_values["vocab_size"], len(tokenizer))
        cfg_values.pop("architectures")
        dtype = cfg_values.pop("torch_dtype")
        rope_theta = cfg_values.pop("rope_theta")
        config = Qwen3Config(
            **cfg_values,
            rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
            bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
            eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
            pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        )
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config).to(getattr(torch, dtype))
        model.config.architectures = ["Qwen3ForCausalLM"]
        model.generation_config.do_sample = False
        model.save_pretrained(tmp, safe_serialization=True)
        (tmp / MARKER).write_text("ok\n")
        replace_dir(tmp, model_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return model_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m speculators_core.demo", description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", default=str(builtin_model_dir("tiny-qwen3")))
    p.add_argument("--force", action="store_true", help="rebuild even when complete")
    a = p.parse_args(argv)
    out = Path(a.model_dir)
    if (out / MARKER).exists() and not a.force:
        print(f"demo target already built: {out}")
        return 0
    build(out, force=a.force)
    print(f"built demo target: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
