"""Fault matrix, server side: the built-in `hf` engine under malformed, hostile, slow, unauthenticated
and massively concurrent requests, and stopped mid-request. One real server (tiny target, API key
required) is shared by the module; a few cases start their own.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from speculators_core.hidden_states import SyncHiddenStatesClient
from tests.vllm_fixtures import REPO, free_port, start_server, stop_server, wait_health

KEY = "k3y-for-tests"
ENV = {"HS_TEST_KEY": KEY, "SPECULATORS_HF_READ_TIMEOUT": "1.5"}
AUTH = {"Authorization": f"Bearer {KEY}"}
MAX_LEN = 64


def _argv(tiny_target, port, storage, *extra):
    return [sys.executable, "-m", "speculators_core.hf_server", str(tiny_target), "--port", str(port),
            "--hidden-states-path", str(storage), "--max-model-len", str(MAX_LEN), *extra]


@pytest.fixture(scope="module")
def server(tiny_target, tmp_path_factory):
    work = tmp_path_factory.mktemp("hf-faults")
    port = free_port()
    log = work / "server.log"
    proc = start_server(_argv(tiny_target, port, work / "hs", "--api-key-env", "HS_TEST_KEY"), log, env=ENV)
    try:
        wait_health(f"http://127.0.0.1:{port}/health", proc, 120, log)
        yield port, work / "hs", log
    finally:
        stop_server(proc)


def _raw(port: int, data: bytes, pause: float = 0.0, rest: bytes = b"", shut: bool = False) -> tuple[int, dict]:
    """Send raw bytes, read one HTTP answer: (status, JSON body). Bounded: 15 s."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        try:
            s.sendall(data)
        except OSError:  # the server may answer and close before reading everything
            pass
        if pause:
            time.sleep(pause)
        try:
            if rest:
                s.sendall(rest)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            assert chunk, f"connection closed without an answer (got {buf!r})"
            buf += chunk
        head, body = buf.split(b"\r\n\r\n", 1)
        status = int(head.split()[1])
        length = next(int(v) for k, v in (ln.split(b":", 1) for ln in head.split(b"\r\n")[1:])
                      if k.strip().lower() == b"content-length")
        while len(body) < length:
            chunk = s.recv(65536)
            assert chunk, "answer cut short"
            body += chunk
    return status, json.loads(body[:length])


def _post(path: str, body: bytes, headers: str = "", auth: bool = True) -> bytes:
    h = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    if auth:
        h += f"Authorization: Bearer {KEY}\r\n"
    if "Content-Length" not in headers and "chunked" not in headers:
        h += f"Content-Length: {len(body)}\r\n"
    return (h + headers + "\r\n").encode() + body


def _body(prompt=(1, 2, 3), **kw) -> bytes:
    return json.dumps({"model": kw.pop("model", "builtin"), "prompt": prompt, "max_tokens": 1, **kw}).encode()


def _take(path: str) -> None:
    """What a client does with a returned file: wait for the writer's lock, then delete file and lock."""
    lock = path + ".lock"
    if os.path.exists(lock):
        fd = os.open(lock, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_SH)
        os.close(fd)
        os.unlink(lock)
    os.unlink(path)


def _model(port):
    return httpx.get(f"http://127.0.0.1:{port}/v1/models", headers=AUTH).json()["data"][0]["id"]


