"""Plugins loaded INSIDE the vLLM server process (imported by vLLM through kv_connector_module_path).

They import vLLM and torch, so nothing else in speculators_core imports them. The server's python
(often a separate vLLM venv) finds this package through PYTHONPATH, which launch_vllm and
commands.build_stages set to the directory that contains `speculators_core`.
"""
