"""The hf engine's generation loop in-process: a request that arrives mid-decode joins the running
batch (continuous batching) and every answer equals the one it gets alone; sampling filters."""

from __future__ import annotations

import time

import pytest


@pytest.fixture(scope="module")
def worker(tiny_target):
    from speculators_core.serving.hf.batcher import Metrics
    from speculators_core.serving.hf.generation import GenerationWorker
    from speculators_core.serving.hf.model import HiddenStatesModel

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one OpenMP thread: no spinning against the other test processes
    engine = HiddenStatesModel(str(tiny_target), [2, 4, 5, 8], device="cpu", dtype="fp32")
    w = GenerationWorker(engine, Metrics(), {2}, 512, max_num_seqs=8)
    yield w
    w.stop()
    torch.set_num_threads(threads)


def _req(prompt, n, **kw):
    from speculators_core.serving.hf.generation import GenRequest, SamplingParams

    return GenRequest(prompt=prompt, params=SamplingParams(max_tokens=n, **{"temperature": 0.0, **kw}))


def _alone(worker, prompt, n, **kw):
    r = _req(prompt, n, **kw)
    worker.submit(r)
    assert r.done.wait(120) and r.error is None, r.error
    return r.output


def test_a_late_request_joins_the_running_batch(worker):
    long_p, short_p = list(range(20, 90)), list(range(300, 310))
    want_long, want_short = _alone(worker, long_p, 48), _alone(worker, short_p, 3)
    a = _req(long_p, 48)
    worker.submit(a)
    deadline = time.monotonic() + 60
    while len(a.output) < 3 and time.monotonic() < deadline:
        time.sleep(0.002)
    b = _req(short_p, 3)
    worker.submit(b)
    assert b.done.wait(60)
    assert not a.done.is_set(), "the short request waited for the long one"  # it joined mid-decode
    assert a.done.wait(120)
    assert b.output == want_short and a.output == want_long
    assert a.finish_reason == "length" and len(a.output) == 48


def test_several_at_once_equal_each_alone(worker):
    prompts = [list(range(10 + i, 10 + i + 8 + 13 * i)) for i in range(4)]
    want = [_alone(worker, p, 10) for p in prompts]
    reqs = [_req(p, 10) for p in prompts]
    for r in reqs:
        worker.submit(r)
    assert all(r.done.wait(120) for r in reqs)
    assert [r.output for r in reqs] == want


def test_seeded_sampling_repeats_and_filters_narrow_to_greedy(worker):
    p = list(range(40, 60))
    assert _alone(worker, p, 8, temperature=1.0, seed=5) == _alone(worker, p, 8, temperature=1.0, seed=5)
    greedy = _alone(worker, p, 8)
    assert _alone(worker, p, 8, temperature=1.0, top_k=1, seed=1) == greedy
    assert _alone(worker, p, 8, temperature=1.0, top_p=1e-6, seed=2) == greedy


def test_stop_ids_end_the_answer(worker):
    p = list(range(40, 60))
    greedy = _alone(worker, p, 8)
    r = _req(p, 8, stop_token_ids=(greedy[2],))
    worker.submit(r)
    assert r.done.wait(60)
    cut = greedy.index(greedy[2]) + 1
    assert r.output == greedy[:cut] and r.finish_reason == "stop" and r.stop_reason == greedy[2]