BAD = {  # name: (raw request (given the model id), expected status)
    "prompt-dict": (lambda m: _post("/v1/completions", _body({"a": 1}, model=m)), 400),
    "prompt-floats": (lambda m: _post("/v1/completions", _body([1.5, 2], model=m)), 400),
    "prompt-bools": (lambda m: _post("/v1/completions", _body([True, False], model=m)), 400),
    "prompt-nested": (lambda m: _post("/v1/completions", _body([[1], [2]], model=m)), 400),
    "prompt-null": (lambda m: _post("/v1/completions", _body(None, model=m)), 400),
    "prompt-too-long": (lambda m: _post("/v1/completions", _body(list(range(1, MAX_LEN + 5)), model=m)), 400),
    "prompt-empty": (lambda m: _post("/v1/completions", _body([], model=m)), 400),
    "negative-id": (lambda m: _post("/v1/completions", _body([-1, 2], model=m)), 400),
    "huge-id": (lambda m: _post("/v1/completions", _body([10 ** 30], model=m)), 400),
    "huge-digits": (lambda m: _post("/v1/completions", b'{"prompt": [' + b"9" * 5000 + b"]}"), 400),
    "infinite-id": (lambda m: _post("/v1/completions", b'{"prompt": [1e999]}'), 400),
    "unknown-model": (lambda m: _post("/v1/completions", _body(model="other")), 404),
    "model-int": (lambda m: _post("/v1/completions", _body(model=123)), 400),
    "max-tokens-negative": (lambda m: _post("/v1/completions", _body(model=m, max_tokens=-1)), 400),
    "max-tokens-string": (lambda m: _post("/v1/completions", _body(model=m, max_tokens="1")), 400),
    "max-tokens-huge": (lambda m: _post("/v1/completions", _body(model=m, max_tokens=10 ** 20)), 400),
    "body-array": (lambda m: _post("/v1/completions", b"[1, 2, 3]"), 400),
    "body-invalid-json": (lambda m: _post("/v1/completions", b'{"prompt": [1,'), 400),
    "body-non-utf8": (lambda m: _post("/v1/completions", b'{"prompt": "\xff\xfe\xfd"}'), 400),
    "body-deep-nesting": (lambda m: _post("/v1/completions", b"[" * 20000 + b"]" * 20000), 400),
    "body-too-large": (lambda m: _post("/v1/completions", b"{", "Content-Length: 4000000\r\n"), 413),
    "length-negative": (lambda m: _post("/v1/completions", b"{}", "Content-Length: -5\r\n"), 400),
    "length-not-a-number": (lambda m: _post("/v1/completions", b"{}", "Content-Length: abc\r\n"), 400),
    "length-twice": (lambda m: _post("/v1/completions", b"{}", "Content-Length: 2\r\nContent-Length: 9\r\n"), 400),
    "chunked": (lambda m: _post("/v1/completions", b"2\r\n{}\r\n0\r\n\r\n", "Transfer-Encoding: chunked\r\n"), 400),
    "method-put": (lambda m: _post("/v1/completions", _body(model=m)).replace(b"POST", b"PUT", 1), 405),
    "method-delete": (lambda m: f"DELETE /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}"
                                f"\r\n\r\n".encode(), 405),
    "method-get-completions": (lambda m: f"GET /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}"
                                         f"\r\n\r\n".encode(), 405),
    "unknown-path-get": (lambda m: b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    "unknown-path-post": (lambda m: _post("/v1/nope", _body(model=m)), 404),
}


@pytest.mark.fault("serving")
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_request_gets_a_json_answer(server, case):
    port, storage, _ = server
    make, code = BAD[case]
    status, body = _raw(port, make(_model(port)))
    assert status == code and isinstance(body["error"]["message"], str), body
    assert os.listdir(storage) == []
    assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200  # still serving


@pytest.mark.fault("serving")
def test_body_shorter_than_its_length(server):
    port, storage, _ = server
    status, body = _raw(port, _post("/v1/completions", b"{}", "Content-Length: 50\r\n"), shut=True)
    assert status == 400 and "shorter" in body["error"]["message"]


@pytest.mark.fault("serving")
def test_slow_client_gets_408(server):
    port, storage, _ = server
    t0 = time.monotonic()
    status, body = _raw(port, _post("/v1/completions", b'{"pro', "Content-Length: 200\r\n"))
    assert status == 408 and 1.0 < time.monotonic() - t0 < 10
    assert os.listdir(storage) == []


@pytest.mark.fault("serving")
def test_256_concurrent_requests_all_succeed(server):
    port, storage, _ = server
    model = _model(port)

    async def go():
        limits = httpx.Limits(max_connections=300, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, headers=AUTH, timeout=120) as c:
            async def one(i):
                return await c.post(f"http://127.0.0.1:{port}/v1/completions",
                                    json={"model": model, "prompt": [1 + i % 50, 2, 3], "max_tokens": 1})
            return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(256)), return_exceptions=True), 150)

    results = asyncio.run(go())
    errors = [r for r in results if not isinstance(r, httpx.Response) or r.status_code != 200]
    assert not errors, f"{len(errors)} of 256 failed: {errors[:3]}"
    for r in results:
        _take(r.json()["kv_transfer_params"]["hidden_states_path"])
    assert os.listdir(storage) == []


# ---------------------------------------------------------------------- API key (finding 10)
UNAUTHORIZED = {
    "models-no-header": b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n",
    "completions-no-header": _post("/v1/completions", _body(), auth=False),
    "wrong-key": _post("/v1/completions", _body(), "Authorization: Bearer nope\r\n", auth=False),
    "basic-scheme": _post("/v1/completions", _body(), f"Authorization: Basic {KEY}\r\n", auth=False),
    "key-prefix": _post("/v1/completions", _body(), f"Authorization: Bearer {KEY[:-1]}\r\n", auth=False),
    "key-longer": _post("/v1/completions", _body(), f"Authorization: Bearer {KEY}x\r\n", auth=False),
}


