"""The hf engine's text generation: continuous batching of concurrent requests with a KV cache.

One thread runs the decode loop. Each iteration it admits waiting requests (a prefill of each
alone, so a prompt's first token does not depend on its neighbours), then runs ONE batched decode
step for every running sequence, samples each sequence's next token with its own settings (greedy
at temperature 0; temperature, top-k, top-p and a per-request seed otherwise), and retires the
sequences that stopped (an end-of-sequence id, a stop id, max_tokens, the context limit). A request
that arrives while others decode joins at the next step instead of waiting for the batch to finish.

The batch keeps one key/value tensor per layer, left-padded to the longest sequence (its attention
mask hides the padding; positions are each sequence's own), and is re-packed only when a sequence
joins or leaves. The model is shared with hidden-states extraction under its lock, one forward at
a time.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

from speculators_core.serving.hf.batcher import Metrics

#: Sequences decoded together at most (--max-num-seqs).
DEFAULT_MAX_NUM_SEQS = 64


@dataclass
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 or -1 = off
    seed: Optional[int] = None
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False


@dataclass
class GenRequest:
    prompt: list[int]
    params: SamplingParams
    output: list[int] = field(default_factory=list)
    finish_reason: Optional[str] = None  # "stop" | "length"
    stop_reason: Optional[int] = None  # the stop id that ended it (vLLM: None for an EOS)
    error: Optional[str] = None
    code: int = 500
    done: threading.Event = field(default_factory=threading.Event)
    generator: Any = None


class _Batch:
    """The running sequences' KV cache: per layer [B, kv_heads, T, head_dim], left-padded."""

    def __init__(self) -> None:
        self.reqs: list[GenRequest] = []
        self.keys: list[Any] = []
        self.values: list[Any] = []
        self.pad: list[int] = []  # left padding of each row
        #: The model's cache object over keys/values, reused from step to step; rebuilt after a re-pack.
        self.cache: Any = None

    @property
    def width(self) -> int:
        return int(self.keys[0].shape[-2]) if self.keys else 0

    def add(self, req: GenRequest, keys: list[Any], values: list[Any]) -> None:
        import torch.nn.functional as F

        self.cache = None
        if not self.reqs:
            self.reqs, self.keys, self.values, self.pad = [req], list(keys), list(values), [0]
            return
        t_new, t_old = int(keys[0].shape[-2]), self.width
        width = max(t_new, t_old)
        if width > t_old:
            grow = width - t_old
            self.keys = [F.pad(k, (0, 0, grow, 0)) for k in self.keys]
            self.values = [F.pad(v, (0, 0, grow, 0)) for v in self.values]
            self.pad = [p + grow for p in self.pad]
        lead = width - t_new
        import torch

        self.keys = [torch.cat([k, F.pad(n, (0, 0, lead, 0))], dim=0) for k, n in zip(self.keys, keys)]
        self.values = [torch.cat([v, F.pad(n, (0, 0, lead, 0))], dim=0) for v, n in zip(self.values, values)]
        self.reqs.append(req)
        self.pad.append(lead)

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows, dropping padding columns no row needs any more."""
        import torch

        self.cache = None
        if not rows:
            self.reqs, self.keys, self.values, self.pad = [], [], [], []
            return
        idx = torch.tensor(rows, device=self.keys[0].device)
        cut = min(self.pad[i] for i in rows)
        self.keys = [k.index_select(0, idx)[:, :, cut:] for k in self.keys]
        self.values = [v.index_select(0, idx)[:, :, cut:] for v in self.values]
        self.reqs = [self.reqs[i] for i in rows]
        self.pad = [self.pad[i] - cut for i in rows]


class GenerationWorker:
    """The decode loop thread. `submit(req)`, then wait on `req.done`."""

    def __init__(self, engine, metrics: Metrics, eos_token_ids: set[int], max_model_len: int,
                 max_num_seqs: int = DEFAULT_MAX_NUM_SEQS) -> None:
        self.engine = engine
        self.metrics = metrics
        self.eos = set(eos_token_ids)
        self.max_model_len = max_model_len
        self.max_num_seqs = max(1, max_num_seqs)
        self.waiting: deque[GenRequest] = deque()
        self.cond = threading.Condition()
        self.stopping = False
        self.batch = _Batch()
        self.thread = threading.Thread(target=self._run, name="hf-generate", daemon=True)
        self.thread.start()

    def submit(self, req: GenRequest) -> None:
        import torch

        req.generator = torch.Generator(device="cpu")
        if req.params.seed is not None:
            req.generator.manual_seed(int(req.params.seed) & 0xFFFF_FFFF_FFFF_FFFF)
        else:
            req.generator.seed()
        with self.cond:
            if self.stopping:
                raise RuntimeError("server is shutting down")
            self.waiting.append(req)
            with self.metrics.lock:
                self.metrics.waiting += 1
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            pending = list(self.waiting)
            self.waiting.clear()
            self.cond.notify_all()
        for req in pending:
            self._finish_error(req, "server is shutting down", 503, waiting=True)
        self.thread.join(timeout=30)

    # ---------------------------------------------------------------- the loop
    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.waiting and not self.batch.reqs and not self.stopping:
                    self.cond.wait(0.5)
                if self.stopping:
                    break
                room = self.max_num_seqs - len(self.batch.reqs)
                admitted = [self.waiting.popleft() for _ in range(min(room, len(self.waiting)))]
            t0 = time.monotonic()
            with self.metrics.lock:
                self.metrics.waiting -= len(admitted)
                self.metrics.running += len(admitted)
            try:
                for req in admitted:
                    self._prefill(req)
                if self.batch.reqs:
                    self._step()
            except Exception as e:  # noqa: BLE001 - every running request gets the error
                print(f"hf_server: generation failed: {e!r}", file=sys.stderr, flush=True)
                running = {id(r) for r in self.batch.reqs}
                for req in list(self.batch.reqs) + [r for r in admitted if not r.done.is_set()
                                                    and id(r) not in running]:
                    self._finish_error(req, f"generation failed: {type(e).__name__}: {e}", 500)
                self.batch = _Batch()
            with self.metrics.lock:
                self.metrics.busy_s += time.monotonic() - t0
        for req in list(self.batch.reqs):
            self._finish_error(req, "server is shutting down", 503)
        self.batch = _Batch()

    def _prefill(self, req: GenRequest) -> None:
        import torch

        eng = self.engine
        ids = torch.tensor([req.prompt], dtype=torch.long, device=eng.device)
        with eng.lock, torch.inference_mode():
            out = eng.model(input_ids=ids, use_cache=True)
        cache = out.past_key_values
        keys = [layer.keys for layer in cache.layers]
        values = [layer.values for layer in cache.layers]
        with self.metrics.lock:
            self.metrics.prompt_tokens += len(req.prompt)
        if not self._accept(req, out.logits[0, -1]):
            self.batch.add(req, keys, values)

    def _step(self) -> None:
        import torch
        from transformers import DynamicCache

        eng, b = self.engine, self.batch
        n, width = len(b.reqs), b.width
        last = torch.tensor([[r.output[-1]] for r in b.reqs], dtype=torch.long, device=eng.device)
        mask = torch.ones((n, width + 1), dtype=torch.long, device=eng.device)
        for i, p in enumerate(b.pad):
            mask[i, :p] = 0
        pos = torch.tensor([[width - p] for p in b.pad], dtype=torch.long, device=eng.device)
        if b.cache is None:
            b.cache = DynamicCache(ddp_cache_data=list(zip(b.keys, b.values)))
        cache = b.cache
        with eng.lock, torch.inference_mode():
            out = eng.model(input_ids=last, attention_mask=mask, position_ids=pos, past_key_values=cache,
                            use_cache=True)
        b.cache = out.past_key_values
        b.keys = [layer.keys for layer in out.past_key_values.layers]
        b.values = [layer.values for layer in out.past_key_values.layers]
        logits = out.logits[:, -1]
        keep = [i for i, req in enumerate(b.reqs) if not self._accept(req, logits[i])]
        if len(keep) < n:
            b.keep(keep)

    def _accept(self, req: GenRequest, logits) -> bool:
        """Sample the next token of `req`; True when the request is finished (and answered)."""
        tok = sample(logits, req.params, req.generator)
        req.output.append(tok)
        with self.metrics.lock:
            self.metrics.generation_tokens += 1
        p = req.params
        if tok in p.stop_token_ids:
            req.finish_reason, req.stop_reason = "stop", tok
        elif tok in self.eos and not p.ignore_eos:
            req.finish_reason = "stop"
        elif len(req.output) >= p.max_tokens or len(req.prompt) + len(req.output) >= self.max_model_len:
            req.finish_reason = "length"
        else:
            return False
        with self.metrics.lock:
            self.metrics.running -= 1
        req.done.set()
        return True

    def _finish_error(self, req: GenRequest, message: str, code: int, waiting: bool = False) -> None:
        if req.done.is_set():
            return
        req.error, req.code = message, code
        with self.metrics.lock:
            if waiting:
                self.metrics.waiting -= 1
            else:
                self.metrics.running -= 1
        req.done.set()


def sample(logits, params: SamplingParams, generator) -> int:
    """The next token: argmax at temperature 0, else a draw from the temperature/top-k/top-p filtered
    distribution with the request's generator (same seed, same prompt: same tokens)."""
    import torch

    if params.temperature <= 0:
        return int(torch.argmax(logits).item())
    x = logits.float().cpu() / params.temperature
    if params.top_k and 0 < params.top_k < x.numel():
        kth = torch.topk(x, params.top_k).values[-1]
        x = x.masked_fill(x < kth, float("-inf"))
    if 0 < params.top_p < 1:
        sorted_x, order = torch.sort(x, descending=True)
        probs = torch.softmax(sorted_x, dim=-1)
        cum = torch.cumsum(probs, dim=-1)
        drop = cum - probs > params.top_p  # keep the smallest prefix whose mass reaches top_p
        sorted_x = sorted_x.masked_fill(drop, float("-inf"))
        x = torch.full_like(x, float("-inf")).scatter(0, order, sorted_x)
    probs = torch.softmax(x, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator).item())
