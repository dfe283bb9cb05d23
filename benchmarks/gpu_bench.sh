#!/usr/bin/env bash
# Drafter training throughput on one GPU, in well under five minutes: a Qwen3-8B-sized drafter
# (H=4096, draft vocab 32000) on synthetic hidden states, 8192-token packed rows, 3 TTT steps.
# Prints tokens/s, peak GPU memory, model FLOPs per token and the fraction of the GPU's bf16 peak.
#   benchmarks/gpu_bench.sh            (uses .venv/bin/python when present, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
timeout 280 "$PY" benchmarks/train_bench.py --size qwen3-8b --device cuda --total-seq-len 8192 --steps 20 --warmup 3 --dtype auto
timeout 120 "$PY" benchmarks/train_bench.py --size qwen3-8b --device cuda --total-seq-len 4096 --steps 10 --warmup 2 --json --dtype auto
