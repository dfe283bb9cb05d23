"""Stage 1: render chat data with the target's chat template, tokenise it, build the assistant-only
loss mask and `token_freq.pt`, and save a `datasets` directory (format spec, section 1).

    python -m speculators_core.prepare --model builtin:tiny-qwen3 --data builtin:demo-chat --output out/

Rows are read from every `--data` source, put in a seeded random order, processed in chunks (in
this process, or by `--num-preprocessing-workers` forked workers; the output does not depend on the
count), truncated to `--seq-length`, filtered (no trainable token, fewer than
`--minimum-valid-tokens`), and written atomically. The output records its inputs (tokenizer file
hashes, data file hashes, options) in `prepare_manifest.json`: the same inputs again -> "already
prepared", exit 0; other inputs -> an error unless `--overwrite`, which replaces only the dataset's own files
(checkpoints or caches in the same directory are kept; `data/output_dir.py`).

Python API: `prepare_dataset(PrepareOptions(...)) -> PrepareSummary`, and `is_prepared(...)`, a
cheap check (file hashes, no tokenizer load) that an output is complete for exactly these inputs.
Bad input raises `PrepareError` (the CLI prints it and exits 2).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import asdict, replace
from typing import Any, Callable, Sequence

from speculators_core.data import tokenizer_loading
from speculators_core.data.errors import PrepareError
from speculators_core.data.options import PrepareOptions, PrepareSummary
from speculators_core.paths import is_builtin, resolve_data_source, resolve_model

CHUNK_ROWS = 64


# -- resolution ---------------------------------------------------------------------------------------
def _resolve_model(spec: str, build: bool) -> str:
    if is_builtin(spec):
        try:
            path = resolve_model(spec)
        except ValueError as exc:
            raise PrepareError(f"--model {spec}: {exc}") from None
        if build:
            from speculators_core.builtin import ensure_model

            ensure_model(spec)
        return path
    return resolve_model(spec)


def _resolve_data(specs: Sequence[str]) -> list[str]:
    out = []
    for spec in specs:
        try:
            out.append(resolve_data_source(spec))
        except ValueError as exc:
            raise PrepareError(f"--data {spec}: {exc}") from None
    return out


def _options(obj: PrepareOptions | argparse.Namespace | Sequence[str]) -> PrepareOptions:
    if isinstance(obj, PrepareOptions):
        return obj
    if isinstance(obj, argparse.Namespace):
        return PrepareOptions.from_args(obj)
    from speculators_core.plan.flags import prepare_parser

    return PrepareOptions.from_args(prepare_parser().parse_args(list(obj)))


def _inputs(opts: PrepareOptions, model_path: str, data: list[str]) -> dict[str, Any]:
    from speculators_core.data.manifest import describe_inputs, known_files, read_manifest

    known = known_files(read_manifest(opts.output))
    return describe_inputs(model_path, data, opts.fingerprinted(), known)


def is_prepared(args_or_options: PrepareOptions | argparse.Namespace | Sequence[str]) -> bool:
    """True when `output` is a complete preparation of exactly these inputs (cheap: file hashes only,
    no tokenizer load, nothing built or downloaded)."""
    from speculators_core.data.manifest import fingerprint, is_complete, read_manifest

    opts = _options(args_or_options)
    manifest = read_manifest(opts.output)
    if not manifest or not is_complete(opts.output, manifest):
        return False
    try:
        inputs = _inputs(opts, _resolve_model(opts.model, build=False), _resolve_data(opts.data))
    except (PrepareError, OSError):
        return False
    return manifest.get("fingerprint") == fingerprint(inputs)


# -- the work -----------------------------------------------------------------------------------------
def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc="prepare", unit="rows", file=sys.stderr, mininterval=1.0, dynamic_ncols=True)


def prepare_dataset(opts: PrepareOptions, progress: bool = False,
                    log: Callable[[str], None] | None = None) -> PrepareSummary:
    """Prepare `opts.data` for `opts.model` into `opts.output`; see the module docstring."""
    from speculators_core.data.word_encoder import WordEncoderMismatch

    log = log or (lambda _msg: None)
    try:
        return _prepare(opts, progress, log, {})
    except WordEncoderMismatch as exc:
        if opts.exact_tokenizer:  # pragma: no cover - the word encoder is off then
            raise
        # Never expected (the encoder checks its tokenizer and every character first), but the
        # tokens must be the tokenizer's: start over with encode_batch for every row.
        log(f"warning: {exc}; starting over with the tokenizer's encode_batch for every row")
        return _prepare(replace(opts, exact_tokenizer=True), progress, log, {"word encoder mismatch": str(exc)})


def _prepare(opts: PrepareOptions, progress: bool, log: Callable[[str], None],
             notes: dict[str, str]) -> PrepareSummary:
    t0 = time.perf_counter()
    if opts.seq_length < 2:
        raise PrepareError(f"--seq-length {opts.seq_length}: must be at least 2")
    if opts.max_samples is not None and opts.max_samples < 1:
        raise PrepareError(f"--max-samples {opts.max_samples}: must be at least 1")
    if opts.num_workers < 1:
        raise PrepareError(f"--num-preprocessing-workers {opts.num_workers}: must be at least 1")
    model_path = _resolve_model(opts.model, build=True)
    data = _resolve_data(opts.data)
    inputs = _inputs(opts, model_path, data)
    from speculators_core.data.output_dir import check_output

    if check_output(opts, inputs, log):
        return PrepareSummary(output=str(opts.output), already_prepared=True)

    import numpy as np

    from speculators_core.data.manifest import fingerprint
    from speculators_core.data.sources import open_sources
    from speculators_core.data.chunk_pool import ChunkPool
    from speculators_core.data.worker import ChunkProcessor
    from speculators_core.data.writer import write_output
    from speculators_core.data.word_encoder import WordEncoderMismatch

    timings: dict[str, float] = {"check inputs": time.perf_counter() - t0}
    loader: list[str] = []
    tokenizer, encoder, cache_status, cache_key = tokenizer_loading.tokenizer_and_encoder(opts, model_path, inputs["tokenizer"],
                                                                         timings, loader)
    t = time.perf_counter()
    table = open_sources(data)
    timings["read"] = time.perf_counter() - t
    for path, why in table.skipped.items():
        log(f"not read: {path} ({why})")
    n = len(table)
    if n == 0:
        raise PrepareError(f"--data {' '.join(opts.data)}: no rows")
    order = np.random.default_rng(opts.seed).permutation(n)
    chunks = [order[i : i + CHUNK_ROWS] for i in range(0, n, CHUNK_ROWS)]
    processor = ChunkProcessor(table, tokenizer, opts.seq_length, opts.minimum_valid_tokens,
                               exact_tokenizer=opts.exact_tokenizer, word_encoder=encoder)

    from speculators_core.data.writer import TokenCounter

    counter = TokenCounter()
    ids_out: list = []
    masks_out: list = []
    dropped: Counter = Counter()
    summary = PrepareSummary(output=str(opts.output), rows_total=n, word_encoder_off=processor.word_encoder_off,
                             timings=timings, tokenizer_cache=cache_status,
                             tokenizer_loader=loader[0] if loader else "", skipped_files=dict(table.skipped))
    workers = min(opts.num_workers, len(chunks))
    pool = None
    saved_env = os.environ.get("TOKENIZERS_PARALLELISM")
    bar = None
    try:
        if workers > 1:
            # Parallelism comes from the processes; the Rust thread pool must not be forked in use.
            os.environ["TOKENIZERS_PARALLELISM"] = "false"
            # (created before the progress bar: fork while no helper thread runs)
            t = time.perf_counter()
            pool = ChunkPool(processor, workers)
            timings["worker start-up"] = time.perf_counter() - t
            results = pool.map(chunks)
        else:
            results = map(processor, chunks)
        bar = _progress(n, progress)
        t_process = time.perf_counter()
        for chunk, res in zip(chunks, results):
            done = False
            rows_read = len(chunk)
            for pos, ids, mask in res.kept:
                ids_out.append(ids)
                masks_out.append(mask)
                counter.add(ids, mask)
                if opts.max_samples is not None and len(ids_out) >= opts.max_samples:
                    # rows after this one in the chunk were not needed: count only what was used
                    rows_read = pos + 1
                    done = True
                    break
            dropped.update(reason for pos, reason in res.drops if pos < rows_read)
            summary.truncated += sum(1 for pos in res.truncated if pos < rows_read)
            summary.assistant_turns_not_found += res.missing_turns
            summary.word_encoded += res.word_encoded
            summary.word_checked += res.word_checked
            summary.batch_encoded += res.batch_encoded
            for k, v in res.notes.items():
                notes.setdefault(k, v)
            summary.rows_in += rows_read
            _check_stop()
            if bar is not None:
                bar.update(rows_read)
            if done:
                break
    except WordEncoderMismatch:
        if cache_key is not None:  # never trust that cached encoder again
            from speculators_core.data import tokenizer_cache

            tokenizer_cache.drop(cache_key)
        raise
    finally:
        if bar is not None:
            bar.close()
        if pool is not None:
            pool.close()
            if saved_env is None:
                os.environ.pop("TOKENIZERS_PARALLELISM", None)
            else:
                os.environ["TOKENIZERS_PARALLELISM"] = saved_env

    summary.process_seconds = time.perf_counter() - t_process
    timings["process"] = summary.process_seconds
    summary.rows_kept = len(ids_out)
    summary.dropped = dict(sorted(dropped.items()))
    summary.notes = notes
    summary.tokens = int(sum(len(a) for a in ids_out))
    summary.trainable_tokens = int(sum(int(m.sum()) for m in masks_out))
    summary.mean_length = summary.tokens / max(1, summary.rows_kept)
    if not ids_out:
        raise PrepareError(
            f"no rows kept out of {summary.rows_in}: dropped "
            + ", ".join(f"{k}={v}" for k, v in summary.dropped.items())
            + "".join(f"; first {k}: {v}" for k, v in notes.items())
        )
    t = time.perf_counter()
    freq = counter.as_dict()
    freq_seconds = time.perf_counter() - t
    summary.seconds = time.perf_counter() - t0
    manifest = {"fingerprint": fingerprint(inputs), "inputs": inputs, "summary": asdict(summary),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _check_stop()
    write_output(opts.output, ids_out, masks_out, manifest, freq, timings)
    timings["token_freq"] += freq_seconds
    summary.seconds = time.perf_counter() - t0
    return summary


_stop_exit_code = 0


def _on_sigterm(signum, frame) -> None:
    global _stop_exit_code
    _stop_exit_code = 128 + signum
    # Raised wherever the main thread is; also checked after every chunk, in case the exception
    # lands somewhere that swallows it (a __del__ or a weakref callback).
    raise SystemExit(_stop_exit_code)


def _check_stop() -> None:
    if _stop_exit_code:
        raise SystemExit(_stop_exit_code)


def main(argv: Sequence[str] | None = None) -> int:
    from speculators_core.plan.flags import prepare_parser

    args = prepare_parser().parse_args(argv)
    opts = PrepareOptions.from_args(args)
    # SIGTERM (the supervisor stopping the run) unwinds like Ctrl-C: workers stopped, temp dir removed.
    signal.signal(signal.SIGTERM, _on_sigterm)
    if os.environ.get("OMP_NUM_THREADS") is None:
        os.environ["OMP_NUM_THREADS"] = "1"
    try:
        summary = prepare_dataset(opts, progress=True, log=lambda m: print(m, flush=True))
    except PrepareError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    for line in summary.lines():
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    _code = main()
    # Skip the interpreter's teardown (freeing every row and the tokenizer: a fraction of a second): everything is written, the workers are reaped, the output renamed into place.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_code)
