"""Is the regenerate client the bottleneck? Generated tokens/s of `python -m speculators_core.regenerate`
against the server's own maximum: the same prompts sent raw (one asyncio loop, the same concurrency,
the same sampling settings) to the same server. Greedy decoding, so both do the same work. Target: the
client reaches >= 90% of the raw figure.

    .venv/bin/python benchmarks/regenerate_bench.py [--endpoint URL] [--samples 64] [--max-tokens 64] \
        [--concurrency 16]

Without --endpoint it starts the built-in hf engine on the tiny target (CPU). The raw run goes first
and again last; the figure is their mean (server warm-up and drift show as a gap between the two).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def first_turn_chats(n: int, seed: int) -> list[list[dict]]:
    """The first user turn of the chats regenerate selects (`--max-samples n --seed seed --turns first`)."""
    from speculators_core.regen.rows import select

    out = []
    for c in select(["builtin:demo-chat"], n, seed).chats:
        msgs = []
        for m in c.messages:
            if m["role"] == "assistant":
                break
            msgs.append({"role": m["role"], "content": m["content"]})
        out.append(msgs)
    return out


async def raw(url: str, prompts: list[list[dict]], max_tokens: int, concurrency: int) -> tuple[int, float]:
    import httpx

    model = httpx.get(url + "/models", timeout=30).json()["data"][0]["id"]
    queue = list(prompts)
    tokens = 0

    async def worker(client):
        nonlocal tokens
        while queue:
            msgs = queue.pop()
            r = await client.post(url + "/chat/completions", json={
                "model": model, "messages": msgs, "max_tokens": max_tokens, "temperature": 0.0, "top_p": 1.0,
                "return_token_ids": True})
            r.raise_for_status()
            tokens += len(r.json()["choices"][0]["token_ids"])

    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=600) as client:
        await asyncio.gather(*[worker(client) for _ in range(concurrency)])
    return tokens, time.perf_counter() - t0


def client(url: str, n: int, max_tokens: int, concurrency: int, work: Path) -> tuple[int, float]:
    out = work / "regenerated.jsonl"
    p = subprocess.run([sys.executable, "-m", "speculators_core.regenerate", "--endpoint", url, "--data",
                        "builtin:demo-chat", "--output", str(out), "--max-samples", str(n), "--max-tokens",
                        str(max_tokens), "--concurrency", str(concurrency), "--turns", "first", "--overwrite",
                        "--progress-every", "3600"], cwd=str(REPO), capture_output=True, text=True, check=True)
    m = re.search(r"rows written to .* in ([0-9.]+) s \((\d+) generated tokens\)", p.stdout)
    if not m:
        raise SystemExit(f"unexpected regenerate output: {p.stdout}\n{p.stderr}")
    return int(m.group(2)), float(m.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", default=None, help="a running server (default: start the hf engine on the tiny target)")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=16)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="regenerate-bench-"))
    server = None
    url = a.endpoint
    if url is None:
        from benchmarks import acceptance_bench as ab
        from speculators_core.builtin import ensure_model

        port = ab._free_port()
        server = ab._start([sys.executable, "-m", "speculators_core.hf_server", str(ensure_model("builtin:tiny-qwen3")),
                            "--port", str(port), "--hidden-states-path", str(work / "hs"), "--device", "cpu",
                            "--dtype", "fp32"], work / "server.log")
        ab._wait_health(f"http://127.0.0.1:{port}/health", server, 180, work / "server.log")
        url = f"http://127.0.0.1:{port}/v1"
    try:
        prompts = first_turn_chats(a.samples, 0)
        t1, s1 = asyncio.run(raw(url, prompts, a.max_tokens, a.concurrency))
        tc, sc = client(url, a.samples, a.max_tokens, a.concurrency, work)
        t2, s2 = asyncio.run(raw(url, prompts, a.max_tokens, a.concurrency))
    finally:
        if server is not None:
            from benchmarks import acceptance_bench as ab

            ab._stop(server)
    raw_tps = (t1 / s1 + t2 / s2) / 2
    res = {"samples": a.samples, "max_tokens": a.max_tokens, "concurrency": a.concurrency,
           "raw_tokens_per_s": [round(t1 / s1, 1), round(t2 / s2, 1)], "client_tokens_per_s": round(tc / sc, 1),
           "client_share_of_raw": round((tc / sc) / raw_tps, 3), "tokens": {"raw": [t1, t2], "client": tc}}
    print(json.dumps(res, indent=2))
    print(f"regenerate client: {tc / sc:.0f} generated tok/s = {100 * res['client_share_of_raw']:.0f}% of the "
          f"server's raw {raw_tps:.0f} tok/s at concurrency {a.concurrency} (target >= 90%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
