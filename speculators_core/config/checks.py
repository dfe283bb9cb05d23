"""Validation of a `RunConfig`: every problem at once, each naming the field and its fix."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import typing
from dataclasses import dataclass
from typing import Any, Literal, Optional

from speculators_core.config import safety
from speculators_core.config.schema import ENGINES, MODES, HiddenStatesSection, RunConfig
from speculators_core.hidden_states.layers import default_layer_ids, layer_id_issues, suggest_layer_ids  # noqa: F401
from speculators_core.serving.engines import ENGINES as ENGINE_REGISTRY


#: The server ports the configuration accepts (the message says this same rule).
PORT_MIN, PORT_MAX = 1024, 65535


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration: the dotted field, what is wrong, and how to fix it."""

    field: str
    message: str
    fix: str = ""
    severity: Literal["error", "warning"] = "error"
    #: `file:line` of the key when the configuration came from a TOML file ("" otherwise).
    where: str = ""
    #: A check of this machine's files (e.g. a data path): it blocks a run started here, but a
    #: script exported to run elsewhere only gets a warning (`for_export`).
    local: bool = False

    def __str__(self) -> str:
        text = f"{self.where + ': ' if self.where else ''}{self.field}: {self.message}"
        return f"{text} (fix: {self.fix})" if self.fix else text


def layer_id_problems(ids: list[int], num_layers: Optional[int], fld: str) -> list[Problem]:
    """The layer-id rules of `speculators_core.hidden_states.layers`, as `Problem`s of field `fld`."""
    return [Problem(fld, msg, fix) for msg, fix in layer_id_issues(list(ids), num_layers)]


def _executable(path: str) -> bool:
    import shutil

    if os.sep in path:
        return os.path.isfile(path) and os.access(path, os.X_OK)
    return shutil.which(path) is not None


@functools.lru_cache(maxsize=None)
def _vllm_importable_here() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("vllm") is not None  # a path search: vLLM is not imported
    except (ImportError, ValueError):
        return False


def server_python_problems(hs: HiddenStatesSection) -> list[Problem]:
    """Warnings (not errors: an exported script may run on another machine) when the server's Python
    cannot work here: a `hidden_states.python` that is not an executable, or the vLLM engine with no
    `python` set while this interpreter has no vllm package."""
    if hs.python:
        if not _executable(hs.python):
            return [Problem("hidden_states.python", f"{hs.python!r} is not an executable on this machine",
                            "give the python of the environment that has vLLM, e.g. /path/to/venv/bin/python",
                            "warning")]
        return []
    engine = ENGINE_REGISTRY.get(hs.engine)
    if engine is not None and engine.needs_vllm and not _vllm_importable_here():
        return [Problem("hidden_states.python", "empty, and this Python has no vllm for the server",
                        "the python of a vLLM environment, or pip install vllm", "warning")]
    return []


def resolved_layer_ids(cfg: RunConfig, num_layers: Optional[int]) -> Optional[list[int]]:
    if cfg.hidden_states.target_layer_ids:
        return list(cfg.hidden_states.target_layer_ids)
    if num_layers is None:
        return None
    return default_layer_ids(num_layers)


