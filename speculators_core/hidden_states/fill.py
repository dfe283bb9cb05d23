"""Filling the hidden-states cache for a prepared dataset (offline / hybrid training). Resumable.

The cache's `cache_manifest.json` names the prepared dataset it is for (`hidden_states/cache.py`):
a cache of another preparation is refused, an empty one is claimed. Row i of the dataset goes to
`<cache>/hs_<i>.safetensors` (moved atomically from the server's file, so
a present file is always complete); rows already cached are skipped, so an interrupted run resumes.
A sample that cannot be obtained (e.g. longer than the server's --max-model-len) is reported and the
others go on; `run` returns 1 if any row is missing at the end, 0 otherwise.
`python -m speculators_core.generate` is its command line.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Optional

from speculators_core.errors import ExitCode, SpeculatorsError


class GenerateUsageError(SpeculatorsError, ValueError):
    """Bad input to the generate stage (data path, flags, environment)."""

    exit_code = ExitCode.USAGE


_STAGE1 = "run stage 1 first: python -m speculators_core.prepare ... --output DIR, then --data-path DIR"


def api_key_from_env(name: Optional[str]) -> Optional[str]:
    """`--api-key-env NAME`: the key from os.environ[NAME] (None when the flag is not given)."""
    from speculators_core.hidden_states.client import key_for_flag

    return key_for_flag(name, GenerateUsageError)


def _load_rows(data_path: str, max_samples: Optional[int]):
    p = Path(data_path)
    if not p.is_dir():
        raise GenerateUsageError(f"--data-path {p}: no such directory", fix=_STAGE1)
    from datasets import load_from_disk

    try:
        ds = load_from_disk(str(p))
    except (FileNotFoundError, ValueError) as e:
        raise GenerateUsageError(f"--data-path {p}: not a prepared dataset ({e})", fix=_STAGE1) from None
    if "input_ids" not in ds.column_names:
        raise GenerateUsageError(f"--data-path {p}: no input_ids column (has {', '.join(ds.column_names)})",
                                 fix=_STAGE1)
    n = len(ds) if max_samples is None else min(len(ds), max_samples)
    return ds, n


async def run(args) -> int:
    from speculators_core.hidden_states import HiddenStatesClient, HiddenStatesError, ServerUnavailable, cache_path
    from speculators_core.hidden_states.cache import check_cache

    api_key = api_key_from_env(getattr(args, "api_key_env", None))
    ds, n = _load_rows(args.data_path, args.max_samples)
    cache = Path(args.hidden_states_path)
    check_cache(cache, args.data_path, claim=True)  # files of another preparation are never reused
    cache.mkdir(parents=True, exist_ok=True)
    todo = [i for i in range(n) if not cache_path(cache, i).exists()]
    print(f"generate: {n} rows, {n - len(todo)} already cached, {len(todo)} to generate -> {cache}", flush=True)
    if not todo:
        return 0
    failed: dict[int, str] = {}
    done = 0
    mb = 0.0
    t0 = last = time.monotonic()
    window = max(args.max_in_flight, args.max_files_on_disk) * 2  # coroutines alive at once
    extra = {"api_key": api_key} if api_key else {}  # only when set: clients without the parameter keep working
    async with HiddenStatesClient(args.vllm_endpoint, args.hidden_states_storage, args.max_in_flight,
                                  args.max_files_on_disk, args.request_timeout, args.server_grace_period,
                                  **extra) as client:
        sem = asyncio.Semaphore(window)

        async def one(i: int) -> None:
            nonlocal done, mb, last
            try:
                await client.fetch(i, ds[i]["input_ids"], cache_dir=str(cache))
            except ServerUnavailable:
                raise
            except HiddenStatesError as e:
                failed[i] = str(e)
            finally:
                sem.release()
            done += 1
            now = time.monotonic()
            if now - last >= args.progress_every or done == len(todo):
                s = client.stats()
                mb += s["hs_mb"]
                el = now - t0
                print(f"generate: {done}/{len(todo)} rows, {done / el:.1f} samples/s, {mb / el:.1f} MB/s, "
                      f"latency {s['hs_latency_s']:.2f} s, {len(failed)} failed", flush=True)
                last = now

        tasks = []
        try:
            for i in todo:
                await sem.acquire()
                if any(t.done() and t.exception() for t in tasks[-window:]):
                    break
                tasks.append(asyncio.ensure_future(one(i)))
            await asyncio.gather(*tasks)
        except ServerUnavailable as e:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            print(f"generate: {e}\ngenerate: stopped after {done} rows; run again to resume", file=sys.stderr)
            return 1
    if failed:
        for i, msg in list(failed.items())[:10]:
            print(f"generate: row {i}: {msg}", file=sys.stderr)
        print(f"generate: {len(failed)} of {len(todo)} rows failed (listed above, up to 10); they are not cached. "
              f"Fix the cause (e.g. raise the server's --max-model-len) and run again: cached rows are skipped",
              file=sys.stderr)
        return 1
    print(f"generate: done, {n} rows cached in {cache} ({time.monotonic() - t0:.1f} s)", flush=True)
    return 0
