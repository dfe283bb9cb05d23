"""The hf engine's HTTP face: what the client expects from vLLM's extraction (vLLM's `extract_hidden_states` speculative method).

`GET /health`, `GET /v1/models`, `POST /v1/completions` with a token-id prompt (`return_token_ids`
echoes `prompt_token_ids`; `kv_transfer_params.hidden_states_path` names `<DIR>/<request id>.safetensors`),
and `GET /metrics` with vLLM-named gauges/counters for the bottleneck detector.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

from speculators_core.serving.hf.batcher import ForwardWorker, Job, Metrics, release_job


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
            release_job(job, remove=True)
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

