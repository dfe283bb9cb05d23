"""The hf engine's HTTP face: what the client expects from vLLM's extraction (vLLM's `extract_hidden_states` speculative method).

`GET /health`, `GET /v1/models`, `POST /v1/completions` with a token-id prompt (`return_token_ids`
echoes `prompt_token_ids`; `kv_transfer_params.hidden_states_path` names `<DIR>/<request id>.safetensors`),
and `GET /metrics` with vLLM-named gauges/counters for the bottleneck detector. Generation (no
hidden-states file): `POST /v1/chat/completions`, and `/v1/completions` with `max_tokens > 1`, through
the generation loop (`generation.py`, request and response shapes in `openai_api.py`).
"""

from __future__ import annotations

import fcntl
import hmac
import json
import os
import threading
import time
import uuid
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

from speculators_core.serving.hf.batcher import ForwardWorker, Job, Metrics, release_job

#: Listen backlog: a trainer opens up to 2 * max_in_flight connections per process at once.
LISTEN_BACKLOG = 1024
#: Largest accepted body: a fixed allowance plus this many bytes per token of --max-model-len.
BODY_BASE_BYTES = 64 * 1024
BODY_BYTES_PER_TOKEN = 32
BODY_MAX_BYTES = 64 * 1024 * 1024
#: Seconds a client may take to send its request (headers or body) before it gets a 408.
DEFAULT_READ_TIMEOUT_S = 30.0
OPEN_PATHS = ("/health", "/metrics")  # never behind the API key (probes, the bottleneck detector)
ROUTES = {"/health": ("GET",), "/metrics": ("GET",), "/v1/models": ("GET",), "/v1/completions": ("POST",),
          "/v1/chat/completions": ("POST",)}


class HiddenStatesHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, addr, worker: ForwardWorker, storage: Path, model_name: str, max_model_len: int,
                 tokenizer=None, api_key: Optional[str] = None,
                 read_timeout: float = DEFAULT_READ_TIMEOUT_S) -> None:
        super().__init__(addr, Handler)
        self.worker = worker
        self.storage = storage
        self.model_name = model_name
        self.max_model_len = max_model_len
        self.tokenizer = tokenizer
        self.api_key = api_key.encode() if api_key else None
        self.read_timeout = read_timeout
        self.max_body = min(BODY_MAX_BYTES, BODY_BASE_BYTES + BODY_BYTES_PER_TOKEN * max_model_len)
        self.started = int(time.time())
        #: The generation loop (serving.hf.generation.GenerationWorker): max_tokens > 1 and chats.
        self.gen = None
        self._active = 0
        self._idle = threading.Condition()

    @contextmanager
    def tracking(self):
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being handled (at shutdown: let handlers send their answers)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)


class HTTPError(Exception):
    def __init__(self, code: int, message: str, kind: str = "BadRequestError") -> None:
        super().__init__(message)
        self.code, self.message, self.kind = code, message, kind


