"""Worker processes for stage 1: chunk k goes to worker k % n over that worker's own pipe, and the
results come back in chunk order.

Why not `multiprocessing.Pool`: its workers share the result queue's write lock, so stopping early
(`--max-samples` reached) or on an error meant `Pool.terminate()`, which hangs for good when a
worker is killed while it holds that lock (sending a large result). Here no lock is shared between
processes: stopping is a kill and a reap, whatever the workers were doing. A worker that dies (the
OOM killer, a signal) is an error naming the likely fix, never a hang.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from typing import Any, Iterator, Sequence

from speculators_core.data.errors import PrepareError

#: chunks sent ahead to each worker (keeps every worker busy while the parent reads in order)
LOOKAHEAD = 2


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGKILL to this worker when the parent dies (even by kill -9)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _serve(processor: Any, conn: Any, inherited: Sequence[Any] = (), parent_pid: int = 0) -> None:
    # A forked worker holds copies of the parent's ends of every pipe created before it (its own
    # and the earlier workers'): closed here, so that a parent killed with -9 means EOF for all.
    for other in inherited:
        other.close()
    _die_with_parent()
    if parent_pid and os.getppid() != parent_pid:  # the parent died before prctl: nobody to serve
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's SIGTERM handler is not for workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core per worker process
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):  # the parent closed the pipe: done
            return
        try:
            result = (True, processor(chunk))
        except BaseException as exc:  # handed to the parent, which raises it
            result = (False, exc)
        try:
            conn.send(result)
        except (BrokenPipeError, OSError):
            return
        except Exception as exc:  # an exception that does not pickle
            conn.send((False, PrepareError(f"{type(result[1]).__name__}: {result[1]} ({exc})")))


class ChunkPool:
    def __init__(self, processor: Any, workers: int) -> None:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(method)
        self.procs: list = []
        self.conns: list = []
        try:
            for _ in range(workers):
                parent, child = ctx.Pipe()
                inherited = [*self.conns, parent] if method == "fork" else []
                proc = ctx.Process(target=_serve, args=(processor, child, inherited, os.getpid()), daemon=True)
                proc.start()
                child.close()
                self.procs.append(proc)
                self.conns.append(parent)
        except BaseException:
            self.close()
            raise

    def map(self, chunks: Sequence[Any], poll_s: float = 0.5) -> Iterator[Any]:
        """Results of `processor(chunk)` for every chunk, in order; a worker's exception is raised here."""
        n = len(self.procs)
        sent = 0

        def send_next() -> None:
            nonlocal sent
            self.conns[sent % n].send(chunks[sent])
            sent += 1

        while sent < min(len(chunks), n * LOOKAHEAD):
            send_next()
        for k in range(len(chunks)):
            conn, proc = self.conns[k % n], self.procs[k % n]
            while not conn.poll(poll_s):
                if proc.exitcode is not None:
                    raise self._died(proc)
            try:
                ok, payload = conn.recv()
            except (EOFError, OSError):
                proc.join(1.0)
                raise self._died(proc) from None
            if not ok:
                raise payload
            if sent < len(chunks):
                send_next()
            yield payload

    @staticmethod
    def _died(proc: Any) -> PrepareError:
        return PrepareError(
            f"a preprocessing worker process died (pid {proc.pid}, exit code {proc.exitcode}: killed by a "
            f"signal or the out-of-memory killer?); fix: lower --num-preprocessing-workers or --seq-length, "
            f"or give the machine more memory"
        )

    def close(self) -> None:
        """Stop every worker now (finished or not) and reap it."""
        for conn in self.conns:
            conn.close()
        for proc in self.procs:
            if proc.exitcode is None:
                proc.kill()
        for proc in self.procs:
            proc.join(5.0)
        self.conns, self.procs = [], []
