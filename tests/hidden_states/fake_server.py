"""A small fake hidden-states server for client tests (run as a real subprocess).

    python fake_server.py --port P --dir D --mode MODE [--lock-delay S]

Modes: ok (correct files, lock held for --lock-delay s), escape (returns --escape-path as the file),
wrong-ids (returns other prompt_token_ids), nan (writes NaN), fail-first (HTTP 503 for the first
--fail-count requests, then ok), nolock (no lock file, writes after a delay), 400 (refuses),
hang (never answers a completion), from-file (returns the path written in --path-file, formatted with
{dir}), swap-dir (returns <dir>/sub/victim.safetensors, then swaps `sub` for a link to --escape-path
while holding the lock), swap-link (returns a fresh file name, then makes it a link to --escape-path
while holding the lock), fifo-lock (the `.lock` is a FIFO). --api-key K: /v1/* needs `Bearer K`.
Hidden states are deterministic: value = token_id + layer/10 for every hidden unit.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LAYERS, HIDDEN = 3, 8


def expected(ids):
    import torch

    t = torch.tensor(ids, dtype=torch.float32)[:, None, None]
    layer = torch.arange(LAYERS, dtype=torch.float32)[None, :, None] / 10
    return (t + layer).expand(len(ids), LAYERS, HIDDEN).contiguous()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--mode", default="ok")
    p.add_argument("--lock-delay", type=float, default=0.0)
    p.add_argument("--escape-path", default="/etc/passwd")
    p.add_argument("--fail-count", type=int, default=2)
    p.add_argument("--path-file", default="")
    p.add_argument("--api-key", default="")
    a = p.parse_args()
    import numpy as np  # not torch: the fake starts in a fraction of a second
    from safetensors.numpy import save_file

    state = {"n": 0}
    lock = threading.Lock()

    def write(path, ids, lock_fd):
        try:
            time.sleep(a.lock_delay)
            t = np.asarray(ids, dtype=np.float32)[:, None, None]
            layer = np.arange(LAYERS, dtype=np.float32)[None, :, None] / 10
            hs = np.ascontiguousarray(np.broadcast_to(t + layer, (len(ids), LAYERS, HIDDEN)))
            if a.mode == "nan":
                hs[0, 0, 0] = float("nan")
            save_file({"hidden_states": hs, "token_ids": np.asarray(ids, dtype=np.int64)}, path)
        finally:
            if lock_fd is not None:
                os.close(lock_fd)

    class H(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _denied(self):
            if a.api_key and self.path.startswith("/v1") and \
                    self.headers.get("Authorization") != f"Bearer {a.api_key}":
                with lock:
                    state["n"] += 1
                self.close_connection = True
                self._send(401, {"error": "Unauthorized"})
                return True
            return False

        def do_GET(self):
            if self._denied():
                return
            if self.path == "/health":
                self._send(200, {})
            elif self.path == "/count":
                self._send(200, {"n": state["n"]})
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": "fake"}]})
            else:
                self._send(404, {"error": "no"})

        def do_POST(self):
            if self._denied():
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            ids = body["prompt"]
            with lock:
                state["n"] += 1
                n = state["n"]
            if a.mode == "fail-first" and n <= a.fail_count:
                return self._send(503, {"error": {"message": "busy"}})
            if a.mode == "hang":  # never answers (per-request timeout)
                time.sleep(3600)
            if a.mode == "400":
                return self._send(400, {"error": {"message": "prompt too long"}})
            path = os.path.join(a.dir, f"{uuid.uuid4().hex}.safetensors")
            out_ids = list(ids)
            if a.mode == "escape":
                path = a.escape_path
            elif a.mode == "from-file":
                with open(a.path_file) as f:
                    path = json.loads(f.read().replace("{dir}", a.dir))
            elif a.mode in ("swap-dir", "swap-link"):
                return self._swap(ids)
            elif a.mode == "fifo-lock":
                os.mkfifo(path + ".lock")
                write(path, ids, None)
            elif a.mode == "wrong-ids":
                out_ids = [i + 1 for i in ids]
            if a.mode == "writer-dies" and n <= a.fail_count:  # answered, then died before writing
                lock_fd = os.open(path + ".lock", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                threading.Timer(a.lock_delay, os.close, args=(lock_fd,)).start()
            elif a.mode not in ("escape", "from-file", "fifo-lock"):
                lock_fd = None
                if a.mode != "nolock":
                    lock_fd = os.open(path + ".lock", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
                    fcntl.flock(lock_fd, fcntl.LOCK_EX)
                threading.Thread(target=write, args=(path, ids, lock_fd), daemon=True).start()
            self._send(200, {"id": "cmpl", "choices": [{"index": 0, "text": "x", "prompt_token_ids": out_ids}],
                             "kv_transfer_params": {"hidden_states_path": path}})

        def _swap(self, ids):
            """Hand out a path inside the directory, then (lock held) point it outside, then release."""
            if a.mode == "swap-dir":
                sub = os.path.join(a.dir, "sub")
                os.makedirs(sub, exist_ok=True)
                path = os.path.join(sub, os.path.basename(a.escape_path))
            else:
                path = os.path.join(a.dir, f"{uuid.uuid4().hex}.safetensors")
            lock_fd = os.open(path + ".lock", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
            fcntl.flock(lock_fd, fcntl.LOCK_EX)

            def swap():
                time.sleep(a.lock_delay)
                if a.mode == "swap-dir":
                    os.rename(sub, sub + ".old")
                    os.symlink(os.path.dirname(a.escape_path), sub)
                else:
                    os.symlink(a.escape_path, path)
                os.close(lock_fd)

            threading.Thread(target=swap, daemon=True).start()
            self._send(200, {"id": "cmpl", "choices": [{"index": 0, "text": "x", "prompt_token_ids": list(ids)}],
                             "kv_transfer_params": {"hidden_states_path": path}})

    srv = ThreadingHTTPServer(("127.0.0.1", a.port), H)
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
