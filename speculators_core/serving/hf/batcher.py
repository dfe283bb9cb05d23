"""The hf engine's batching: concurrent requests grouped (right-padded, by length) into one forward
worker thread; hidden-states files written by a small writer pool under vLLM's `.lock` protocol."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

from speculators_core.serving.hf.model import HiddenStatesModel


@dataclass
class Job:
    ids: list[int]
    path: str
    lock_fd: Optional[int]
    done: threading.Event = field(default_factory=threading.Event)
    next_token: int = 0
    error: Optional[str] = None
    code: int = 500  # the HTTP status of an error (503: the server is shutting down)


class Metrics:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.waiting = 0
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.success = 0
        self.failed = 0
        self.busy_s = 0.0  # forward worker time spent on batches


#: A batch's padded size may exceed its real tokens by at most this factor.
MAX_PADDING = 1.15


class ForwardWorker:
    """One thread: takes queued jobs, batches them up to max_batch_tokens (padded), runs the forward,
    hands each sample's tensors to the writer pool, and wakes the HTTP handlers."""

    def __init__(self, engine: HiddenStatesModel, max_batch_tokens: int, metrics: Metrics, writers: int = 4) -> None:
        self.engine = engine
        self.max_batch_tokens = max_batch_tokens
        self.metrics = metrics
        self.queue: deque[Job] = deque()
        self.cond = threading.Condition()
        self.stopping = False
        self.writer = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="hs-write")
        self.thread = threading.Thread(target=self._run, name="hs-forward", daemon=True)
        self.thread.start()

    def submit(self, job: Job) -> None:
        with self.cond:
            if self.stopping:
                raise RuntimeError("server is shutting down")
            self.queue.append(job)
            with self.metrics.lock:
                self.metrics.waiting += 1
            self.cond.notify()

    def _take_batch(self) -> list[Job]:
        with self.cond:
            while not self.queue and not self.stopping:
                self.cond.wait(0.5)
            if self.stopping:
                return []
            # Shortest first; admit while the padded batch fits the token budget and padding stays a
            # small share (masked attention over padding costs more than it saves, notably on CPU).
            jobs = sorted(self.queue, key=lambda j: len(j.ids))
            batch: list[Job] = []
            width = real = 0
            for j in jobs:
                w = max(width, len(j.ids))
                padded = w * (len(batch) + 1)
                if batch and (padded > self.max_batch_tokens or padded > MAX_PADDING * (real + len(j.ids))):
                    break
                batch.append(j)
                width, real = w, real + len(j.ids)
            for j in batch:
                self.queue.remove(j)
            with self.metrics.lock:
                self.metrics.waiting -= len(batch)
                self.metrics.running += len(batch)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                return
            t0 = time.monotonic()
            try:
                results = self.engine.forward([j.ids for j in batch])
            except Exception as e:  # noqa: BLE001 - reported to every request of the batch
                print(f"hf_server: forward failed for a batch of {len(batch)}: {e!r}", file=sys.stderr, flush=True)
                results = None
                err = f"forward failed: {type(e).__name__}: {e}"
            for i, job in enumerate(batch):
                if results is None:
                    job.error = err
                    release_job(job, remove=True)
                else:
                    hs, job.next_token = results[i]
                    self.writer.submit(_write, job, hs)
                with self.metrics.lock:
                    self.metrics.running -= 1
                job.done.set()
            with self.metrics.lock:
                self.metrics.busy_s += time.monotonic() - t0

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            pending = list(self.queue)
            self.queue.clear()
            self.cond.notify_all()
        for job in pending:
            job.error = "server is shutting down"
            job.code = 503
            release_job(job, remove=True)
            job.done.set()
        self.thread.join(timeout=30)
        self.writer.shutdown(wait=True)


def release_job(job: Job, remove: bool = False) -> None:
    if job.lock_fd is not None:
        os.close(job.lock_fd)
        job.lock_fd = None
    if remove:
        try:
            os.unlink(job.path + ".lock")
        except FileNotFoundError:
            pass


def _write(job: Job, hs) -> None:
    import torch
    from safetensors.torch import save_file

    try:
        save_file({"hidden_states": hs, "token_ids": torch.tensor(job.ids, dtype=torch.int64)}, job.path)
    except Exception as e:  # noqa: BLE001 - the reader sees "lock released, no file"
        print(f"hf_server: writing {job.path} failed: {e!r}", file=sys.stderr, flush=True)
    finally:
        release_job(job)

