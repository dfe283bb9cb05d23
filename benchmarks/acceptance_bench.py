"""Acceptance-length benchmark: train a drafter on the tiny target's own greedy continuations
(on-policy data), serve it with real vLLM on CPU, and measure the mean acceptance length with 3
speculative tokens on held-out prompts from vLLM's `/metrics` (1 + accepted / drafts).

    .venv/bin/python benchmarks/acceptance_bench.py [--epochs 6] [--work DIR]

Pipeline (all real processes): transformers greedy generation -> prepared dataset -> `hf` engine
hidden-states server -> `python -m speculators_core.train` (online: --on-missing generate) ->
`vllm serve checkpoint_best` -> completions -> /metrics. A correctly aligned EAGLE-3 drafter
reaches about 1.6-1.7 here; a drafter whose hidden states and targets are misaligned stays far lower.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def demo_prompts() -> list[list[dict]]:
    from speculators_core.paths import resolve_data_source

    out = []
    with open(resolve_data_source("builtin:demo-chat"), encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            turns = row.get("messages") or [{"role": "user" if t.get("from") in ("human", "user") else "assistant",
                                             "content": t.get("value", "")} for t in row.get("conversations", [])]
            first = next((t for t in turns if t.get("role") == "user"), None)
            if first:
                out.append([{"role": "user", "content": first["content"]}])
    return out


def greedy_continuations(model_dir: Path, prompts: list[list[dict]], max_new_tokens: int, batch: int = 128):
    """[(prompt ids, continuation ids)] from the target's own greedy decoding (transformers)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    tok.padding_side = "left"
    out = []
    for i in range(0, len(prompts), batch):
        texts = [tok.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts[i:i + batch]]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        for j in range(len(texts)):
            prompt = enc["input_ids"][j][enc["attention_mask"][j].bool()].tolist()
            cont = gen[j, enc["input_ids"].shape[1]:].tolist()
            if tok.eos_token_id in cont:
                cont = cont[:cont.index(tok.eos_token_id) + 1]
            out.append((prompt, cont))
    return out, tok


def write_prepared(out: Path, pairs) -> Path:
    import torch
    from datasets import Dataset

    ids, masks, freq = [], [], {}
    for p, c in pairs:
        if not c:
            continue
        ids.append(p + c)
        masks.append([0] * len(p) + [1] * len(c))
        for t in c:
            freq[t] = freq.get(t, 0) + 1
    Dataset.from_dict({"input_ids": ids, "loss_mask": masks, "seq_len": [len(x) for x in ids]}).save_to_disk(str(out))
    torch.save(freq, out / "token_freq.pt")
    return out


