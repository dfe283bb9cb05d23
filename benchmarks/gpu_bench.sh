#!/usr/bin/env bash
# The first GPU check, in under five minutes: the real trainer path (python -m speculators_core.train,
# FSDP2 under torchrun when NPROC > 1, the prefetcher, noise, an offline cache of random hidden
# states) for the Qwen3-8B-shaped drafter (H=4096, draft vocab 32000, 3 TTT steps) at 8192 tokens
# per row, no download. Prints tokens/s, the data-wait share of step time, peak GPU memory (and the
# memory-fit prediction beside it) and the share of the GPU's bf16 peak FLOP/s; then the bare
# training step (train_bench.py) for comparison.
#   benchmarks/gpu_bench.sh                 (NPROC=2 to train on two GPUs with FSDP2)
#   benchmarks/gpu_bench.sh --small         (a tiny shape on the CPU: checks the script itself)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
if [ "${1:-}" = "--small" ]; then
  timeout 280 "$PY" benchmarks/trainer_bench.py --small --device cpu --nproc "${NPROC:-1}" --steps 6 --warmup 2
  exit 0
fi
NPROC=${NPROC:-1}
if [ -z "${CUDA_VISIBLE_DEVICES:-}" ]; then
  export CUDA_VISIBLE_DEVICES=$(seq -s, 0 $((NPROC - 1)))
fi
export CUDA_DEVICE_ORDER=PCI_BUS_ID
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
timeout 230 "$PY" benchmarks/trainer_bench.py --device cuda --nproc "$NPROC" --total-seq-len 8192 --steps 40 --warmup 8 \
  --timeout 220
timeout 60 "$PY" benchmarks/train_bench.py --size qwen3-8b --device cuda --total-seq-len 8192 --steps 10 --warmup 3 \
  --dtype auto
