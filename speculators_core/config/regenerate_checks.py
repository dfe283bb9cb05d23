"""Validation of `[data] regenerate` and its settings (called from `checks.validate`)."""

from __future__ import annotations

import json
import math
from typing import Any

from speculators_core.config.schema import RunConfig


def regenerate_problems(cfg: RunConfig, problem: Any) -> list:
    """Problems of the regeneration settings; `problem` is `checks.Problem` (field, message, fix[, severity])."""
    d, hs = cfg.data, cfg.hidden_states
    P: list = []
    if d.regenerate_max_tokens is not None and d.regenerate_max_tokens < 1:
        P.append(problem("data.regenerate_max_tokens", f"must be at least 1, got {d.regenerate_max_tokens}",
                         "use e.g. 1024 (tokens per generated answer)"))
    if d.regenerate_concurrency < 1:
        P.append(problem("data.regenerate_concurrency", f"must be at least 1, got {d.regenerate_concurrency}",
                         "use e.g. 32 (requests in flight)"))
    if math.isfinite(d.regenerate_temperature) and d.regenerate_temperature < 0:
        P.append(problem("data.regenerate_temperature", f"must be >= 0, got {d.regenerate_temperature}",
                         "use 0 for greedy answers"))
    if math.isfinite(d.regenerate_top_p) and not 0 < d.regenerate_top_p <= 1:
        P.append(problem("data.regenerate_top_p", f"must be in (0, 1], got {d.regenerate_top_p}", "use 1.0"))
    if d.regenerate_chat_template_kwargs.strip():
        try:
            obj = json.loads(d.regenerate_chat_template_kwargs)
        except json.JSONDecodeError as e:
            obj, why = None, f"not JSON ({e.msg} at column {e.colno})"
        else:
            why = "" if isinstance(obj, dict) else f"a JSON {type(obj).__name__}, not an object"
        if why:
            P.append(problem("data.regenerate_chat_template_kwargs", why,
                             'write a JSON object, e.g. \'{"enable_thinking": false}\''))
    for i, url in enumerate(d.regenerate_endpoints):
        if not url.strip().startswith(("http://", "https://")):
            P.append(problem(f"data.regenerate_endpoints[{i}]", f"{url!r} is not an http(s) URL",
                             "give e.g. http://127.0.0.1:8000/v1"))
    if d.regenerate and hs.engine == "vllm" and not d.regenerate_endpoints:
        P.append(problem("data.regenerate",
                         "with hidden_states.engine = \"vllm\" the run's server extracts hidden states and is not "
                         "used to generate (every request would write a hidden-states file)",
                         "start a plain `vllm serve TARGET` and list it in data.regenerate_endpoints, or use "
                         "hidden_states.engine = \"hf\" (serves both)"))
    if d.regenerate and d.regenerate_output and not d.regenerate_output.lower().endswith(".jsonl"):
        P.append(problem("data.regenerate_output", f"{d.regenerate_output!r} does not end in .jsonl",
                         "name a .jsonl file (prepare reads it as a source)"))
    return P
