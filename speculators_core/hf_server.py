"""Built-in hidden-states server (`hf` engine): a transformers forward pass behind vLLM's protocol.

    python -m speculators_core.hf_server MODEL --port 8000 --hidden-states-path DIR \
        [--target-layer-ids 2 4 5 8] [--device auto|cpu|cuda] [--max-model-len N]

The server lives in `speculators_core.serving.hf` (model, batcher, http, main); this module is
its command line. Speaks what the client expects from vLLM's extraction (vLLM's `extract_hidden_states` speculative method):
`GET /health`, `GET /v1/models`, `POST /v1/completions` with a token-id prompt (`return_token_ids`
echoes `prompt_token_ids`; `kv_transfer_params.hidden_states_path` names `<DIR>/<request id>.safetensors`),
the same safetensors layout (`hidden_states` [T, layers, H] in the model dtype, `token_ids` [T] int64)
and the same `.lock` protocol (exclusive flock held until the file is complete; the response may come
first). `GET /metrics` has vLLM-named gauges/counters for the bottleneck detector.

Layer semantics equal vLLM's: id k is the output of decoder layer k (1-based), i.e. HF
`hidden_states[k]` for k < L, and for k = L the last layer's output BEFORE the final norm.
Concurrent requests are batched (right-padded, by length) in one forward worker thread; files are
written by a small writer pool. It also generates text: `POST /v1/chat/completions` and
`/v1/completions` with `max_tokens > 1` (greedy or sampled, `return_token_ids`, continuous batching
with a KV cache; no hidden-states file), which the regenerate stage uses. Binds 127.0.0.1 by default; SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import sys
from typing import Optional

from speculators_core.plan import flags as stage_args


def main(argv: Optional[list[str]] = None) -> int:
    from speculators_core.serving.hf.main import serve

    return serve(stage_args.hf_server_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
