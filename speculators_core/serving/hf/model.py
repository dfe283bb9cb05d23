"""The hf engine's model: a transformers forward pass that keeps the hidden states of chosen layers.

Layer semantics equal vLLM's: id k is the output of decoder layer k (1-based), i.e. HF
`hidden_states[k]` for k < L, and for k = L the last layer's output BEFORE the final norm.
"""

from __future__ import annotations

import threading
from typing import Any


def _first_attr(obj: Any, paths: tuple[str, ...]) -> Any:
    """The first dotted attribute path of `paths` that `obj` has, else None."""
    for path in paths:
        cur = obj
        try:
            for part in path.split("."):
                cur = getattr(cur, part)
        except AttributeError:
            continue
        return cur
    return None


def decoder_layers(model) -> Any:
    """The ModuleList of decoder layers of a causal LM (text models and common multimodal wrappers)."""
    layers = _first_attr(model, ("model.layers", "model.language_model.layers", "language_model.model.layers",
                                 "transformer.h", "model.decoder.layers"))
    if layers is None:
        raise ValueError(f"{type(model).__name__}: cannot find its decoder layers (model.layers); unsupported architecture")
    return layers


def final_norm(model) -> Any:
    return _first_attr(model, ("model.norm", "model.language_model.norm", "transformer.ln_f",
                               "model.decoder.final_layer_norm"))


class HiddenStatesModel:
    """A causal LM with forward hooks on the decoder layers named by the layer ids."""

    def __init__(self, model_path: str, layer_ids: list[int], device: str = "auto", dtype: str = "auto",
                 trust_remote_code: bool = False) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device is visible (check CUDA_VISIBLE_DEVICES)")
        from speculators_core.precision import choose_dtype

        self.precision = choose_dtype(dtype, device, purpose="serve")
        self.device = torch.device(device)
        self.dtype = self.precision.torch_dtype
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=self.dtype,
                                                          trust_remote_code=trust_remote_code)
        self.model.to(self.device).eval()
        layers = decoder_layers(self.model)
        self.num_layers = len(layers)
        self.layer_ids = list(layer_ids)
        self.norm = final_norm(self.model)
        self.lm_head = self.model.get_output_embeddings()
        self.vocab_size = int(self.model.config.get_text_config().vocab_size)
        self._captured: dict[int, Any] = {}
        #: One forward at a time: hidden-states extraction and text generation share the model.
        self.lock = threading.Lock()
        self._capturing = False  # the layer hooks keep their outputs only during an extraction forward
        for k in self.layer_ids:
            layers[k - 1].register_forward_hook(self._hook(k))

    def _hook(self, k: int):
        def hook(module, args, output):
            if not self._capturing:
                return
            self._captured[k] = output[0] if isinstance(output, (tuple, list)) else output
        return hook

    def forward(self, batch: list[list[int]]) -> list[tuple[Any, int]]:
        """[(hidden_states [T, n, H] on CPU in the model dtype, next token id)] per sample (right-padded batch)."""
        import torch

        n = len(batch)
        width = max(len(x) for x in batch)
        ids = torch.zeros((n, width), dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for i, x in enumerate(batch):
            ids[i, :len(x)] = torch.tensor(x, dtype=torch.long)
            mask[i, :len(x)] = 1
        with self.lock, torch.inference_mode():
            self._captured.clear()
            self._capturing = True
            try:
                return self._extract(batch, ids, mask)
            finally:
                self._capturing = False
                self._captured.clear()

    def _extract(self, batch: list[list[int]], ids, mask) -> list[tuple[Any, int]]:
        import torch

        n = len(batch)
        base = self.model.get_decoder() if hasattr(self.model, "get_decoder") else self.model.model
        base(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), use_cache=False)
        stacked = torch.stack([self._captured[k] for k in self.layer_ids], dim=2)  # [B, S, n, H]
        rows = torch.arange(n, device=stacked.device)
        ends = torch.tensor([len(x) - 1 for x in batch], device=stacked.device)
        last = stacked[rows, ends, -1]  # [B, H]: id L at each sample's last token
        nxt = [0] * n
        if self.norm is not None and self.lm_head is not None:
            nxt = self.lm_head(self.norm(last)).argmax(-1).tolist()
        return [(stacked[i, :len(x)].to("cpu").contiguous().clone(), int(nxt[i])) for i, x in enumerate(batch)]
