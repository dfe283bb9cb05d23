"""Built-in hidden-states server (`hf` engine): a transformers forward pass behind vLLM's protocol.

    python -m speculators_core.hf_server MODEL --port 8000 --hidden-states-path DIR \
        [--target-layer-ids 2 4 5 8] [--device auto|cpu|cuda] [--max-model-len N]

Speaks what the client expects from vLLM's extraction (docs/vllm-hidden-states.md):
`GET /health`, `GET /v1/models`, `POST /v1/completions` with a token-id prompt (`return_token_ids`
echoes `prompt_token_ids`; `kv_transfer_params.hidden_states_path` names `<DIR>/<request id>.safetensors`),
the same safetensors layout (`hidden_states` [T, layers, H] in the model dtype, `token_ids` [T] int64)
and the same `.lock` protocol (exclusive flock held until the file is complete; the response may come
first). `GET /metrics` has vLLM-named gauges/counters for the bottleneck detector.

Layer semantics equal vLLM's: id k is the output of decoder layer k (1-based), i.e. HF
`hidden_states[k]` for k < L, and for k = L the last layer's output BEFORE the final norm.
Concurrent requests are batched (right-padded, by length) in one forward worker thread; files are
written by a small writer pool. Binds 127.0.0.1 by default; SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

from speculators_core import stage_args


# ----------------------------------------------------------------------------------------- model
def _first_attr(obj: Any, paths: tuple[str, ...]) -> Any:
    """The first dotted attribute path of `paths` that `obj` has, else None."""
    for path in paths:
        cur = obj
        try:
            for part in path.split("."):
                cur = getattr(cur, part)
        except AttributeError:
            continue
        return cur
    return None


def decoder_layers(model) -> Any:
    """The ModuleList of decoder layers of a causal LM (text models and common multimodal wrappers)."""
    layers = _first_attr(model, ("model.layers", "model.language_model.layers", "language_model.model.layers",
                                 "transformer.h", "model.decoder.layers"))
    if layers is None:
        raise ValueError(f"{type(model).__name__}: cannot find its decoder layers (model.layers); unsupported architecture")
    return layers


def final_norm(model) -> Any:
    return _first_attr(model, ("model.norm", "model.language_model.norm", "transformer.ln_f",
                               "model.decoder.final_layer_norm"))


class HiddenStatesModel:
    """A causal LM with forward hooks on the decoder layers named by the layer ids."""

    def __init__(self, model_path: str, layer_ids: list[int], device: str = "auto", dtype: str = "auto",
                 trust_remote_code: bool = False) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device is visible (check CUDA_VISIBLE_DEVICES)")
        from speculators_core.precision import choose_dtype

        self.precision = choose_dtype(dtype, device)
        self.device = torch.device(device)
        self.dtype = self.precision.torch_dtype
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=self.dtype,
                                                          trust_remote_code=trust_remote_code)
        self.model.to(self.device).eval()
        layers = decoder_layers(self.model)
        self.num_layers = len(layers)
        self.layer_ids = list(layer_ids)
        self.norm = final_norm(self.model)
        self.lm_head = self.model.get_output_embeddings()
        self.vocab_size = int(self.model.config.get_text_config().vocab_size)
        self._captured: dict[int, Any] = {}
        for k in self.layer_ids:
            layers[k - 1].register_forward_hook(self._hook(k))

    def _hook(self, k: int):
        def hook(module, args, output):
            self._captured[k] = output[0] if isinstance(output, (tuple, list)) else output
        return hook

    def forward(self, batch: list[list[int]]) -> list[tuple[Any, int]]:
        """[(hidden_states [T, n, H] on CPU in the model dtype, next token id)] per sample (right-padded batch)."""
        import torch

        n = len(batch)
        width = max(len(x) for x in batch)
        ids = torch.zeros((n, width), dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for i, x in enumerate(batch):
            ids[i, :len(x)] = torch.tensor(x, dtype=torch.long)
            mask[i, :len(x)] = 1
        self._captured.clear()
        with torch.inference_mode():
            base = self.model.get_decoder() if hasattr(self.model, "get_decoder") else self.model.model
            base(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), use_cache=False)
            stacked = torch.stack([self._captured[k] for k in self.layer_ids], dim=2)  # [B, S, n, H]
            rows = torch.arange(n, device=stacked.device)
            ends = torch.tensor([len(x) - 1 for x in batch], device=stacked.device)
            last = stacked[rows, ends, -1]  # [B, H]: id L at each sample's last token
            nxt = [0] * n
            if self.norm is not None and self.lm_head is not None:
                nxt = self.lm_head(self.norm(last)).argmax(-1).tolist()
            out = [(stacked[i, :len(x)].to("cpu").contiguous().clone(), int(nxt[i])) for i, x in enumerate(batch)]
        self._captured.clear()
        return out


# ------------------------------------------------------------------------------------ batching
@dataclass
class Job:
    ids: list[int]
    path: str
    lock_fd: Optional[int]
    done: threading.Event = field(default_factory=threading.Event)
    next_token: int = 0
    error: Optional[str] = None


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
                    _release(job, remove=True)
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
            _release(job, remove=True)
            job.done.set()
        self.thread.join(timeout=30)
        self.writer.shutdown(wait=True)


def _release(job: Job, remove: bool = False) -> None:
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
        _release(job)


# ---------------------------------------------------------------------------------------- HTTP
class HiddenStatesHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, worker: ForwardWorker, storage: Path, model_name: str, max_model_len: int,
                 tokenizer=None) -> None:
        super().__init__(addr, Handler)
        self.worker = worker
        self.storage = storage
        self.model_name = model_name
        self.max_model_len = max_model_len
        self.tokenizer = tokenizer
        self.started = int(time.time())


class Handler(BaseHTTPRequestHandler):
    server: HiddenStatesHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args) -> None:  # quiet: one line per request is too much for server.log
        pass

    def _send(self, code: int, obj: Any = None, text: Optional[str] = None) -> None:
        if text is not None:
            body, ctype = text.encode(), "text/plain; version=0.0.4; charset=utf-8"
        else:
            body, ctype = json.dumps(obj).encode(), "application/json"
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, code: int, message: str, kind: str = "BadRequestError") -> None:
        self._send(code, {"error": {"message": message, "type": kind, "code": code}})

    def do_GET(self) -> None:
        s = self.server
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._send(200, {})
        elif path == "/v1/models":
            self._send(200, {"object": "list", "data": [{
                "id": s.model_name, "object": "model", "created": s.started, "owned_by": "speculators-tui",
                "root": s.model_name, "max_model_len": s.max_model_len}]})
        elif path == "/metrics":
            self._send(200, text=render_metrics(s.worker.metrics, s.model_name))
        else:
            self._error(404, f"no route {path}", "NotFoundError")

    def do_POST(self) -> None:
        s = self.server
        path = self.path.split("?", 1)[0]
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
        except (ValueError, json.JSONDecodeError) as e:
            return self._error(400, f"invalid JSON body: {e}")
        if path != "/v1/completions":
            return self._error(404, f"no route {path} (only /v1/completions)", "NotFoundError")
        if not isinstance(body, dict):
            return self._error(400, "the body must be a JSON object")
        model = body.get("model")
        if model is not None and model != s.model_name:
            return self._error(404, f"The model `{model}` does not exist (served: {s.model_name}).", "NotFoundError")
        ids = body.get("prompt")
        if isinstance(ids, list) and len(ids) == 1 and isinstance(ids[0], list):
            ids = ids[0]
        if isinstance(ids, str):
            if s.tokenizer is None:
                return self._error(400, "prompt: send token ids (a list of integers); this server has no tokenizer")
            ids = s.tokenizer(ids, add_special_tokens=False)["input_ids"]
        if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            return self._error(400, "prompt: expected a non-empty list of token ids (integers)")
        vocab = s.worker.engine.vocab_size
        bad = [i for i in ids if not 0 <= i < vocab]
        if bad:
            return self._error(400, f"prompt: token id(s) {bad[:5]} out of vocabulary range [0, {vocab})")
        max_tokens = body.get("max_tokens") or 1
        if len(ids) + 1 > s.max_model_len:
            return self._error(400, f"This model's maximum context length is {s.max_model_len} tokens. However, "
                                    f"your request has {len(ids)} input tokens. Please reduce the length of the "
                                    f"input prompt. (--max-model-len)")
        req_id = f"cmpl-{uuid.uuid4().hex}"
        file = str(s.storage / f"{req_id}.safetensors")
        lock_fd = os.open(file + ".lock", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        job = Job(ids=list(ids), path=file, lock_fd=lock_fd)
        try:
            s.worker.submit(job)
        except RuntimeError as e:
            _release(job, remove=True)
            return self._error(503, str(e), "ServiceUnavailableError")
        job.done.wait()
        m = s.worker.metrics
        with m.lock:
            if job.error:
                m.failed += 1
            else:
                m.success += 1
                m.prompt_tokens += len(ids)
                m.generation_tokens += 1
        if job.error:
            return self._error(500, job.error, "InternalServerError")
        text = ""
        if s.tokenizer is not None:
            try:
                text = s.tokenizer.decode([job.next_token])
            except Exception:  # noqa: BLE001 - the text is informative only
                text = ""
        choice: dict[str, Any] = {"index": 0, "text": text, "logprobs": None, "finish_reason": "length",
                                  "stop_reason": None}
        if body.get("return_token_ids"):
            choice["prompt_token_ids"] = list(ids)
            choice["token_ids"] = [job.next_token]
        self._send(200, {
            "id": req_id, "object": "text_completion", "created": int(time.time()), "model": s.model_name,
            "choices": [choice],
            "usage": {"prompt_tokens": len(ids), "completion_tokens": 1, "total_tokens": len(ids) + 1},
            "kv_transfer_params": {"hidden_states_path": file},
        })
        del max_tokens  # always 1 generated token, as with vLLM's extraction method


def render_metrics(m: Metrics, model_name: str) -> str:
    """Prometheus text exposition with vLLM's metric names."""
    label = f'{{engine="0",model_name="{model_name}"}}'
    with m.lock:
        rows = [
            ("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", m.running),
            ("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", m.waiting),
            ("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", m.prompt_tokens),
            ("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.", m.generation_tokens),
            ("vllm:request_success_total", "counter", "Count of successfully processed requests.", m.success),
            ("speculators:request_failed_total", "counter", "Count of failed requests.", m.failed),
            ("speculators:busy_seconds_total", "counter", "Seconds the forward worker spent on batches.", m.busy_s),
        ]
    out = []
    for name, kind, help_text, value in rows:
        base = name[:-6] if kind == "counter" and name.endswith("_total") else name
        out += [f"# HELP {base} {help_text}", f"# TYPE {base} {kind}", f"{name}{label} {float(value)}"]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------- main
