"""The `vllm` engine: serve the drafter with `vllm serve CKPT` (vLLM reads the verifier from the
checkpoint's config), send the prompts concurrently, and read vLLM's own spec-decode counters from
`/metrics` before and after (vllm:spec_decode_num_drafts_total, ..._num_draft_tokens_total,
..._num_accepted_tokens_total, ..._num_accepted_tokens_per_pos_total{position="k"}). `--endpoint`
uses a vLLM that already serves the drafter; `--baseline` also serves the target alone."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from speculators_core.errors import SpeculatorsError

_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_POS = re.compile(r'position="(\d+)"')


class VllmEvalError(SpeculatorsError, RuntimeError):
    """vLLM could not be started or answered badly."""


@dataclass
class SpecCounters:
    num_drafts: float = 0.0
    num_draft_tokens: float = 0.0
    num_accepted_tokens: float = 0.0
    accepted_per_pos: dict[int, float] = field(default_factory=dict)

    def minus(self, other: "SpecCounters") -> "SpecCounters":
        keys = set(self.accepted_per_pos) | set(other.accepted_per_pos)
        return SpecCounters(self.num_drafts - other.num_drafts, self.num_draft_tokens - other.num_draft_tokens,
                            self.num_accepted_tokens - other.num_accepted_tokens,
                            {k: self.accepted_per_pos.get(k, 0.0) - other.accepted_per_pos.get(k, 0.0) for k in keys})


def parse_spec_counters(text: str) -> SpecCounters:
    """vLLM's spec-decode counters from a Prometheus /metrics page (summed over engines)."""
    c = SpecCounters()
    for line in text.splitlines():
        m = _SAMPLE.match(line.strip())
        if not m or line.startswith("#"):
            continue
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        try:
            v = float(value)
        except ValueError:
            continue
        if name == "vllm:spec_decode_num_drafts_total":
            c.num_drafts += v
        elif name == "vllm:spec_decode_num_draft_tokens_total":
            c.num_draft_tokens += v
        elif name == "vllm:spec_decode_num_accepted_tokens_total":
            c.num_accepted_tokens += v
        elif name == "vllm:spec_decode_num_accepted_tokens_per_pos_total":
            pm = _POS.search(labels)
            if pm:
                k = int(pm.group(1))
                c.accepted_per_pos[k] = c.accepted_per_pos.get(k, 0.0) + v
    return c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VllmServer:
    """`vllm serve MODEL` in its own process group on 127.0.0.1; a context manager that stops it."""

    def __init__(self, python: str, model: Path, log: Path, num_speculative_tokens: Optional[int] = None,
                 max_model_len: Optional[int] = None, extra: tuple = (), timeout: float = 900.0) -> None:
        self.port = free_port()
        argv = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
                "--host", "127.0.0.1", "--port", str(self.port)]
        if num_speculative_tokens is not None:
            argv += ["--speculative-config", json.dumps({"num_speculative_tokens": num_speculative_tokens})]
        if max_model_len and "--max-model-len" not in " ".join(extra):
            argv += ["--max-model-len", str(max_model_len)]
        argv += list(extra)
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        self.argv, self.log, self.timeout = argv, Path(log), timeout
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "VllmServer":
        from speculators_core.serving.health import wait_or_raise

        try:
            wait_or_raise(self.url + "/health", self.proc, self.timeout, self.log)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        from speculators_core.procs import stop_group

        stop_group(self.proc.pid, grace=30.0, proc=self.proc)


def _model_id(client, url: str) -> str:
    r = client.get(url + "/v1/models", timeout=60)
    r.raise_for_status()
    return r.json()["data"][0]["id"]


def run_prompts(url: str, prompts: list[list[int]], max_tokens: int, temperature: float,
                concurrency: int = 16) -> tuple[SpecCounters, int, float]:
    """(counter delta, output tokens, seconds): every prompt once, `concurrency` at a time."""
    import httpx

    url = url.rstrip("/")
    if url.endswith("/v1"):
        url = url[:-3]
    with httpx.Client(timeout=600) as client:
        try:
            model = _model_id(client, url)
            before = parse_spec_counters(client.get(url + "/metrics", timeout=60).text)
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            raise VllmEvalError(f"{url}: not a vLLM OpenAI server with /v1/models and /metrics ({exc})",
                                fix="pass --endpoint the base URL of a running `vllm serve` (http://HOST:PORT)") from None

        def one(p: list[int]) -> int:
            r = client.post(url + "/v1/completions", json={"model": model, "prompt": p, "max_tokens": max_tokens,
                                                           "temperature": temperature})
            if r.status_code != 200:
                raise VllmEvalError(f"{url}/v1/completions answered {r.status_code}: {r.text[:300]}")
            return int(r.json()["usage"]["completion_tokens"])

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(prompts)))) as ex:
            tokens = sum(ex.map(one, prompts))
        seconds = time.perf_counter() - t0
        after = parse_spec_counters(client.get(url + "/metrics", timeout=60).text)
    return after.minus(before), tokens, seconds
