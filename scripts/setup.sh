#!/usr/bin/env bash
# Install speculators-tui into ./.venv (CPU torch unless TORCH_INDEX_URL says otherwise).
#   scripts/setup.sh                      # torch==2.13.0 from your pip configuration
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu scripts/setup.sh   # small CPU-only build
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "error: Python >= 3.10 needed" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    .venv/bin/python -m pip install -q "torch==2.13.0" --index-url "$TORCH_INDEX_URL"
  else
    .venv/bin/python -m pip install -q "torch==2.13.0"
  fi
fi
.venv/bin/python -m pip install -q -e ".[dev]"
echo "installed: $(.venv/bin/speculators-tui --version)"
