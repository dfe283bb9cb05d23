"""Hidden-states client throughput against the built-in `hf` engine (or any running server).

    .venv/bin/python benchmarks/client_bench.py [--samples 64] [--tokens 256] [--in-flight 1 4 16]
        [--model DIR|builtin:tiny-qwen3] [--endpoint URL --storage DIR]

Starts `python -m speculators_core.hf_server` on the model (default: the embedded tiny target) in
its own process group, then for each in-flight level fetches --samples random samples of --tokens
tokens through HiddenStatesClient (delete mode) and prints samples/s, MB/s, mean latency and queue
wait, and how much of the server's capacity the client used: the share of wall time the server's
forward worker was busy (`speculators:busy_seconds_total` on /metrics; hf engine only), and the
server's capacity in samples per busy second. Always stops the server it started.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from speculators_core.hidden_states import HiddenStatesClient  # noqa: E402


def metric(base: str, name: str) -> float | None:
    try:
        text = httpx.get(base + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    vals = [float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)]
    return sum(vals) if vals else None


def start_hf(model: str, storage: str, port: int, threads: int) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.Popen([sys.executable, "-m", "speculators_core.hf_server", model, "--port", str(port),
                             "--hidden-states-path", storage], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"hf_server exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop(proc)
    raise SystemExit("hf_server did not become healthy in 300 s")


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


async def level(url: str, storage: str, samples: list[list[int]], in_flight: int) -> dict:
    base = url.rsplit("/v1", 1)[0]
    busy0 = metric(base, "speculators:busy_seconds_total")
    async with HiddenStatesClient([url], storage, max_in_flight=in_flight, max_files_on_disk=in_flight * 2) as c:
        await c.fetch(-1, samples[0])  # connection + model id warm-up
        c.stats()
        t0 = time.monotonic()
        await asyncio.gather(*(c.fetch(i, s) for i, s in enumerate(samples)))
        wall = time.monotonic() - t0
        st = c.stats()
    busy1 = metric(base, "speculators:busy_seconds_total")
    busy = (busy1 - busy0) if busy0 is not None and busy1 is not None else None
    return {"in_flight": in_flight, "samples_s": len(samples) / wall, "mb_s": st["hs_mb"] / wall,
            "latency_s": st["hs_latency_s"], "queue_s": st["hs_queue_wait_s"], "wall": wall,
            "util": None if busy is None else busy / wall,
            "capacity": None if not busy else len(samples) / busy}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="builtin:tiny-qwen3")
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--in-flight", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--server-threads", type=int, default=1, help="OMP_NUM_THREADS of the hf server")
    p.add_argument("--endpoint", default=None, help="use this running server instead (with --storage)")
    p.add_argument("--storage", default=None, help="the running server's --hidden-states-path")
    a = p.parse_args()
    import random

    rng = random.Random(0)
    samples = [[rng.randrange(3, 2000) for _ in range(a.tokens)] for _ in range(a.samples)]
    proc = None
    tmp = tempfile.TemporaryDirectory(prefix="client-bench-")
    try:
        if a.endpoint:
            if not a.storage:
                p.error("--endpoint needs --storage (the server's --hidden-states-path)")
            url, storage = a.endpoint, a.storage
        else:
            import socket

            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            storage = os.path.join(tmp.name, "hs")
            proc = start_hf(a.model, storage, port, a.server_threads)
            url = f"http://127.0.0.1:{port}/v1"
        print(f"client_bench: {a.samples} samples x {a.tokens} tokens against {url} "
              f"({'hf engine, ' + str(a.server_threads) + ' thread(s)' if proc else 'external server'}), delete mode")
        print(f"{'in-flight':>9} {'samples/s':>10} {'MB/s':>8} {'latency s':>10} {'queue s':>8} "
              f"{'server busy':>11} {'capacity/s':>10}")
        for n in a.in_flight:
            r = asyncio.run(level(url, storage, samples, n))
            util = "n/a" if r["util"] is None else f"{100 * min(r['util'], 1.0):.0f}%"
            cap = "n/a" if r["capacity"] is None else f"{r['capacity']:.1f}"
            print(f"{n:>9} {r['samples_s']:>10.1f} {r['mb_s']:>8.1f} {r['latency_s']:>10.3f} {r['queue_s']:>8.3f} "
                  f"{util:>11} {cap:>10}", flush=True)
        left = os.listdir(storage) if os.path.isdir(storage) else []
        print(f"client_bench: files left in the storage dir: {len(left)}")
    finally:
        if proc is not None:
            stop(proc)
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
