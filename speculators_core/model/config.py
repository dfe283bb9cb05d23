"""The drafter's architecture (`DrafterConfig`) and its `config.json` in the speculators format.

The drafter inherits the target's attention shape, MLP width, norm eps and rotary embedding; only
the number of decoder layers, the draft vocabulary and the auxiliary layer ids are its own. The
`config.json` it writes is what `vllm serve CHECKPOINT` reads (spec section 5).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")


@dataclass
class DrafterConfig:
    hidden_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    draft_vocab_size: int
    aux_layer_ids: list[int]
    num_layers: int = 1
    rms_norm_eps: float = 1e-6
    hidden_act: str = "silu"
    max_position_embeddings: int = 4096
    rope_theta: float = 10000.0
    rope_scaling: Optional[dict[str, Any]] = None  # rope_type + its parameters, None = default
    ttt_steps: int = 3
    norm_before_residual: bool = True
    verifier_name_or_path: str = ""
    verifier_architectures: list[str] = field(default_factory=list)

    @property
    def num_aux(self) -> int:
        return len(self.aux_layer_ids)

    @property
    def rope_type(self) -> str:
        return (self.rope_scaling or {}).get("rope_type") or (self.rope_scaling or {}).get("type") or "default"

    def validate(self) -> None:
        if self.hidden_act != "silu":
            raise ValueError(f"target hidden_act {self.hidden_act!r}: the drafter implements SwiGLU with silu only")
        if self.rope_type not in SUPPORTED_ROPE_TYPES:
            raise ValueError(f"target rope type {self.rope_type!r} is not supported "
                             f"(supported: {', '.join(SUPPORTED_ROPE_TYPES)})")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"num_attention_heads {self.num_attention_heads} is not a multiple of "
                             f"num_key_value_heads {self.num_key_value_heads}")
        if not 0 < self.draft_vocab_size <= self.vocab_size:
            raise ValueError(f"draft_vocab_size {self.draft_vocab_size} must be in 1..{self.vocab_size} (the target vocabulary)")
        if self.num_layers < 1 or self.ttt_steps < 1:
            raise ValueError("num_layers and ttt_steps must be at least 1")

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_target(cls, target, *, draft_vocab_size: int, aux_layer_ids: list[int], num_layers: int,
                    ttt_steps: int) -> "DrafterConfig":
        """From a `target_info.TargetInfo` (Llama, Qwen2/3, Mistral... field names differ a little)."""
        tc = target.text_config
        rope_theta, rope_scaling = _rope_of(tc)
        cfg = cls(
            hidden_size=target.hidden_size,
            num_attention_heads=target.num_attention_heads,
            num_key_value_heads=target.num_key_value_heads,
            head_dim=target.head_dim,
            intermediate_size=target.intermediate_size or 4 * target.hidden_size,
            vocab_size=target.vocab_size,
            draft_vocab_size=min(draft_vocab_size, target.vocab_size),
            aux_layer_ids=list(aux_layer_ids),
            num_layers=num_layers,
            rms_norm_eps=float(tc.get("rms_norm_eps", tc.get("layer_norm_eps", 1e-6))),
            hidden_act=str(tc.get("hidden_act", "silu")),
            max_position_embeddings=int(tc.get("max_position_embeddings", 4096)),
            rope_theta=rope_theta,
            rope_scaling=rope_scaling,
            ttt_steps=ttt_steps,
            verifier_name_or_path=_servable_name(target.name),
            verifier_architectures=target.architectures,
        )
        cfg.validate()
        return cfg

    # -- config.json ------------------------------------------------------------------------------
    def to_json_dict(self, speculators_version: str, transformers_version: str) -> dict[str, Any]:
        rope_parameters = {"rope_type": self.rope_type, "rope_theta": self.rope_theta}
        for k, v in (self.rope_scaling or {}).items():
            if k not in ("type", "rope_type"):
                rope_parameters[k] = v
        layer = {
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "hidden_act": self.hidden_act,
            "rms_norm_eps": self.rms_norm_eps,
            "max_position_embeddings": self.max_position_embeddings,
            "rope_parameters": rope_parameters,
            "attention_bias": False,
            "mlp_bias": False,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
        }
        return {
            "architectures": ["Eagle3DraftModel"],
            "speculators_model_type": "eagle3",
            "draft_vocab_size": self.draft_vocab_size,
            "norm_before_residual": self.norm_before_residual,
            "norm_before_fc": False,
            "fc_norm": False,
            "norm_output": False,
            "embed_requires_grad": False,
            "eagle_aux_hidden_state_layer_ids": list(self.aux_layer_ids),
            "target_hidden_size": None,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
            "transformer_layer_config": layer,
            "speculators_config": {
                "algorithm": "eagle3",
                "proposal_methods": [{
                    "proposal_type": "greedy",
                    "speculative_tokens": self.ttt_steps,
                    "verifier_accept_k": 1,
                    "accept_tolerance": 0.0,
                }],
                "default_proposal_method": "greedy",
                "verifier": {
                    "name_or_path": self.verifier_name_or_path,
                    "architectures": list(self.verifier_architectures),
                },
            },
            "speculators_version": speculators_version,
            "transformers_version": transformers_version,
        }

    @classmethod
    def from_json_dict(cls, d: dict[str, Any], source: str = "config.json") -> "DrafterConfig":
        if d.get("speculators_model_type") != "eagle3":
            raise ValueError(f"{source}: not an EAGLE-3 drafter (speculators_model_type="
                             f"{d.get('speculators_model_type')!r}, expected 'eagle3')")
        try:
            layer = d["transformer_layer_config"]
            theta, scaling = _rope_of(layer)
            spec = d.get("speculators_config") or {}
            methods = spec.get("proposal_methods") or [{}]
            verifier = spec.get("verifier") or {}
            cfg = cls(
                hidden_size=int(layer["hidden_size"]),
                num_attention_heads=int(layer["num_attention_heads"]),
                num_key_value_heads=int(layer.get("num_key_value_heads") or layer["num_attention_heads"]),
                head_dim=int(layer.get("head_dim") or int(layer["hidden_size"]) // int(layer["num_attention_heads"])),
                intermediate_size=int(layer["intermediate_size"]),
                vocab_size=int(layer["vocab_size"]),
                draft_vocab_size=int(d.get("draft_vocab_size") or layer["vocab_size"]),
                aux_layer_ids=[int(x) for x in d.get("eagle_aux_hidden_state_layer_ids") or []],
                num_layers=int(layer.get("num_hidden_layers", 1)),
                rms_norm_eps=float(layer.get("rms_norm_eps", 1e-6)),
                hidden_act=str(layer.get("hidden_act", "silu")),
                max_position_embeddings=int(layer.get("max_position_embeddings", 4096)),
                rope_theta=theta,
                rope_scaling=scaling,
                ttt_steps=int(methods[0].get("speculative_tokens", 3)),
                norm_before_residual=bool(d.get("norm_before_residual", True)),
                verifier_name_or_path=str(verifier.get("name_or_path", "")),
                verifier_architectures=list(verifier.get("architectures") or []),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: malformed EAGLE-3 config ({type(exc).__name__}: {exc})") from None
        cfg.validate()
        return cfg

    @classmethod
    def load(cls, checkpoint_dir: Path) -> "DrafterConfig":
        path = Path(checkpoint_dir) / "config.json"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no config.json; expected a drafter checkpoint directory")
        return cls.from_json_dict(json.loads(path.read_text()), source=str(path))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rope_of(cfg: dict[str, Any]) -> tuple[float, Optional[dict[str, Any]]]:
    """(rope_theta, scaling dict or None) from a HF config (old `rope_scaling` or new `rope_parameters`)."""
    params = cfg.get("rope_parameters")
    if isinstance(params, dict) and "rope_sections" not in params:
        theta = float(params.get("rope_theta", cfg.get("rope_theta", 10000.0)))
        rope_type = params.get("rope_type") or params.get("type") or "default"
        scaling = None if rope_type == "default" else {k: v for k, v in params.items() if k != "rope_theta"}
        return theta, scaling
    theta = float(cfg.get("rope_theta", 10000.0))
    scaling = cfg.get("rope_scaling")
    if scaling and (scaling.get("rope_type") or scaling.get("type") or "default") != "default":
        return theta, dict(scaling)
    return theta, None


def _servable_name(spec: str) -> str:
    """The verifier as vLLM must find it: `builtin:` names become their local directory."""
    from speculators_core.paths import resolve_model

    return resolve_model(spec)
