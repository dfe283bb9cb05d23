"""The hidden-states engines, by name: each builds its own server command line.

Adding an engine is one `Engine` subclass in `ENGINES`, not an `if engine == ...` in the planner,
the validation and the app. The planner adds CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS and the user's
`hidden_states.env` around `ServerLaunch.env`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

from speculators_core.plan.flags import num  # argv numbers as the planner writes them
from speculators_core.serving import vllm


@dataclass(frozen=True)
class ServerRequest:
    """What a planned run asks of its hidden-states server (resolved: model path, layer ids, dirs)."""

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
    #: NAME of the environment variable that holds the servers' API key ("" = no key). The hf engine
    #: gets `--api-key-env NAME`; vLLM reads VLLM_API_KEY, which the planner sets from NAME's value.
    api_key_env: str = ""


@dataclass(frozen=True)
class ServerLaunch:
    argv: list[str]
    #: Variables this engine adds to the server's environment (not the planner's GPU/thread settings).
    env: dict[str, str]
    description: str


def _where(gpus: list[int]) -> str:
    return "GPU " + ",".join(map(str, gpus)) if gpus else "CPU"


class Engine:
    name: str = ""
    label: str = ""
    #: The most GPUs one server of this engine uses (None = no limit).
    max_gpus: Optional[int] = None
    #: The server's python must import vllm.
    needs_vllm: bool = False

    def launch(self, req: ServerRequest) -> ServerLaunch:  # pragma: no cover - abstract
        raise NotImplementedError


class HfEngine(Engine):
    """The built-in transformers server (`python -m speculators_core.hf_server`): one device."""

    name, label, max_gpus, needs_vllm = "hf", "built-in hf engine", 1, False

    def launch(self, req: ServerRequest) -> ServerLaunch:
        argv = [req.python, "-m", "speculators_core.hf_server", req.model,
                "--host", req.host, "--port", str(req.port),
                "--hidden-states-path", req.storage_dir,
                "--target-layer-ids", *[str(i) for i in req.layer_ids]]
        # Flags whose value differs from hf_server's defaults (device auto, dtype auto, no length cap).
        device = req.device if req.gpus or req.device != "auto" else "cpu"
        if device != "auto":
            argv += ["--device", device]
        if req.dtype != "auto":
            argv += ["--dtype", req.dtype]
        if req.max_model_len is not None:
            argv += ["--max-model-len", num(req.max_model_len)]
        if req.trust_remote_code:
            argv.append("--trust-remote-code")
        if req.api_key_env:
            argv += ["--api-key-env", req.api_key_env]  # the name only: the key never goes on argv
        argv += list(req.extra_args)
        where = "GPU " + str(req.gpus[0]) if req.gpus else "CPU"
        return ServerLaunch(argv, {}, f"built-in hf hidden-states server on {where}")


class VllmEngine(Engine):
    """vLLM's OpenAI server with hidden-states extraction; data x tensor parallel over its GPUs."""

    name, label, max_gpus, needs_vllm = "vllm", "vLLM", None, True

    def launch(self, req: ServerRequest) -> ServerLaunch:
        args: list[str] = []
        if req.data_parallel_size != 1:
            args += ["--data-parallel-size", str(req.data_parallel_size)]
        if req.tensor_parallel_size != 1:
            args += ["--tensor-parallel-size", str(req.tensor_parallel_size)]
        args += ["--gpu-memory-utilization", num(req.gpu_memory_utilization)]
        if req.max_model_len:
            args += ["--max-model-len", str(req.max_model_len)]
        on_gpu = bool(req.gpus)
        connector = vllm.choose_connector(req.connector, on_gpu)
        env: dict[str, str] = {}
        if not on_gpu:
            env["VLLM_CPU_KVCACHE_SPACE"] = vllm.CPU_KVCACHE_SPACE
            # On CPU, graph compilation costs ~2 minutes at every cold start for no gain on small targets.
            if not any(a.split("=", 1)[0] in ("--enforce-eager", "--no-enforce-eager") for a in req.extra_args):
                args.append("--enforce-eager")
        if connector == "cpu":  # the server's python (often another venv) must import our plugin
            env["PYTHONPATH"] = vllm.plugin_pythonpath(req.environ)
        argv = vllm.vllm_serve_argv(req.python, req.model, req.layer_ids, req.storage_dir, connector, req.host,
                                    req.port, args + list(req.extra_args), trust_remote_code=req.trust_remote_code)
        return ServerLaunch(argv, env, f"vLLM hidden-states server on {_where(req.gpus)}")


ENGINES: dict[str, Engine] = {e.name: e for e in (VllmEngine(), HfEngine())}


def get_engine(name: str) -> Engine:
    try:
        return ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown hidden-states engine {name!r}; use one of: {', '.join(ENGINES)}") from None