@pytest.mark.fault("security")
@pytest.mark.parametrize("case", sorted(UNAUTHORIZED))
def test_v1_requires_the_key(server, case):
    port, storage, _ = server
    status, body = _raw(port, UNAUTHORIZED[case])
    assert status == 401 and "API key" in body["error"]["message"] and KEY not in json.dumps(body)
    assert os.listdir(storage) == []


@pytest.mark.fault("security")
@pytest.mark.parametrize("path", ["/health", "/metrics"])
def test_health_and_metrics_stay_open(server, path):
    assert httpx.get(f"http://127.0.0.1:{server[0]}{path}").status_code == 200


@pytest.mark.fault("security")
def test_client_with_the_key_gets_hidden_states(server):
    port, storage, _ = server
    with SyncHiddenStatesClient([f"http://127.0.0.1:{port}/v1"], str(storage), api_key=KEY) as c:
        hs = c.fetch(0, [1, 2, 3, 4])
    assert hs.token_ids.tolist() == [1, 2, 3, 4] and hs.hidden_states.shape[0] == 4
    assert os.listdir(storage) == []


@pytest.mark.fault("security")
@pytest.mark.parametrize("value", [None, ""])
def test_unset_key_variable_is_a_clear_exit(tiny_target, tmp_path, value):
    env = {k: v for k, v in os.environ.items() if k != "HS_NO_KEY"}
    if value is not None:
        env["HS_NO_KEY"] = value
    r = subprocess.run(_argv(tiny_target, 1, tmp_path / "hs", "--api-key-env", "HS_NO_KEY"), capture_output=True,
                       text=True, timeout=60, cwd=REPO, env=env)
    assert r.returncode == 2 and "HS_NO_KEY" in r.stderr and "unset or empty" in r.stderr


@pytest.mark.fault("security")
@pytest.mark.parametrize("value", ["sk-1\r", " sk-1", "sk-1\n"])
def test_key_with_surrounding_whitespace_is_a_clear_exit(tiny_target, tmp_path, value):
    # a CRLF .env file leaves "\r" on the key: the clients would send it and every request get a 401
    env = dict(os.environ, HS_WS_KEY=value)
    r = subprocess.run(_argv(tiny_target, 1, tmp_path / "hs", "--api-key-env", "HS_WS_KEY"), capture_output=True,
                       text=True, timeout=60, cwd=REPO, env=env)
    assert r.returncode == 2 and "HS_WS_KEY" in r.stderr and "whitespace" in r.stderr
    assert "sk-1" not in r.stderr  # the key itself is never printed


@pytest.mark.fault("security")
def test_non_loopback_without_key_warns(tiny_target, tmp_path):
    # bad layer ids: the server exits right after its checks, before binding anything
    r = subprocess.run(_argv(tiny_target, 1, tmp_path / "hs", "--host", "0.0.0.0", "--target-layer-ids", "2", "2"),
                       capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 2 and "warning" in r.stderr and "0.0.0.0" in r.stderr and "--api-key-env" in r.stderr


# ------------------------------------------------------------------------- stop mid-request
@pytest.mark.fault("serving")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_request_answers_or_closes_and_leaves_no_files(tiny_target, tmp_path, sig):
    port, storage, log = free_port(), tmp_path / "hs", tmp_path / "hf.log"
    proc = start_server(_argv(tiny_target, port, storage), log)
    try:
        wait_health(f"http://127.0.0.1:{port}/health", proc, 120, log)

        async def go():
            async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=100)) as c:
                async def one(i):
                    return await c.post(f"http://127.0.0.1:{port}/v1/completions",
                                        json={"prompt": list(range(1, MAX_LEN - 1)), "max_tokens": 1})
                tasks = [asyncio.create_task(one(i)) for i in range(64)]
                await asyncio.sleep(0.3)
                os.killpg(proc.pid, sig)
                return await asyncio.gather(*tasks, return_exceptions=True)

        results = asyncio.run(go())
        assert proc.wait(30) == 0
    finally:
        stop_server(proc)
    for r in results:
        if isinstance(r, httpx.Response):
            assert r.status_code in (200, 503, 500), r.text
            if r.status_code == 200:
                _take(r.json()["kv_transfer_params"]["hidden_states_path"])
            else:
                assert "error" in r.json()
        else:
            assert isinstance(r, httpx.TransportError), repr(r)
    assert os.listdir(storage) == []