def validate(cfg: RunConfig, target: Optional["TargetInfo"] = None,
             gpu_memory: Optional[typing.Mapping[int, int]] = None) -> list[Problem]:
    """All problems of `cfg`. Checks that need the target's config.json use `target` when given;
    `gpu_memory` (GPU index -> bytes, from NVML or declared hardware) adds the memory-fit check."""
    P: list[Problem] = []
    m, d, hs, t, r = cfg.model, cfg.data, cfg.hidden_states, cfg.training, cfg.run

    if not m.target.strip():
        P.append(Problem("model.target", "no target model given", "set a HF model id or a local directory"))

    if not d.sources:
        P.append(Problem("data.sources", "no data source given", "add 'sharegpt', 'ultrachat' or a .jsonl path"))
    for i, src in enumerate(d.sources):
        if src in ("sharegpt", "ultrachat") or src.startswith("builtin:"):
            continue
        if src.startswith(("hf:", "http")):
            continue
        if not os.path.exists(os.path.expanduser(src)):
            P.append(Problem(f"data.sources[{i}]", f"{src!r} is neither a built-in source nor an existing file",
                             "use 'sharegpt', 'ultrachat', or the path of a .json/.jsonl file or directory",
                             local=True))
    if not d.output.strip():
        P.append(Problem("data.output", "empty output directory", "set a directory, e.g. './output'"))

    def positive(fld: str, value: Any, allow_none: bool = False) -> None:
        if value is None and allow_none:
            return
        if safety.non_finite(value):
            return  # number_problems says it once
        if value is None or value <= 0:
            P.append(Problem(fld, f"must be positive, got {value}", "use a number greater than 0"))

    positive("data.max_samples", d.max_samples, allow_none=True)
    positive("data.seq_length", d.seq_length)
    if d.seq_length == 1:  # prepare's own minimum (a sample needs an input and a next token)
        P.append(Problem("data.seq_length", "1 is too short: prepare needs at least 2 tokens per sample",
                         "use at least 2 (e.g. 1024)"))
    positive("data.minimum_valid_tokens", d.minimum_valid_tokens, allow_none=True)
    positive("data.num_preprocessing_workers", d.num_preprocessing_workers)
    if not safety.non_finite(hs.port) and not (PORT_MIN <= hs.port <= PORT_MAX):
        # One rule, one message: privileged ports (< 1024) need root, beyond 65535 is no port.
        why = "is not a TCP port" if hs.port > PORT_MAX or hs.port <= 0 else "is a privileged port (needs root)"
        P.append(Problem("hidden_states.port", f"{hs.port} {why}", f"use a port in {PORT_MIN}..{PORT_MAX}, e.g. 8000"))
    positive("hidden_states.data_parallel_size", hs.data_parallel_size)
    positive("hidden_states.tensor_parallel_size", hs.tensor_parallel_size)
    positive("hidden_states.max_model_len", hs.max_model_len, allow_none=True)
    positive("hidden_states.start_timeout", hs.start_timeout)
    if not (0 < hs.gpu_memory_utilization <= 1):
        P.append(Problem("hidden_states.gpu_memory_utilization", f"must be in (0, 1], got {hs.gpu_memory_utilization}",
                         "use e.g. 0.9"))
    for fld in ("cpu_processes", "draft_vocab_size", "epochs", "lr", "total_seq_len", "num_layers", "ttt_steps",
                "max_in_flight", "max_files_on_disk"):
        positive(f"training.{fld}", getattr(t, fld))
    if not (0 <= t.val_split < 1):
        P.append(Problem("training.val_split", f"must be in [0, 1), got {t.val_split}", "use e.g. 0.1"))
    if not (0 <= t.warmup_ratio < 1):
        P.append(Problem("training.warmup_ratio", f"must be in [0, 1), got {t.warmup_ratio}", "use e.g. 0.01"))
    for fld in ("weight_decay", "grad_clip", "noise"):
        if getattr(t, fld) < 0:
            P.append(Problem(f"training.{fld}", f"must not be negative, got {getattr(t, fld)}", "use 0 or more"))
    if t.mode not in MODES:
        P.append(Problem("training.mode", f"unknown mode {t.mode!r}", "use online, hybrid or offline"))
    if hs.engine not in ENGINES:
        P.append(Problem("hidden_states.engine", f"unknown engine {hs.engine!r}", "use vllm or hf"))
    P.extend(server_python_problems(hs))
    if not r.name or not re.fullmatch(r"[A-Za-z0-9._-]+", r.name):
        P.append(Problem("run.name", f"{r.name!r} is not a usable directory name", "use letters, digits, '.', '_', '-'"))

    # GPUs.
    for fld, gpus in (("hidden_states.gpus", hs.gpus), ("training.gpus", t.gpus)):
        if len(set(gpus)) != len(gpus):
            P.append(Problem(fld, f"GPU listed twice in {gpus}", f"use {sorted(set(gpus))}"))
        if any(g < 0 for g in gpus):
            P.append(Problem(fld, f"GPU indices must be >= 0, got {gpus}", "use indices from `speculators-tui gpus`"))
    shared = sorted(set(hs.gpus) & set(t.gpus))
    if shared and not r.allow_gpu_sharing and not cfg.cluster.serving_nodes:  # else: other nodes
        P.append(Problem("training.gpus",
                         f"GPU(s) {shared} are assigned to both the hidden-states server and training",
                         "give each GPU one role, or set run.allow_gpu_sharing = true"))
    engine = ENGINE_REGISTRY.get(hs.engine)
    if engine is not None and engine.max_gpus is None and hs.gpus and hs.tensor_parallel_size > 0 \
            and hs.data_parallel_size > 0:
        if hs.data_parallel_size * hs.tensor_parallel_size != len(hs.gpus):
            P.append(Problem("hidden_states.data_parallel_size",
                             f"data parallel {hs.data_parallel_size} x tensor parallel {hs.tensor_parallel_size} = "
                             f"{hs.data_parallel_size * hs.tensor_parallel_size}, but {len(hs.gpus)} server GPU(s) "
                             f"are assigned ({hs.gpus})",
                             f"set data_parallel_size = {max(1, len(hs.gpus) // hs.tensor_parallel_size)} or assign "
                             f"{hs.data_parallel_size * hs.tensor_parallel_size} GPUs"))
    if engine is not None and engine.max_gpus is not None and len(hs.gpus) > engine.max_gpus:
        P.append(Problem("hidden_states.gpus", f"the {engine.label} uses at most one GPU",
                         "assign one GPU, or use engine = 'vllm' for several"))
    if t.mode in ("hybrid", "offline") and not cfg.hidden_states_cache:
        P.append(Problem("training.hidden_states_cache", f"mode {t.mode} needs a cache directory", "set a directory"))

    # Checks that need the target's config.json.
    num_layers = target.num_hidden_layers if target else None
    ids = resolved_layer_ids(cfg, num_layers)
    if hs.target_layer_ids is not None or ids is not None:
        P.extend(layer_id_problems(ids or [], num_layers, "hidden_states.target_layer_ids"))
    if target is not None:
        if target.vocab_size and t.draft_vocab_size > target.vocab_size:
            P.append(Problem("training.draft_vocab_size",
                             f"{t.draft_vocab_size} is larger than the target's vocabulary ({target.vocab_size})",
                             f"use at most {target.vocab_size}"))
        if hs.max_model_len and hs.max_model_len < d.seq_length + 1:  # the prompt + the one token generated
            P.append(Problem("hidden_states.max_model_len",
                             f"{hs.max_model_len} is shorter than data.seq_length {d.seq_length} + 1 (a request is "
                             f"the sample and one generated token); long samples would be rejected",
                             f"set max_model_len >= {d.seq_length + 1}", "warning"))
    if t.total_seq_len < d.seq_length:
        P.append(Problem("training.total_seq_len",
                         f"{t.total_seq_len} is shorter than data.seq_length {d.seq_length}; longer samples are cut",
                         f"set total_seq_len >= {d.seq_length}", "warning"))
    P += evaluation_problems(cfg)
    P += safety.number_problems(cfg) + safety.layout_problems(cfg) + safety.env_problems(cfg)
    from speculators_core.config.cluster import cluster_problems

    P += cluster_problems(cfg)

    from speculators_core.config.regenerate_checks import regenerate_problems

    P += regenerate_problems(cfg, Problem)

    if target is not None and gpu_memory:
        from speculators_core.config.memory_checks import memory_problems

        P += memory_problems(cfg, target, gpu_memory)
    # A NaN/inf field gets one problem (not finite), not also the range checks it slips through.
    bad = {p.field for p in P if "not a finite number" in p.message}
    P = [p for p in P if p.field not in bad or "not a finite number" in p.message]
    return located(cfg, P)


