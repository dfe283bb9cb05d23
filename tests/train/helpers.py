"""Test helpers for the trainer: fill a hidden-states cache with a transformers forward of the tiny
target (the same tensors the hf engine / vLLM extract: HF hidden_states[k] for aux ids, the last
decoder layer's output before the final norm for id L), and small prepared datasets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


def fill_cache(model_dir: Path, data_dir: Path, cache_dir: Path, layer_ids=(2, 4, 5, 8), rows=None) -> int:
    from datasets import load_from_disk
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    from speculators_core.hidden_states import cache_path

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    L = model.config.num_hidden_layers
    captured = {}
    hook = model.model.layers[L - 1].register_forward_hook(
        lambda m, i, o: captured.__setitem__("last", o[0] if isinstance(o, tuple) else o))
    ds = load_from_disk(str(data_dir))
    n = 0
    try:
        for r in (rows if rows is not None else range(len(ds))):
            ids = torch.tensor(ds[int(r)]["input_ids"])[None]
            with torch.no_grad():
                out = model(ids, output_hidden_states=True)
            layers = [out.hidden_states[k][0] if k < L else captured["last"].reshape(ids.shape[1], -1)
                      for k in layer_ids]
            save_file({"hidden_states": torch.stack(layers, dim=1).contiguous(), "token_ids": ids[0].clone()},
                      str(cache_path(cache_dir, r)))
            n += 1
    finally:
        hook.remove()
    return n


def make_prepared(out: Path, rows: list[list[int]], masks: list[list[int]] | None = None,
                  token_freq: dict[int, int] | None = None) -> Path:
    from datasets import Dataset

    masks = masks or [[1] * len(r) for r in rows]
    Dataset.from_dict({"input_ids": rows, "loss_mask": masks, "seq_len": [len(r) for r in rows]}).save_to_disk(str(out))
    if token_freq is None:
        token_freq = {}
        for r, m in zip(rows, masks):
            for t, k in zip(r, m):
                if k:
                    token_freq[t] = token_freq.get(t, 0) + 1
    torch.save(token_freq, Path(out) / "token_freq.pt")
    return Path(out)


def train_argv(model: Path, data: Path, save: Path, *extra: str) -> list[str]:
    return ["--verifier-name-or-path", str(model), "--data-path", str(data), "--save-path", str(save), *extra]


def run_train(argv: list[str], nproc: int = 1, timeout: float = 600, env: dict | None = None,
              check: bool = True) -> subprocess.CompletedProcess:
    from tests.vllm_fixtures import thread_counts

    full_env = dict(os.environ, OMP_NUM_THREADS=str(thread_counts(nproc).train), TOKENIZERS_PARALLELISM="false")
    full_env.update(env or {})
    if nproc == 1:
        cmd = [sys.executable, "-m", "speculators_core.train", *argv]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "speculators_core.train", *argv]
    proc = subprocess.run(cmd, cwd=str(REPO), env=full_env, capture_output=True, text=True, timeout=timeout,
                          start_new_session=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"trainer failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def read_metrics(run_dir: Path) -> list[dict]:
    p = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