def main(argv: Optional[list[str]] = None) -> int:
    args = stage_args.hf_server_parser().parse_args(argv)
    from speculators_core.hidden_states.layers import LayerIdError, resolve_layer_ids
    from speculators_core.paths import is_builtin, resolve_model

    model_path = resolve_model(args.model)
    from speculators_core.builtin import ensure_model

    ensure_model(args.model)
    try:
        layer_ids, num_layers = resolve_layer_ids(args.model, args.target_layer_ids)
    except LayerIdError as e:
        print(f"hf_server: {e}", file=sys.stderr)
        return 2
    storage = Path(args.hidden_states_path)
    try:
        storage.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"hf_server: --hidden-states-path {storage}: cannot create it ({e})", file=sys.stderr)
        return 2
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
        return 2
    tokenizer = None
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=args.trust_remote_code)
    except Exception as e:  # noqa: BLE001 - token-id prompts work without a tokenizer
        print(f"hf_server: no tokenizer ({type(e).__name__}); text prompts disabled", file=sys.stderr)
    max_len = args.max_model_len or int(getattr(engine.model.config.get_text_config(), "max_position_embeddings", 0)
                                        or 1 << 20)
    if stop.is_set():
        return 0
    metrics = Metrics()
    worker = ForwardWorker(engine, max(args.max_batch_tokens, 1), metrics)
    name = args.served_model_name or args.model
    try:
        srv = HiddenStatesHTTPServer((args.host, args.port), worker, storage, name, max_len, tokenizer)
    except OSError as e:
        worker.stop()
        print(f"hf_server: cannot listen on {args.host}:{args.port}: {e} (is another server on that port? use --port)",
              file=sys.stderr)
        return 2
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, name="hs-http", daemon=True).start()
    print(f"hf_server: {engine.precision.describe()}", flush=True)
    print(f"hf_server: serving {name} ({engine.num_layers} layers, ids {layer_ids}, {engine.dtype}, {engine.device}) "
          f"on http://{args.host}:{args.port} -> {storage} (ready in {time.monotonic() - t0:.1f} s)", flush=True)
    while not stop.wait(0.5):
        pass
    print("hf_server: stopping", flush=True)
    srv.shutdown()
    srv.server_close()
    worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
