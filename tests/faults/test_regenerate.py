"""Fault matrix, stage 0 (regenerate): bad sources, unreachable or hostile servers, and outputs that
must not be resumed. Each is a clear error naming the file, line, flag or URL, and the fix."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHAT = {"messages": [{"role": "user", "content": "Why is the sky blue?"}, {"role": "assistant", "content": "Rayleigh."}]}


def regen(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "speculators_core.regenerate", *args], capture_output=True,
                          text=True, cwd=str(REPO), timeout=timeout)


def jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


class Hostile:
    """A server that lists a model and answers chats: `mode` = "500" (always an internal error), "no-ids"
    (a plain OpenAI answer without token ids) or "ok" (a well-formed answer after 0.2 s)."""

    def __init__(self, mode: str) -> None:
        outer = self
        self.chats = 0

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._send(200, {"data": [{"id": "hostile"}]})

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.chats += 1
                if mode == "500":
                    self._send(500, {"error": {"message": "boom"}})
                elif mode == "ok":  # a slow, well-formed answer: several are in flight at once
                    import time

                    time.sleep(0.2)
                    self._send(200, {"prompt_token_ids": [1, 2, 3], "choices": [{
                        "message": {"role": "assistant", "content": "ok"}, "token_ids": [7, 8],
                        "finish_reason": "stop"}]})
                else:
                    self._send(200, {"choices": [{"message": {"role": "assistant", "content": "hi"}}]})

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/v1"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


@pytest.mark.fault("client")
def test_unreachable_endpoint_names_the_url_and_the_fix(tmp_path):
    from tests.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    r = regen("--endpoint", url, "--data", str(jsonl(tmp_path / "d.jsonl", [CHAT])), "--output", str(tmp_path / "o.jsonl"))
    assert r.returncode == 2, r.stderr
    assert url in r.stderr and "no server answered" in r.stderr
    assert "fix: start the target's server first" in r.stderr
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.fault("data")
def test_a_bad_source_line_names_file_and_line(tmp_path):
    src = jsonl(tmp_path / "d.jsonl", [CHAT, '{"messages": [{"role": "user"'])
    r = regen("--endpoint", "http://127.0.0.1:9/v1", "--data", str(src), "--output", str(tmp_path / "o.jsonl"))
    assert r.returncode == 2
    assert f"{src}:2: unreadable JSON line" in r.stderr and "fix: correct or delete that line" in r.stderr


@pytest.mark.fault("data")
def test_bad_flags_are_usage_errors(tmp_path):
    src = str(jsonl(tmp_path / "d.jsonl", [CHAT]))
    r = regen("--endpoint", "http://127.0.0.1:9/v1", "--data", src, "--output", str(tmp_path / "o.jsonl"),
              "--chat-template-kwargs", "{enable_thinking: false}")
    assert r.returncode == 2 and "--chat-template-kwargs: not JSON" in r.stderr and "enable_thinking" in r.stderr
    r = regen("--endpoint", "127.0.0.1:9", "--data", src, "--output", str(tmp_path / "o.jsonl"))
    assert r.returncode == 2 and "--endpoint '127.0.0.1:9': not an http(s) URL" in r.stderr
    r = regen("--endpoint", "http://127.0.0.1:9/v1", "--data", str(tmp_path / "missing.jsonl"), "--output",
              str(tmp_path / "o.jsonl"))
    assert r.returncode == 2 and "missing.jsonl: no such file or directory" in r.stderr


@pytest.mark.fault("data")
def test_resume_refuses_an_output_of_other_settings_or_another_file(hf_hidden_states_server, tmp_path):
    src = str(jsonl(tmp_path / "d.jsonl", [CHAT]))
    out = tmp_path / "o.jsonl"
    base = ("--endpoint", hf_hidden_states_server.url, "--data", src, "--output", str(out), "--max-tokens", "4")
    assert regen(*base).returncode == 0
    r = regen(*base)  # exists, no --resume
    assert r.returncode == 2 and "already exists" in r.stderr and "--resume" in r.stderr and "--overwrite" in r.stderr
    r = regen(*base[:-1], "5", "--resume")
    assert r.returncode == 2, r.stderr
    assert f"{out}:1: --resume of an output written with other settings (max_tokens: 4 in the file, 5 now)" in r.stderr
    assert "--overwrite" in r.stderr
    other = jsonl(tmp_path / "other.jsonl", [CHAT])  # a source file given as the output by mistake
    r = regen(*base[:5], str(other), "--resume")
    assert r.returncode == 2 and f"{other}:1: not a row written by regenerate" in r.stderr
    assert json.loads(other.read_text()) == CHAT  # untouched


@pytest.mark.fault("serving")
def test_prompts_the_server_rejects_are_listed_not_dropped_silently(hf_hidden_states_server, tmp_path):
    long = {"messages": [{"role": "user", "content": "word " * 2000}, {"role": "assistant", "content": "x"}]}
    src = jsonl(tmp_path / "d.jsonl", [CHAT, long])
    r = regen("--endpoint", hf_hidden_states_server.url, "--data", str(src), "--output", str(tmp_path / "o.jsonl"),
              "--max-tokens", "4")
    assert r.returncode == 0, r.stderr
    assert f"rejected by the server: {src}:2: HTTP 400" in r.stderr and "maximum context length" in r.stderr
    assert "1 rows rejected" in r.stderr
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 1


@pytest.mark.fault("client")
def test_a_failing_server_is_retried_then_reported(tmp_path):
    srv = Hostile("500")
    try:
        src = str(jsonl(tmp_path / "d.jsonl", [CHAT, CHAT]))
        r = regen("--endpoint", srv.url, "--data", src, "--output", str(tmp_path / "o.jsonl"), "--retries", "2")
    finally:
        srv.close()
    assert r.returncode == 1, r.stderr
    assert srv.chats == 4  # 2 rows x 2 attempts
    assert "2 rows failed after retries; run the same command with --resume" in r.stderr
    assert "HTTP 500: boom" in r.stderr


@pytest.mark.fault("client")
def test_a_server_without_token_ids_is_a_clear_error(tmp_path):
    srv = Hostile("no-ids")
    try:
        src = str(jsonl(tmp_path / "d.jsonl", [CHAT]))
        r = regen("--endpoint", srv.url, "--data", src, "--output", str(tmp_path / "o.jsonl"))
    finally:
        srv.close()
    assert r.returncode == 2, r.stderr
    assert "no token ids" in r.stderr and "fix: use vLLM >= 0.10 or the built-in hf engine" in r.stderr


@pytest.mark.fault("client")
def test_endpoints_share_the_load_and_a_dead_one_is_skipped(tmp_path):
    from tests.conftest import free_port

    a, b = Hostile("ok"), Hostile("ok")
    dead = f"http://127.0.0.1:{free_port()}/v1"
    try:
        src = str(jsonl(tmp_path / "d.jsonl", [CHAT] * 12))
        r = regen("--endpoint", a.url, "--endpoint", dead, "--endpoint", b.url, "--data", src, "--output",
                  str(tmp_path / "o.jsonl"), "--concurrency", "4")
    finally:
        a.close()
        b.close()
    assert r.returncode == 0, r.stderr
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 12
    assert a.chats >= 3 and b.chats >= 3 and a.chats + b.chats == 12  # least in-flight first: both busy


@pytest.mark.fault("data")
def test_ctrl_c_keeps_every_row_written(hf_hidden_states_server, tmp_path):
    import os
    import signal
    import time

    out = tmp_path / "o.jsonl"
    args = ["--endpoint", hf_hidden_states_server.url, "--data", "builtin:demo-chat", "--output", str(out),
            "--max-samples", "10", "--max-tokens", "32", "--concurrency", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "speculators_core.regenerate", *args], cwd=str(REPO),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not (out.exists() and out.read_text().count("\n")):
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "interrupted; every row written is kept (run again with --resume)" in err
    kept = [json.loads(x) for x in out.read_text().splitlines()]
    assert 1 <= len(kept) < 10
    r = regen(*args, "--resume")
    assert r.returncode == 0, r.stderr
    assert len({json.loads(x)["source"] for x in out.read_text().splitlines()}) == 10
