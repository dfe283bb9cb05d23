"""The typed run configuration: one `RunConfig` of sections, as a user thinks of a run.

`[model]`, `[data]`, `[hidden_states]`, `[training]`, `[run]`: a whole pipeline run (prepare ->
hidden-states server -> train). Imports neither torch nor transformers (the app's start path).
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from speculators_core.config.cluster import ClusterSection
from speculators_core.errors import SpeculatorsError

ENGINES = ("vllm", "hf")
MODES = ("online", "hybrid", "offline")
SCHEDULERS = ("linear", "cosine", "constant")
LOGGERS = ("none", "tensorboard", "wandb", "trackio")
CONNECTORS = ("auto", "stock", "cpu")
DEVICES = ("auto", "cpu", "cuda")

#: What each training mode means in the reference tutorial's flags.
MODE_FLAGS = {
    "online": ("generate", "delete"),
    "hybrid": ("generate", "cache"),
    "offline": ("raise", "cache"),
}
MODE_HELP = {
    "online": "hidden states are generated on demand and deleted after use (least disk, server busy every epoch)",
    "hybrid": "generated on demand in epoch 1 and cached; later epochs read the cache (server idle after epoch 1)",
    "offline": "all hidden states are generated before training and cached; training reads only the cache",
}


class ConfigError(SpeculatorsError, ValueError):
    """A configuration that cannot be read. The message names the key, file and line, and the fix."""


@dataclass
class ModelSection:
    #: HF model id, a local directory, or `builtin:tiny-qwen3` (the embedded demo target).
    target: str = ""
    trust_remote_code: bool = False


@dataclass
class DataSection:
    #: `sharegpt`, `ultrachat`, `builtin:demo-chat`, or local .json/.jsonl files or directories.
    sources: list[str] = field(default_factory=lambda: ["sharegpt"])
    output: str = "./output"
    max_samples: Optional[int] = None
    seq_length: int = 8192
    minimum_valid_tokens: Optional[int] = None
    num_preprocessing_workers: int = 8
    seed: int = 0
    #: Stage 0 before prepare: replace the assistant answers with the target's own (the drafter learns
    #: what the target says, not another model's habits); prepare then trains on the exact token ids.
    regenerate: bool = False
    #: The regenerated conversations (.jsonl); "" = `<output>-regenerated.jsonl`.
    regenerate_output: str = ""
    regenerate_max_tokens: int = 1024
    regenerate_temperature: float = 0.0
    regenerate_top_p: float = 1.0
    #: Requests in flight over all endpoints.
    regenerate_concurrency: int = 32
    regenerate_turns: Literal["all", "first"] = "all"
    #: JSON object passed to the chat template, e.g. '{"enable_thinking": false}' for Qwen3.
    regenerate_chat_template_kwargs: str = ""
    #: Servers of the target to regenerate with; [] = the run's own server (the hf engine serves both
    #: regeneration and hidden states; with vLLM give a plain `vllm serve TARGET` here).
    regenerate_endpoints: list[str] = field(default_factory=list)


@dataclass
class HiddenStatesSection:
    engine: Literal["vllm", "hf"] = "vllm"
    #: Interpreter of the venv that has vLLM ("" = the interpreter running speculators-tui).
    python: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    #: GPU indices for the server; empty = run it on the CPU.
    gpus: list[int] = field(default_factory=lambda: [0])
    data_parallel_size: int = 1
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: Optional[int] = None
    #: Layer ids to extract; the last must be L. None = [2, L//2, L-3, L] from the target config.
    target_layer_ids: Optional[list[int]] = None
    #: Where the server writes hidden-states files ("" = <data.output>/hs_scratch).
    storage_dir: str = ""
    #: vLLM hidden-states connector: auto (cpu when gpus is empty), stock, or cpu.
    connector: Literal["auto", "stock", "cpu"] = "auto"
    #: Device of the built-in hf engine.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    #: The hf engine's model dtype: auto = bf16 on GPUs and CPUs with native bf16, else fp32.
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    #: Extra arguments appended to the server command line (vLLM flags for the vllm engine).
    extra_args: list[str] = field(default_factory=list)
    #: Extra environment variables for the server process.
    env: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait for /health before declaring the start failed.
    start_timeout: float = 900.0
    #: Name of the environment variable that holds the servers' API key ("" = no key). The key itself
    #: never appears in run.toml, run.sh or argv: vLLM gets it as VLLM_API_KEY, the hf engine and the
    #: clients as `--api-key-env NAME`.
    api_key_env: str = ""


@dataclass
class TrainingSection:
    #: GPU indices for training (torchrun nproc = their count); empty = train on the CPU.
    gpus: list[int] = field(default_factory=lambda: [1])
    #: Processes when training on the CPU (gloo); 1 = plain `python -m`.
    cpu_processes: int = 1
    #: Compute dtype: auto = bf16 on GPUs and on CPUs with native bf16 (AVX512_BF16/AMX), fp32 on
    #: other CPUs (bf16 is emulated there and several times slower). Checkpoints are bf16 either way.
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    mode: Literal["online", "hybrid", "offline"] = "online"
    #: Hidden-states cache for hybrid/offline ("" = <data.output>/hidden_states).
    hidden_states_cache: str = ""
    draft_vocab_size: int = 32000
    epochs: int = 5
    lr: float = 1e-4
    total_seq_len: int = 8192
    num_layers: int = 1
    ttt_steps: int = 3
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    warmup_ratio: float = 0.01
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    val_split: float = 0.1
    noise: float = 0.05
    checkpoint_dir: str = "./output/checkpoints"
    save_best: bool = True
    from_pretrained: str = ""
    #: Continue from the latest checkpoint in checkpoint_dir when there is one.
    resume: bool = True
    logger: Literal["none", "tensorboard", "wandb", "trackio"] = "none"
    seed: int = 0
    #: Hidden-states requests in flight per training process.
    max_in_flight: int = 8
    #: Hidden-states files allowed on disk at once per training process.
    max_files_on_disk: int = 16


@dataclass
class EvaluationSection:
    """Stage 4 (`python -m speculators_core.evaluate`), run after training when enabled."""
    enabled: bool = False
    #: "vllm" (serve the drafter, vLLM's own counters; the vLLM venv of hidden_states.python) or
    #: "hf" (in-process, no vLLM: small targets, quick checks).
    engine: Literal["vllm", "hf"] = "vllm"
    #: jsonl of prompt_ids or chat rows; "" = the prepared data's held-out (validation) rows.
    prompts: str = ""
    num_prompts: Optional[int] = 64
    #: K values to measure (several = a sweep; the summary names the best to serve with).
    num_speculative_tokens: list[int] = field(default_factory=lambda: [3])
    max_tokens: int = 128
    #: Measure every epoch's checkpoint (each as soon as it is saved, while training runs), not only
    #: checkpoint_best.
    every_epoch: bool = False
    #: checkpoint_best: lowest validation loss, or highest acceptance length (measured by this stage
    #: over every epoch when enabled, else the trainer's replayed validation figure).
    select_best_by: Literal["val_loss", "acceptance_length"] = "val_loss"


@dataclass
class RunSection:
    name: str = "eagle3"
    #: Parent directory of run directories (<dir>/<name>-<timestamp>/).
    dir: str = "./runs"
    #: Allow the server and training to share a GPU (normally an error).
    allow_gpu_sharing: bool = False


@dataclass
class RunConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    hidden_states: HiddenStatesSection = field(default_factory=HiddenStatesSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    run: RunSection = field(default_factory=RunSection)
    cluster: ClusterSection = field(default_factory=ClusterSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)

    # Derived paths -----------------------------------------------------------------------------
    @property
    def storage_dir(self) -> str:
        return self.hidden_states.storage_dir or os.path.join(self.data.output, "hs_scratch")

    @property
    def regenerated_data(self) -> str:
        """The regenerate stage's output (prepare's input when data.regenerate is on)."""
        return self.data.regenerate_output or self.data.output.rstrip("/\\") + "-regenerated.jsonl"

    @property
    def hidden_states_cache(self) -> str:
        return self.training.hidden_states_cache or os.path.join(self.data.output, "hidden_states")

    def copy(self) -> "RunConfig":
        from speculators_core.config.toml_io import from_dict, to_dict

        return from_dict(to_dict(self, include_defaults=True))



SECTIONS: dict[str, type] = {f.name: f.type for f in dataclasses.fields(RunConfig)}  # type: ignore[misc]
_HINTS_CACHE: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS_CACHE:
        _HINTS_CACHE[cls] = typing.get_type_hints(cls)
    return _HINTS_CACHE[cls]


def section_class(name: str) -> type:
    return _hints(RunConfig)[name]