def _start(argv, log: Path, env=None) -> subprocess.Popen:
    e = dict(os.environ)
    e.update(env or {})
    fh = open(log, "ab")
    try:
        return subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=e, cwd=str(REPO), start_new_session=True)
    finally:
        fh.close()


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever of the group is left."""
    from speculators_core.procs import stop_group

    stop_group(proc.pid, grace=30.0, proc=proc)


def _wait_health(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    from speculators_core.serving.health import wait_or_raise

    wait_or_raise(url, proc, timeout, log, interval=0.5)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_drafter(model_dir: Path, data: Path, work: Path, epochs: int, lr: float, extra=(),
                  threads: str = "1") -> Path:
    storage = work / "hs-files"
    storage.mkdir(exist_ok=True)
    port = _free_port()
    log = work / "hf_server.log"
    server = _start([sys.executable, "-m", "speculators_core.hf_server", str(model_dir), "--port", str(port),
                     "--hidden-states-path", str(storage), "--target-layer-ids", "2", "4", "5", "8", "--device", "cpu"],
                    log, env={"OMP_NUM_THREADS": "1"})
    save = work / "ckpt"
    try:
        _wait_health(f"http://127.0.0.1:{port}/health", server, 180, log)
        cmd = [sys.executable, "-m", "speculators_core.train", "--verifier-name-or-path", str(model_dir),
               "--data-path", str(data), "--save-path", str(save), "--epochs", str(epochs), "--lr", str(lr),
               "--total-seq-len", "2048", "--draft-vocab-size", "1024", "--on-missing", "generate",
               "--on-generate", "cache", "--hidden-states-path", str(work / "hs-cache"),
               "--vllm-endpoint", f"http://127.0.0.1:{port}/v1", "--hidden-states-storage", str(storage),
               "--warmup-ratio", "0.05", *extra]
        with open(work / "train.log", "wb") as fh:
            subprocess.run(cmd, cwd=str(REPO), env=dict(os.environ, OMP_NUM_THREADS=threads), stdout=fh,
                           stderr=subprocess.STDOUT, check=True, start_new_session=True)
    finally:
        _stop(server)
    return save / "checkpoint_best"


def spec_counters(metrics_text: str) -> dict[str, float]:
    from speculators_core.runs.bottleneck import parse_prometheus

    parsed = parse_prometheus(metrics_text)
    return {name: parsed.get(f"vllm:spec_decode_{name}_total", 0.0)
            for name in ("num_drafts", "num_draft_tokens", "num_accepted_tokens")}


def serve_and_measure(ckpt: Path, prompts_text: list[str], work: Path, vllm_python: str, max_tokens: int = 64) -> dict:
    import httpx

    port = _free_port()
    log = work / "vllm.log"
    ckpt = Path(os.path.realpath(ckpt))
    proc = _start([vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(ckpt),
                   "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "1024",
                   "--gpu-memory-utilization", "0.1", "--dtype", "float32", "--enforce-eager", "--max-num-seqs", "8"],
                  log, env={"VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "2"})
    try:
        _wait_health(f"http://127.0.0.1:{port}/health", proc, 600, log)
        base = f"http://127.0.0.1:{port}"
        model = httpx.get(base + "/v1/models", timeout=30).json()["data"][0]["id"]
        before = spec_counters(httpx.get(base + "/metrics", timeout=30).text)
        texts = []
        for p in prompts_text:
            r = httpx.post(base + "/v1/completions", json={"model": model, "prompt": p, "max_tokens": max_tokens,
                                                           "temperature": 0.0}, timeout=300)
            r.raise_for_status()
            texts.append(r.json()["choices"][0]["text"])
        after = spec_counters(httpx.get(base + "/metrics", timeout=30).text)
    finally:
        _stop(proc)
    d = {k: after[k] - before[k] for k in after}
    d["acceptance_length"] = 1.0 + d["num_accepted_tokens"] / d["num_drafts"] if d["num_drafts"] else 0.0
    d["completions"] = len(texts)
    return d


def run(work: Path, epochs: int, lr: float, held_out: int, max_new_tokens: int, vllm_python: str,
        train_prompts: int | None = None) -> dict:
    from speculators_core.builtin import ensure_model

    work.mkdir(parents=True, exist_ok=True)
    model_dir = ensure_model("builtin:tiny-qwen3")
    prompts = demo_prompts()
    train_p, test_p = prompts[:-held_out], prompts[-held_out:]
    if train_prompts:
        train_p = train_p[:train_prompts]
    t0 = time.perf_counter()
    pairs, tok = greedy_continuations(model_dir, train_p, max_new_tokens)
    t_gen = time.perf_counter() - t0
    data = write_prepared(work / "data", pairs)
    t0 = time.perf_counter()
    best = train_drafter(model_dir, data, work, epochs, lr)
    t_train = time.perf_counter() - t0
    vals = [json.loads(l) for l in (work / "ckpt" / "metrics.jsonl").read_text().splitlines()]
    vals = [v for v in vals if v["type"] == "val"]
    test_text = [tok.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in test_p]
    res = serve_and_measure(best, test_text, work, vllm_python, max_new_tokens)
    res.update(train_samples=len(pairs), generate_s=t_gen, train_s=t_train, best=str(os.path.realpath(best)),
               val_full_acc=[round(vals[-1][f"full_acc_{k}"], 3) for k in range(3)] if vals else None,
               val_replayed=vals[-1]["acceptance_length"] if vals else None,
               val_estimate=vals[-1].get("acceptance_length_estimate") if vals else None)
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default=None, help="working directory (default: a temporary one)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--held-out", type=int, default=20)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--vllm-python", default=os.environ.get("SPECULATORS_VLLM_PYTHON")
                   or str(Path.home() / ".cache/speculators-tui/vllm-venv/bin/python"))
    a = p.parse_args()
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="acceptance-bench-"))
    res = run(work, a.epochs, a.lr, a.held_out, a.max_new_tokens, a.vllm_python)
    print(json.dumps(res, indent=2))
    print(f"mean acceptance length (3 speculative tokens, {a.held_out} held-out prompts): "
          f"{res['acceptance_length']:.3f}  (drafts {res['num_drafts']:.0f}, accepted {res['num_accepted_tokens']:.0f}; "
          f"trained {res['train_s']:.0f} s on {res['train_samples']} on-policy samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
