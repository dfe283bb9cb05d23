"""The hf engine's entry point: resolve the target and layer ids, load the model, serve until stopped.

`python -m speculators_core.hf_server` parses the flags and calls `serve(args)`.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys
import threading
import time
from pathlib import Path

from speculators_core.builtin import ensure_model
from speculators_core.errors import ExitCode
from speculators_core.hidden_states.layers import LayerIdError, resolve_layer_ids
from speculators_core.serving.hf.batcher import ForwardWorker, Metrics
from speculators_core.serving.hf.generation import DEFAULT_MAX_NUM_SEQS, GenerationWorker
from speculators_core.serving.hf.http import DEFAULT_READ_TIMEOUT_S, HiddenStatesHTTPServer
from speculators_core.serving.hf.model import HiddenStatesModel


def serve(args: argparse.Namespace) -> int:
    """Run the server for parsed `hf_server` flags until SIGTERM/SIGINT; the exit code."""
    api_key = None
    name_env = getattr(args, "api_key_env", None)
    if name_env:
        from speculators_core.hidden_states.client import api_key_problem

        api_key = os.environ.get(name_env)
        problem = api_key_problem(name_env, api_key)
        if problem:
            what, fix = problem
            if not api_key:
                what += " (unset or empty)"
            print(f"hf_server: --api-key-env {name_env}: {what}. Fix: {fix} (the same key the clients send), "
                  f"or drop --api-key-env", file=sys.stderr)
            return ExitCode.USAGE
    elif not _loopback(args.host):
        print(f"hf_server: warning: listening on {args.host} without an API key: anyone who can reach this "
              f"port can drive the server and make it write files. Use --api-key-env NAME (or --host 127.0.0.1)",
              file=sys.stderr, flush=True)
    model_path = str(ensure_model(args.model))
    try:
        layer_ids, num_layers = resolve_layer_ids(args.model, args.target_layer_ids)
    except LayerIdError as e:
        print(f"hf_server: {e}", file=sys.stderr)
        return ExitCode.USAGE
    storage = Path(args.hidden_states_path)
    try:
        storage.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"hf_server: --hidden-states-path {storage}: cannot create it ({e})", file=sys.stderr)
        return ExitCode.USAGE
    storage = storage.resolve()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    t0 = time.monotonic()
    engine = HiddenStatesModel(model_path, layer_ids, device=args.device, dtype=args.dtype,
                               trust_remote_code=args.trust_remote_code)
    if engine.num_layers != num_layers:
        print(f"hf_server: the model has {engine.num_layers} decoder layers but its config says {num_layers}",
              file=sys.stderr)
        return ExitCode.USAGE
    tokenizer = None
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=args.trust_remote_code)
    except Exception as e:  # noqa: BLE001 - token-id prompts work without a tokenizer
        print(f"hf_server: no tokenizer ({type(e).__name__}); text prompts disabled", file=sys.stderr)
    max_len = args.max_model_len or int(getattr(engine.model.config.get_text_config(), "max_position_embeddings", 0)
                                        or 1 << 20)
    if stop.is_set():
        return ExitCode.OK
    metrics = Metrics()
    worker = ForwardWorker(engine, max(args.max_batch_tokens, 1), metrics)
    name = args.served_model_name or args.model
    try:
        srv = HiddenStatesHTTPServer((args.host, args.port), worker, storage, name, max_len, tokenizer,
                                     api_key=api_key, read_timeout=_read_timeout())
    except OSError as e:
        worker.stop()
        print(f"hf_server: cannot listen on {args.host}:{args.port}: {e} (is another server on that port? use --port)",
              file=sys.stderr)
        return ExitCode.USAGE
    from speculators_core.serving.hf.openai_api import eos_ids

    srv.gen = GenerationWorker(engine, metrics, eos_ids(engine.model, tokenizer), max_len,
                               max_num_seqs=getattr(args, "max_num_seqs", None) or DEFAULT_MAX_NUM_SEQS)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, name="hs-http", daemon=True).start()
    print(f"hf_server: {engine.precision.describe()}", flush=True)
    print(f"hf_server: serving {name} ({engine.num_layers} layers, ids {layer_ids}, {engine.dtype}, {engine.device}) "
          f"on http://{args.host}:{args.port} -> {storage} (ready in {time.monotonic() - t0:.1f} s)", flush=True)
    while not stop.wait(0.5):
        pass
    print("hf_server: stopping", flush=True)
    srv.shutdown()  # no new requests; queued jobs get a 503, running ones finish and are answered
    worker.stop()
    srv.gen.stop()
    srv.wait_idle(timeout=10)
    srv.server_close()
    return ExitCode.OK


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_timeout() -> float:
    """Seconds a client may take to send a request (SPECULATORS_HF_READ_TIMEOUT; tests shorten it)."""
    try:
        return max(0.1, float(os.environ.get("SPECULATORS_HF_READ_TIMEOUT") or DEFAULT_READ_TIMEOUT_S))
    except ValueError:
        return DEFAULT_READ_TIMEOUT_S


