"""The reference for layer semantics: a direct transformers forward of the target (fp32).

id k (1 <= k < L) = HF `hidden_states[k]` (input of decoder layer k); id L = output of the last
decoder layer BEFORE the final norm (a forward hook; HF's `hidden_states[L]` is after the norm).
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=2)
def load_model(path: str):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype="float32").eval()


def reference_hidden_states(path: str, ids: list[int], layer_ids: list[int]):
    """([T, len(layer_ids), H], HF post-norm hidden_states[L] [T, H])."""
    import torch

    model = load_model(path)
    L = model.config.num_hidden_layers
    captured = {}
    handle = model.model.layers[L - 1].register_forward_hook(
        lambda m, a, out: captured.__setitem__("last", out[0] if isinstance(out, tuple) else out))
    try:
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    finally:
        handle.remove()
    layers = [captured["last"][0] if k == L else out.hidden_states[k][0] for k in layer_ids]
    return torch.stack(layers, dim=1), out.hidden_states[L][0]