class Handler(BaseHTTPRequestHandler):
    server: HiddenStatesHTTPServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.timeout = self.server.read_timeout  # socket timeout: a slow client cannot hold a thread
        super().setup()

    def log_message(self, fmt, *args) -> None:  # quiet: one line per request is too much for server.log
        pass

    def _send(self, code: int, obj: Any = None, text: Optional[str] = None, headers: Optional[dict] = None) -> None:
        if text is not None:
            body, ctype = text.encode(), "text/plain; version=0.0.4; charset=utf-8"
        else:
            body, ctype = json.dumps(obj).encode(), "application/json"
        self._answered = True
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, code: int, message: str, kind: str = "BadRequestError", headers: Optional[dict] = None) -> None:
        self._send(code, {"error": {"message": message, "type": kind, "code": code}}, headers=headers)

    # ------------------------------------------------------------ dispatch: every request gets an answer
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def _dispatch(self, method: str) -> None:
        self._answered = False
        self._body_read = method not in ("POST", "PUT", "PATCH")
        with self.server.tracking():
            try:
                self._route(method)
            except HTTPError as e:
                self._fail(e.code, e.message, e.kind)
            except TimeoutError:
                self._fail(408, f"the request was not received within {self.server.read_timeout:.0f} s",
                           "RequestTimeoutError")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            except Exception as e:  # noqa: BLE001 - MemoryError, RecursionError, bugs: answered, not dropped
                self._fail(500, f"internal error: {type(e).__name__}: {e}"[:500], "InternalServerError")

    def _fail(self, code: int, message: str, kind: str) -> None:
        if not self._body_read:
            self.close_connection = True  # an unread body would be taken for the next request
        if self._answered:
            self.close_connection = True
            return
        try:
            self._error(code, message, kind, {"WWW-Authenticate": "Bearer"} if code == 401 else None)
        except OSError:
            self.close_connection = True

    def _route(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/v1") and not self._authorized():
            raise HTTPError(401, "Unauthorized: this server requires an API key (header Authorization: Bearer "
                                 "<key>). Fix: set the variable named by hidden_states.api_key_env (--api-key-env) "
                                 "to the server's key", "AuthenticationError")
        allowed = ROUTES.get(path)
        if allowed is None:
            raise HTTPError(404, f"no route {path}", "NotFoundError")
        if method not in allowed:
            raise HTTPError(405, f"{method} {path}: method not allowed (use {', '.join(allowed)})",
                            "MethodNotAllowedError")
        s = self.server
        if path == "/health":
            self._send(200, {})
        elif path == "/metrics":
            self._send(200, text=render_metrics(s.worker.metrics, s.model_name))
        elif path == "/v1/models":
            self._send(200, {"object": "list", "data": [{
                "id": s.model_name, "object": "model", "created": s.started, "owned_by": "speculators-tui",
                "root": s.model_name, "max_model_len": s.max_model_len}]})
        elif path == "/v1/chat/completions":
            self._generate(self._read_json(), chat=True)
        else:
            self._completions(self._read_json())

    def _authorized(self) -> bool:
        key = self.server.api_key
        if key is None:
            return True
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key)

    def _read_json(self) -> Any:
        if self.headers.get("Transfer-Encoding"):
            raise HTTPError(400, "Transfer-Encoding is not supported: send the body with a Content-Length")
        lengths = self.headers.get_all("Content-Length") or []
        if len(set(lengths)) > 1:
            raise HTTPError(400, f"conflicting Content-Length headers {lengths}")
        raw_len = lengths[0].strip() if lengths else "0"
        if not (raw_len.isascii() and raw_len.isdigit()):
            raise HTTPError(400, f"invalid Content-Length {raw_len[:40]!r}: expected a non-negative integer")
        length = int(raw_len)
        if length > self.server.max_body:
            raise HTTPError(413, f"request body of {length} bytes is larger than this server accepts "
                                 f"({self.server.max_body} bytes for --max-model-len {self.server.max_model_len})",
                            "PayloadTooLargeError")
        raw = self.rfile.read(length) if length else b""
        if len(raw) < length:
            raise HTTPError(400, f"request body shorter than its Content-Length ({len(raw)} of {length} bytes)")
        self._body_read = True
        try:
            return json.loads(raw or b"{}")
        except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, too many digits
            raise HTTPError(400, f"invalid JSON body: {type(e).__name__}: {str(e)[:200]}") from None

    def _prompt_ids(self, body: dict) -> list[int]:
        s = self.server
        model = body.get("model")
        if model is not None and not isinstance(model, str):
            raise HTTPError(400, "model: expected a string")
        if model is not None and model != s.model_name:
            raise HTTPError(404, f"The model `{model[:200]}` does not exist (served: {s.model_name}).",
                            "NotFoundError")
        ids = body.get("prompt")
        if isinstance(ids, list) and len(ids) == 1 and isinstance(ids[0], list):
            ids = ids[0]
        if isinstance(ids, str):
            if s.tokenizer is None:
                raise HTTPError(400, "prompt: send token ids (a list of integers); this server has no tokenizer")
            ids = s.tokenizer(ids, add_special_tokens=False)["input_ids"]
        if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise HTTPError(400, "prompt: expected a non-empty list of token ids (integers)")
        vocab = s.worker.engine.vocab_size
        bad = [i for i in ids if not 0 <= i < vocab]
        if bad:
            raise HTTPError(400, f"prompt: token id(s) {[str(i)[:20] for i in bad[:5]]} out of vocabulary range "
                                 f"[0, {vocab})")
        max_tokens = body.get("max_tokens", 1)
        if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool)
                                       or not 1 <= max_tokens <= s.max_model_len):
            raise HTTPError(400, f"max_tokens: expected an integer in [1, {s.max_model_len}] (1: hidden "
                                 f"states and one token; more: a generation), got {str(max_tokens)[:40]}")
        if len(ids) + 1 > s.max_model_len:
            raise HTTPError(400, f"This model's maximum context length is {s.max_model_len} tokens. However, "
                                 f"your request has {len(ids)} input tokens. Please reduce the length of the "
                                 f"input prompt. (--max-model-len)")
        return ids

    def _completions(self, body: Any) -> None:
        s = self.server
        if not isinstance(body, dict):
            raise HTTPError(400, "the body must be a JSON object")
        ids = self._prompt_ids(body)
        if body.get("max_tokens") not in (None, 1):  # a generation, not a hidden-states extraction
            self._generate(body, chat=False, ids=ids)
            return
        req_id = f"cmpl-{uuid.uuid4().hex}"
        file = str(s.storage / f"{req_id}.safetensors")
        lock_fd = os.open(file + ".lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        job = Job(ids=list(ids), path=file, lock_fd=lock_fd)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            s.worker.submit(job)
        except RuntimeError as e:
            release_job(job, remove=True)
            raise HTTPError(503, str(e), "ServiceUnavailableError") from None
        except BaseException:
            release_job(job, remove=True)
            raise
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
            raise HTTPError(job.code, job.error, "ServiceUnavailableError" if job.code == 503 else "InternalServerError")
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


    def _generate(self, body: Any, chat: bool, ids: Optional[list[int]] = None) -> None:
        """A chat or a multi-token completion through the generation loop (no hidden-states file)."""
        from speculators_core.serving.hf import openai_api as api

        s = self.server
        if not isinstance(body, dict):
            raise HTTPError(400, "the body must be a JSON object")
        if s.gen is None:
            raise HTTPError(400, "this server does not generate text (max_tokens must be 1)")
        model = body.get("model")
        if model is not None and model != s.model_name:
            raise HTTPError(404, f"The model `{str(model)[:200]}` does not exist (served: {s.model_name}).",
                            "NotFoundError")
        try:
            api.check_unsupported(body)
            if chat:
                ids = api.chat_prompt_ids(s.tokenizer, body)
            params = api.sampling_params(body, len(ids), s.max_model_len, s.worker.engine.vocab_size)
        except ValueError as e:
            raise HTTPError(400, str(e)) from None
        try:
            req = api.run(s.gen, ids, params)
        except RuntimeError as e:
            raise HTTPError(503, str(e), "ServiceUnavailableError") from None
        m = s.worker.metrics
        with m.lock:
            if req.error:
                m.failed += 1
            else:
                m.success += 1
        if req.error:
            raise HTTPError(req.code, req.error, "ServiceUnavailableError" if req.code == 503 else "InternalServerError")
        build = api.chat_response if chat else api.completion_response
        self._send(200, build(req, s.model_name, s.tokenizer, bool(body.get("return_token_ids"))))


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

