"""Where each row's hidden states come from, and the prefetcher that builds batches ahead of training.

Modes (the reference tutorial's flags):
- `--on-missing generate --on-generate delete` (online): ask the server, use the file, delete it;
- `--on-missing generate --on-generate cache` (hybrid): use the cache, else ask and keep the file;
- `--on-missing raise` (offline): the cache must have every row; `skip`: rows not cached are skipped.
A cached file is always used when `--hidden-states-path` has one, once the cache's manifest says it
was filled for this prepared dataset (`hidden_states/cache.py`; checked when the source is made). A row whose hidden states cannot
be obtained (server refused it, corrupt file, wrong shape) is skipped and counted, never zero-filled;
a server that is gone (`ServerUnavailable`), a missing cache file in `raise` mode, or
`MAX_FAILURES_IN_A_ROW` rows in a row that all failed (a server that answers but fails every
request, a cache of the wrong model) stop training.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Optional

import torch

from speculators_core.errors import SpeculatorsError
from speculators_core.training.data import PreparedData, Sample, make_sample
from speculators_core.training.packing import Batch, StepItem, collate


#: consecutive rows (per rank) whose hidden states could not be obtained before training stops
MAX_FAILURES_IN_A_ROW = 16


class MissingHiddenStates(SpeculatorsError, RuntimeError):
    """Offline mode (`--on-missing raise`) and a row is not in the cache: fatal."""

    fix = ("fill the cache with `python -m speculators_core.generate` (it resumes), or train with "
           "--on-missing generate (or skip)")


class HiddenStatesFailing(SpeculatorsError, RuntimeError):
    """Every one of the last MAX_FAILURES_IN_A_ROW rows failed: a systematic fault, not a bad row."""

    fix = ("online: read server.log and check that the server serves this target with these --target-layer-ids; "
           "offline: refill the cache (python -m speculators_core.generate) for this dataset and target")


class RowSource:
    def __init__(self, data: PreparedData, *, on_missing: str, on_generate: str, cache_dir: Optional[str],
                 client=None, num_aux: int, max_len: int, io_threads: int = 2) -> None:
        if on_missing == "generate" and client is None:
            raise ValueError("--on-missing generate needs a hidden-states server: give --vllm-endpoint "
                             "(or use --on-missing raise/skip with a filled --hidden-states-path cache)")
        if on_missing in ("raise", "skip") and not cache_dir:
            raise ValueError(f"--on-missing {on_missing} reads the cache: give --hidden-states-path")
        if on_generate == "cache" and not cache_dir:
            raise ValueError("--on-generate cache needs --hidden-states-path (the cache directory)")
        if cache_dir:  # once, before any cached file is used: the cache must be this dataset's
            from speculators_core.hidden_states.cache import check_cache

            check_cache(cache_dir, data.path, claim=on_missing == "generate" and on_generate == "cache")
        self.data, self.on_missing, self.on_generate = data, on_missing, on_generate
        self.cache_dir, self.client, self.num_aux, self.max_len = cache_dir, client, num_aux, max_len
        self.pool = ThreadPoolExecutor(max_workers=io_threads, thread_name_prefix="hs-io")
        self.skipped = 0
        self.skip_reasons: dict[str, int] = {}
        self.failures_in_a_row = 0
        self.lock = threading.Lock()

    def request(self, row_id: int) -> "_Pending":
        """A pending sample: `.result()` gives the Sample, or None when the row is skipped. Cache
        reads run in a small thread pool, server requests in the client (up to its in-flight limit)."""
        from speculators_core.hidden_states import cache_path, load_cached

        ids, mask = self.data.row(row_id)
        if self.cache_dir and cache_path(self.cache_dir, row_id).exists():
            return _Pending(self, row_id, ids, mask, self.pool.submit(load_cached, self.cache_dir, row_id))
        if self.on_missing == "raise":
            raise MissingHiddenStates(
                f"row {row_id}: no cached hidden states at {cache_path(self.cache_dir, row_id)} "
                f"(--on-missing raise); fill the cache with `python -m speculators_core.generate` "
                f"or train with --on-missing generate")
        if self.on_missing == "skip":
            return _Pending(self, row_id, ids, mask, None)
        cache = self.cache_dir if self.on_generate == "cache" else None
        return _Pending(self, row_id, ids, mask, self.client.submit(row_id, ids, cache_dir=cache))

    def _skip(self, reason: str, row_id: Optional[int] = None, exc: Optional[BaseException] = None) -> None:
        with self.lock:
            self.skipped += 1
            self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + 1
            if exc is not None and self.skip_reasons[reason] <= 5:
                print(f"[train] skipping row {row_id}: {exc}", flush=True)
            if exc is None:  # not cached, in --on-missing skip mode: chosen, not a fault
                return
            self.failures_in_a_row += 1
            if self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
                where = ("the hidden-states server fails every request (see server.log)"
                         if self.on_missing == "generate" else "the cached files do not fit this data or model")
                raise HiddenStatesFailing(
                    f"the last {self.failures_in_a_row} rows in a row got no hidden states ({self.skipped} "
                    f"skipped in all): {where}; last error, row {row_id}: {exc}")

    def _ok(self) -> None:
        with self.lock:
            self.failures_in_a_row = 0

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class _Pending:
    def __init__(self, source: RowSource, row_id: int, ids: list[int], mask: list[int], future: Optional[Future]):
        self.source, self.row_id, self.ids, self.mask, self.future = source, row_id, ids, mask, future

    def result(self) -> Optional[Sample]:
        from speculators_core.hidden_states import HiddenStatesError, ServerUnavailable

        src = self.source
        if self.future is None:
            src._skip("not cached")
            return None
        try:
            hs = self.future.result()
            if hs is None:  # vanished from the cache between the check and the read
                raise HiddenStatesError(f"row {self.row_id}: cached file disappeared")
            sample = make_sample(self.row_id, self.ids, self.mask, hs.hidden_states, hs.token_ids,
                                 src.num_aux, src.max_len)
        except ServerUnavailable:
            raise
        except (HiddenStatesError, ValueError) as exc:
            src._skip(type(exc).__name__, self.row_id, exc)
            return None
        src._ok()
        return sample


def _noise_seed(seed: int, epoch: int, row_id: int) -> int:
    return (seed * 1_000_003 + epoch) * 10_000_019 + row_id


def add_noise(sample: Sample, noise: float, seed: int, epoch: int) -> Sample:
    """Uniform noise in [-noise, noise] on the aux states, reproducible per (seed, epoch, row)."""
    if noise <= 0:
        return sample
    g = torch.Generator().manual_seed(_noise_seed(seed, epoch, sample.row_id))
    aux = sample.aux.float() + (torch.rand(sample.aux.shape, generator=g) * 2 - 1) * noise
    return Sample(sample.row_id, sample.input_ids, aux, sample.verifier_last, sample.loss_mask)


def noise_on_device(batch: Batch, noise: float, seed: int, epoch: int) -> Batch:
    """`add_noise` on a collated batch, where it lives (the GPU, after the copy): the same per-row
    generator seeds, the sum computed in fp32 and stored in the batch's dtype (bf16 when training
    in bf16: the value autocast gives the first linear layer either way). On the CPU the values are
    the old path's exactly; on a GPU the generator is the device's (other numbers, same law)."""
    if noise <= 0 or not batch.spans:
        return batch
    aux = batch.aux.clone()
    dev = aux.device
    for row_id, start, length in batch.spans:
        g = torch.Generator(device=dev).manual_seed(_noise_seed(seed, epoch, row_id))
        n = (torch.rand((length, aux.shape[-1]), generator=g, device=dev) * 2 - 1) * noise
        aux[0, start:start + length] = (aux[0, start:start + length].float() + n).to(aux.dtype)
    return Batch(batch.input_ids, aux, batch.verifier_last, batch.loss_mask, batch.position_ids, batch.doc_ids,
                 batch.num_samples, batch.num_tokens, batch.counted, batch.spans)


class DeviceBatch:
    """A batch copied to the GPU on the prefetcher's side stream; `get()` makes the current stream
    wait for the copy (an event, not a sync) and ties the tensors' memory to it."""

    def __init__(self, host: Batch, device: torch.device, stream) -> None:
        with torch.cuda.stream(stream):
            self.batch = host.to(device, non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record(stream)
        self.host = host  # the pinned source must outlive the asynchronous copy

    def get(self) -> Batch:
        cur = torch.cuda.current_stream(self.batch.aux.device)
        cur.wait_event(self.event)
        for t in self.batch.tensors():
            t.record_stream(cur)
        return self.batch


class Prefetcher:
    """Builds this rank's batches in a background thread, `lookahead` steps ahead: the rows of the
    next steps are requested (server generation or cache reads run concurrently) while the current
    step trains. Iterate to get `(batch, wait_s)`; an error in the thread is re-raised here."""

    _END = object()

    def __init__(self, source: RowSource, steps: list[StepItem], *, aux_size: int, hidden_size: int,
                 noise: float = 0.0, seed: int = 0, epoch: int = 0, lookahead: int = 4,
                 pin_memory: bool = False, dtype: torch.dtype = torch.float32, device_noise: bool = False,
                 device: Optional[torch.device] = None) -> None:
        """dtype: of the collated aux/verifier states (bf16 when training in bf16 on a GPU: half the
        bytes to copy, no bf16->fp32 pass on the CPU). device_noise: leave the noise to the consumer
        (`noise_on_device` after the copy). device (CUDA): copy each pinned batch there on a side
        stream; the iterator then yields batches already on the device."""
        self.source, self.steps = source, steps
        self.aux_size, self.hidden_size = aux_size, hidden_size
        self.noise, self.seed, self.epoch = noise, seed, epoch
        self.lookahead, self.pin = max(1, lookahead), pin_memory
        self.dtype, self.device_noise = dtype, device_noise
        self.device = device if device is not None and device.type == "cuda" else None
        self.stream = torch.cuda.Stream(device=self.device) if self.device is not None else None
        self.out: queue.Queue = queue.Queue(maxsize=max(2, lookahead // 2))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="prefetch", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            pending: deque = deque()
            it = iter(self.steps)

            def submit_next() -> bool:
                item = next(it, None)
                if item is None:
                    return False
                pending.append((item, [self.source.request(r) for r in item.rows]))
                return True

            for _ in range(self.lookahead):
                if not submit_next():
                    break
            while pending and not self.stop.is_set():
                item, futures = pending.popleft()
                samples = [s for s in (f.result() for f in futures) if s is not None]
                submit_next()
                if self.noise > 0 and not self.device_noise:
                    samples = [add_noise(s, self.noise, self.seed, self.epoch) for s in samples]
                batch = collate(samples, self.aux_size, self.hidden_size, counted=item.counted, dtype=self.dtype)
                if self.pin or self.device is not None:
                    batch = batch.pin_memory()
                if self.device is not None:
                    batch = DeviceBatch(batch, self.device, self.stream)
                self._put(batch)
            self._put(self._END)
        except BaseException as exc:  # handed to the training loop
            self._put(exc)

    def _put(self, obj) -> None:
        while not self.stop.is_set():
            try:
                self.out.put(obj, timeout=0.2)
                return
            except queue.Full:
                continue

    def __iter__(self):
        while True:
            t0 = time.perf_counter()
            obj = self.out.get()
            wait = time.perf_counter() - t0
            if obj is self._END:
                return
            if isinstance(obj, BaseException):
                raise obj
            if isinstance(obj, DeviceBatch):
                obj = obj.get()
            yield obj, wait

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
