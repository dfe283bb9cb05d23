"""Loading a preparation's tokenizer: from the tokenizer cache, with `tokenizers` alone where
`light_tokenizer` vouches for it, or with transformers' AutoTokenizer; and the word encoder for it."""

from __future__ import annotations

import os
import time
from typing import Any

from speculators_core.data.errors import PrepareError
from speculators_core.data.options import PrepareOptions


def load_tokenizer(model_path: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise PrepareError(
            f"--model {model_path}: cannot load the tokenizer ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            f"fix: pass a local model directory with tokenizer files, download the model into the HF "
            f"cache first (`huggingface-cli download {model_path}`), or add --trust-remote-code if "
            f"the tokenizer needs custom code"
        ) from None
    return tok


def light_tokenizer_enabled() -> bool:
    """Load tokenizers without transformers where that is exact (`data/light_tokenizer.py`);
    SPECULATORS_PREPARE_LIGHT_TOKENIZER=0 always uses AutoTokenizer (the output is the same)."""
    return os.environ.get("SPECULATORS_PREPARE_LIGHT_TOKENIZER", "1").strip().lower() not in ("0", "false", "no", "off")


def tokenizer_and_encoder(opts: PrepareOptions, model_path: str, tokenizer_files: dict[str, str],
                           timings: dict[str, float], loader_out: list[str] | None = None
                           ) -> tuple[Any, tuple[Any, str], str, str | None]:
    """(tokenizer, (word encoder | None, why not), cache status, cache key): from the tokenizer
    cache when it holds this exact tokenizer (no transformers/torch import, no probes), else loaded
    (with `tokenizers` alone where `light_tokenizer` vouches for it, with AutoTokenizer otherwise),
    probed, and cached for the next run. `loader_out` receives how it was loaded on a miss."""
    loader_out = loader_out if loader_out is not None else []
    from speculators_core.data import tokenizer_cache
    from speculators_core.data.manifest import tokenizer_dir
    from speculators_core.data.masks import backend

    t = time.perf_counter()
    key, status = None, "off"
    if opts.trust_remote_code:
        status = "off (remote code)"
    elif tokenizer_cache.enabled():
        key = tokenizer_cache.cache_key(tokenizer_files, tokenizer_dir(model_path), opts.exact_tokenizer)
        bundle = tokenizer_cache.load(key)
        if bundle is not None:
            tokenizer = bundle["tokenizer"]
            encoder = bundle["word_encoder"]
            if encoder is not None:
                encoder.bind(backend(tokenizer))
            timings["load tokenizer"] = time.perf_counter() - t
            timings["probes"] = 0.0
            return tokenizer, (encoder, bundle["word_encoder_off"]), "hit", key
    tokenizer, loader = None, "transformers"
    if not opts.trust_remote_code and light_tokenizer_enabled():
        from speculators_core.data import light_tokenizer

        tokenizer, why = light_tokenizer.load(model_path)
        loader = "tokenizers" if tokenizer is not None else f"transformers ({why})"
    if tokenizer is None:
        tokenizer = load_tokenizer(model_path, opts.trust_remote_code)
    timings["load tokenizer"] = time.perf_counter() - t
    loader_out.append(loader)
    t = time.perf_counter()
    if opts.exact_tokenizer:
        encoder: tuple[Any, str] = (None, "--exact-tokenizer")
    else:
        from speculators_core.data.word_encoder import WordEncoder

        encoder = WordEncoder.build(backend(tokenizer))
    timings["probes"] = time.perf_counter() - t
    if key is not None:
        status = "stored" if tokenizer_cache.store(key, tokenizer, *encoder) else "not stored"
    return tokenizer, encoder, status, key
