#!/usr/bin/env bash
# EAGLE-3 drafter training pipeline for builtin:tiny-qwen3, exported by speculators-tui from /home/user/speculators-tui/speculators_core/presets/tiny-cpu-demo.toml.
# Every stage is a plain CLI; run this script from the directory the relative paths refer to.
set -euo pipefail

# assets: build the embedded demo target builtin:tiny-qwen3 (offline, once)
/home/user/speculators-tui/.venv/bin/python3 \
  -m speculators_core.demo \
  --model-dir /home/user/.cache/speculators-tui/models/tiny-qwen3

# prepare: tokenise chat data, build loss masks and token_freq.pt
CUDA_VISIBLE_DEVICES='' /home/user/speculators-tui/.venv/bin/python3 \
  -m speculators_core.prepare \
  --model /home/user/.cache/speculators-tui/models/tiny-qwen3 \
  --data /home/user/speculators-tui/speculators_core/assets/demo_chat.jsonl \
  --output /home/user/demo/speculators-demo/data \
  --seq-length 1024 \
  --num-preprocessing-workers 2

# server: built-in hf hidden-states server on CPU
mkdir -p /home/user/demo/speculators-demo/data/hs_scratch
CUDA_VISIBLE_DEVICES='' /home/user/speculators-tui/.venv/bin/python3 \
  -m speculators_core.hf_server /home/user/.cache/speculators-tui/models/tiny-qwen3 \
  --host 127.0.0.1 \
  --port 18080 \
  --hidden-states-path /home/user/demo/speculators-demo/data/hs_scratch \
  --target-layer-ids 2 4 5 8 \
  --device cpu &
SERVER_PID=$!
stop_server() {
  if [ -n "${SERVER_PID:-}" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}
trap stop_server EXIT INT TERM
echo 'Waiting for the hidden-states server at http://127.0.0.1:18080/health ...'
/home/user/speculators-tui/.venv/bin/python3 -m speculators_core.wait_health http://127.0.0.1:18080/health --timeout 900 --pid "$SERVER_PID"

# train: train the EAGLE-3 drafter (1 process, CPU, online)
CUDA_VISIBLE_DEVICES='' OMP_NUM_THREADS=2 /home/user/speculators-tui/.venv/bin/python3 \
  -m speculators_core.train \
  --verifier-name-or-path /home/user/.cache/speculators-tui/models/tiny-qwen3 \
  --data-path /home/user/demo/speculators-demo/data \
  --vllm-endpoint http://127.0.0.1:18080/v1 \
  --save-path /home/user/demo/speculators-demo/checkpoints \
  --draft-vocab-size 1024 \
  --epochs 3 \
  --lr 3e-4 \
  --total-seq-len 2048 \
  --on-missing generate \
  --on-generate delete \
  --target-layer-ids 2 4 5 8 \
  --resume \
  --run-dir /home/user/demo/speculators-demo/runs/tiny-cpu-demo-20261129-184310 \
  --hidden-states-storage /home/user/demo/speculators-demo/data/hs_scratch \
  --max-in-flight 4 \
  --device cpu

stop_server
echo 'Done. Serve the best drafter with: vllm serve /home/user/demo/speculators-demo/checkpoints/checkpoint_best'
