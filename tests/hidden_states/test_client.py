"""The hidden-states client against a fake server started as a real subprocess."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
import torch

from speculators_core.hidden_states import (
    HiddenStatesClient,
    HiddenStatesError,
    ServerUnavailable,
    SyncHiddenStatesClient,
    UnsafePath,
    cache_path,
    load_cached,
)
from tests.vllm_fixtures import free_port

from tests.hidden_states.fake_server import expected


def _ids(i: int, n: int = 12) -> list[int]:
    return [(i * 7 + k) % 500 + 1 for k in range(n + i % 5)]


def _leftovers(d: Path) -> list[str]:
    return sorted(os.listdir(d))


async def test_fetch_concurrent_delete_mode(fake_server):
    url, storage = fake_server("ok", lock_delay=0.2)
    async with HiddenStatesClient([url], str(storage), max_in_flight=4, max_files_on_disk=6,
                                  num_layers=3, hidden_size=8, dtype="float32") as c:
        got = await asyncio.gather(*(c.fetch(i, _ids(i)) for i in range(20)))
        stats = c.stats()
    for i, hs in enumerate(got):
        assert hs.token_ids.tolist() == _ids(i)
        assert torch.equal(hs.hidden_states, expected(_ids(i)))
    assert _leftovers(storage) == []  # no file, no lock left behind
    assert stats["hs_requests"] == 20 and stats["hs_errors"] == 0 and stats["hs_in_flight"] == 0
    assert stats["hs_mb"] > 0 and stats["hs_latency_s"] >= 0.2  # waited on the lock
    assert c.stats()["hs_requests"] == 0  # reset


async def test_files_on_disk_bounded(fake_server):
    url, storage = fake_server("ok", lock_delay=0.1)
    peak = 0
    done = False

    async def watch():
        nonlocal peak
        while not done:
            # a writer's hidden temp file (safetensors writes `.tmpXXXX`, then renames) belongs to a
            # sample already counted by its `.lock`: count samples, not the writer's scratch files
            stems = {n.split(".")[0] for n in os.listdir(storage) if not n.startswith(".")}
            peak = max(peak, len(stems))
            await asyncio.sleep(0.005)

    async with HiddenStatesClient([url], str(storage), max_in_flight=8, max_files_on_disk=2) as c:
        w = asyncio.create_task(watch())
        await asyncio.gather(*(c.fetch(i, _ids(i)) for i in range(10)))
        done = True
        await w
    assert 1 <= peak <= 2


async def test_cache_mode_moves_file(fake_server, tmp_path):
    url, storage = fake_server("ok")
    cache = tmp_path / "cache"
    async with HiddenStatesClient([url], str(storage)) as c:
        hs = await c.fetch(7, _ids(7), cache_dir=str(cache))
    assert cache_path(cache, 7) == cache / "hs_7.safetensors" and cache_path(cache, 7).exists()
    again = load_cached(cache, 7)
    assert torch.equal(again.hidden_states, hs.hidden_states) and again.token_ids.tolist() == _ids(7)
    assert load_cached(cache, 8) is None
    assert _leftovers(storage) == []


@pytest.mark.parametrize("escape", ["/etc/passwd", "../x", "{storage}/../outside.safetensors", "{storage}"])
async def test_path_outside_storage_is_refused(fake_server, tmp_path, escape):
    storage = tmp_path / "deep" / "hs"
    sentinel = tmp_path / "deep" / "x"
    sentinel.parent.mkdir(parents=True)
    sentinel.write_text("keep me")
    outside = tmp_path / "deep" / "outside.safetensors"
    outside.write_text("keep me too")
    url, storage = fake_server("escape", storage=storage, escape_path=escape.format(storage=storage))
    before = os.path.getsize("/etc/passwd")
    cwd = os.getcwd()
    os.chdir(storage)  # "../x" resolves next to the storage dir: must still be refused
    try:
        async with HiddenStatesClient([url], str(storage)) as c:
            with pytest.raises(UnsafePath, match="outside the configured storage directory"):
                await c.fetch(0, _ids(0))
            assert c.stats()["hs_errors"] == 1
    finally:
        os.chdir(cwd)
    assert os.path.getsize("/etc/passwd") == before
    assert sentinel.read_text() == "keep me" and outside.read_text() == "keep me too"


async def test_symlink_out_of_storage_is_refused(fake_server, tmp_path):
    storage = tmp_path / "hs"
    storage.mkdir()
    target = tmp_path / "secret.safetensors"
    target.write_text("secret")
    (storage / "link.safetensors").symlink_to(target)
    url, _ = fake_server("escape", storage=storage, escape_path=str(storage / "link.safetensors"))
    async with HiddenStatesClient([url], str(storage)) as c:
        with pytest.raises(UnsafePath):
            await c.fetch(0, _ids(0))
    assert target.read_text() == "secret"


async def test_wrong_ids_rejected_and_cleaned(fake_server):
    url, storage = fake_server("wrong-ids", lock_delay=0.1)
    async with HiddenStatesClient([url], str(storage)) as c:
        with pytest.raises(HiddenStatesError, match="tokenised the prompt differently"):
            await c.fetch(0, _ids(0))
    assert _leftovers(storage) == []


async def test_nan_rejected_and_cleaned(fake_server):
    url, storage = fake_server("nan")
    async with HiddenStatesClient([url], str(storage)) as c:
        with pytest.raises(HiddenStatesError, match="NaN or Inf"):
            await c.fetch(0, _ids(0))
    assert _leftovers(storage) == []


async def test_shape_checks(fake_server):
    url, storage = fake_server("ok")
    async with HiddenStatesClient([url], str(storage), num_layers=4) as c:
        with pytest.raises(HiddenStatesError, match="3 layers in the file, expected 4"):
            await c.fetch(0, _ids(0))
    assert _leftovers(storage) == []


async def test_no_lock_file_waits_for_file(fake_server):
    url, storage = fake_server("nolock", lock_delay=0.3)
    async with HiddenStatesClient([url], str(storage)) as c:
        hs = await c.fetch(1, _ids(1))
    assert torch.equal(hs.hidden_states, expected(_ids(1)))
    assert _leftovers(storage) == []


async def test_5xx_is_retried(fake_server):
    url, storage = fake_server("fail-first", fail_count=2)
    async with HiddenStatesClient([url], str(storage)) as c:
        hs = await c.fetch(3, _ids(3))
    assert hs.token_ids.tolist() == _ids(3)


async def test_4xx_is_a_sample_error(fake_server):
    url, storage = fake_server("400")
    async with HiddenStatesClient([url], str(storage)) as c:
        with pytest.raises(HiddenStatesError, match="HTTP 400: prompt too long"):
            await c.fetch(0, _ids(0))


async def test_dead_endpoint_is_avoided(fake_server):
    url, storage = fake_server("ok")
    dead = f"http://127.0.0.1:{free_port()}/v1"
    async with HiddenStatesClient([dead, url], str(storage), grace_period=30) as c:
        got = await asyncio.gather(*(c.fetch(i, _ids(i)) for i in range(12)))
    assert [g.token_ids.tolist() for g in got] == [_ids(i) for i in range(12)]


async def test_server_gone_fails_after_grace_period(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    t0 = time.monotonic()
    async with HiddenStatesClient([dead], str(tmp_path), grace_period=1.0) as c:
        with pytest.raises(ServerUnavailable, match="grace period"):
            await c.fetch(0, [1, 2, 3])
    assert 1.0 <= time.monotonic() - t0 < 10


async def test_request_timeout_then_unavailable(fake_server):
    url, storage = fake_server("hang")
    t0 = time.monotonic()
    async with HiddenStatesClient([url], str(storage), request_timeout=0.5, grace_period=1.0) as c:
        with pytest.raises(ServerUnavailable, match="ReadTimeout"):
            await c.fetch(0, _ids(0))
    assert 1.0 <= time.monotonic() - t0 < 10


def test_sync_client(fake_server, tmp_path):
    url, storage = fake_server("ok", lock_delay=0.05)
    with SyncHiddenStatesClient(endpoints=[url], storage_dir=str(storage), max_in_flight=2) as c:
        futs = [c.submit(i, _ids(i), cache_dir=str(tmp_path / "c") if i % 2 else None) for i in range(6)]
        res = [f.result(timeout=30) for f in futs]
        assert c.stats()["hs_requests"] == 6
    assert [r.token_ids.tolist() for r in res] == [_ids(i) for i in range(6)]
    assert sorted(os.listdir(tmp_path / "c")) == ["hs_1.safetensors", "hs_3.safetensors", "hs_5.safetensors"]
    assert _leftovers(storage) == []


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="endpoint"):
        HiddenStatesClient([], str(tmp_path))
    with pytest.raises(ValueError, match="expected a URL"):
        HiddenStatesClient(["localhost:8000"], str(tmp_path))
    with pytest.raises(ValueError, match="storage_dir"):
        HiddenStatesClient(["http://127.0.0.1:1/v1"], "")


async def test_not_a_hidden_states_server(tmp_path):
    """A server that is up but is not an OpenAI-style endpoint: a clear error, not a retry loop."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import threading

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("Content-Length", "9")
            self.end_headers()
            self.wfile.write(b"not found")

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        async with HiddenStatesClient([f"http://127.0.0.1:{srv.server_port}"], str(tmp_path)) as c:
            with pytest.raises(HiddenStatesError, match="models: HTTP 404"):
                await c.fetch(0, [1, 2])
    finally:
        srv.shutdown()
        srv.server_close()


async def test_a_sample_whose_writer_died_is_asked_for_again(fake_server):
    """The server answered, then released its lock without a file (killed between the answer and
    the write): the sample is fetched again instead of being skipped."""
    url, storage = fake_server("writer-dies", fail_count=1, lock_delay=0.05)
    async with HiddenStatesClient([url], str(storage)) as c:
        hs = await c.fetch(4, _ids(4))
    assert hs.token_ids.tolist() == _ids(4)
    assert _leftovers(storage) == []


async def test_a_writer_that_always_dies_fails_the_sample_with_the_cause(fake_server):
    url, storage = fake_server("writer-dies", fail_count=100, lock_delay=0.05)
    async with HiddenStatesClient([url], str(storage)) as c:
        with pytest.raises(HiddenStatesError, match=r"row 5: .*released the lock but wrote no file.*\(3 times\)"):
            await c.fetch(5, _ids(5))