def evaluation_problems(cfg: RunConfig) -> list[Problem]:
    """The [evaluation] section (checked only when it is enabled, except select_best_by)."""
    e, P = cfg.evaluation, []
    if e.select_best_by not in ("val_loss", "acceptance_length"):
        P.append(Problem("evaluation.select_best_by", f"unknown value {e.select_best_by!r}",
                         "use val_loss or acceptance_length"))
    if not e.enabled:
        return P
    if e.engine not in ("vllm", "hf"):
        P.append(Problem("evaluation.engine", f"unknown engine {e.engine!r}", "use vllm or hf"))
    if not e.num_speculative_tokens or any(k < 1 for k in e.num_speculative_tokens):
        P.append(Problem("evaluation.num_speculative_tokens", f"needs K values of 1 or more, got {e.num_speculative_tokens}",
                         "use e.g. [3], or [1, 2, 3, 4] for a sweep"))
    if e.max_tokens < 1:
        P.append(Problem("evaluation.max_tokens", f"must be positive, got {e.max_tokens}", "use e.g. 128"))
    if e.num_prompts is not None and e.num_prompts < 1:
        P.append(Problem("evaluation.num_prompts", f"must be positive, got {e.num_prompts}", "use e.g. 64"))
    if e.prompts and not os.path.exists(os.path.expanduser(e.prompts)):
        P.append(Problem("evaluation.prompts", f"{e.prompts!r} does not exist",
                         "give a .jsonl of prompt_ids or chat rows, or leave it empty for the held-out split"))
    if e.engine == "vllm" and cfg.hidden_states.engine != "vllm" and not cfg.hidden_states.python:
        P.append(Problem("evaluation.engine", "vllm needs a vLLM python (hidden_states.python is empty)",
                         "set hidden_states.python to the vLLM venv's python, or use engine = \"hf\"", "warning"))
    return P


def located(cfg: RunConfig, problems: list[Problem]) -> list[Problem]:
    """Each problem with the file:line of its key when `cfg` was read from a TOML file."""
    origin = getattr(cfg, "_origin", None)
    if origin is None:
        return problems
    from speculators_core.config.toml_io import locate

    source, text = origin
    return [p if p.where else dataclasses.replace(p, where=locate(source, text, p.field)) for p in problems]


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def for_export(problems: list[Problem]) -> list[Problem]:
    """The problems as they stand for a script exported to run on another machine: checks of this
    machine's files (`local`) become warnings that say so."""
    return [dataclasses.replace(p, severity="warning", message=p.message + " on this machine (fine if it exists "
                                "where the exported script runs)") if p.local and p.severity == "error" else p
            for p in problems]


if typing.TYPE_CHECKING:  # pragma: no cover
    from speculators_core.target import TargetInfo
