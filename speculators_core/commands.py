"""Compatibility names for modules of the stage side (`launch_vllm`, tests/hidden_states) that move
to `speculators_core.serving` with the stage refactor: the vLLM argv now lives in `serving.engines`."""

from speculators_core.serving.engines import (  # noqa: F401
    CPU_CONNECTOR_MODULE, package_root, plugin_pythonpath, vllm_serve_argv,
)
