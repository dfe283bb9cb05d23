"""The validation replay (training.replay) against a brute-force speculative-decoding simulation:
a toy greedy target (a fixed continuation per prompt) and a toy drafter that is right at the
(column, step) pairs a random error table allows. The simulation runs vLLM's loop literally
(prefill -> bonus token -> K drafts -> verify -> accepted + bonus, until max_tokens), and must
count exactly what the replay derives from the teacher-forced per-step hits."""

from __future__ import annotations

import random

import torch

from speculators_core.training.replay import leading_correct, replay, replay_batch, response_spans


def simulate(prompt_len: int, cont: list[int], wrong: dict, K: int) -> tuple[int, int, list[int]]:
    """vLLM greedy spec decoding with a target whose greedy reply is `cont` (len = max_tokens).
    The drafter, asked for step k after the verified token at index i (column i-1), proposes the
    true next token unless wrong[(i-1, k)] or one of its earlier drafts in this chain was wrong."""
    # vLLM counts accepted drafts before cutting the reply at max_tokens: the target's greedy token
    # one past the reply (what the data's last column is trained on) can still be accepted;
    # further ones are unknown to the teacher-forced data (counted as rejected on both sides)
    cont_ext = cont + [cont[-1] + 1]
    out: list[int] = [cont[0]]  # prefill gives the first reply token
    drafts = accepted = 0
    per_pos = [0] * K
    while len(out) < len(cont):
        last = prompt_len + len(out) - 1  # index of the last verified token
        col = last - 1
        proposal, ok = [], True
        for k in range(K):
            true = cont_ext[len(out) + k] if len(out) + k < len(cont_ext) else -1
            ok = ok and not wrong.get((col, k), False) and true != -1
            proposal.append(true if ok else -2)
        # verify: the target's greedy tokens after out
        a = 0
        for k in range(K):
            if len(out) + k < len(cont_ext) and proposal[k] == cont_ext[len(out) + k]:
                a += 1
            else:
                break
        drafts += 1
        accepted += a
        for k in range(a):
            per_pos[k] += 1
        out += cont[len(out):len(out) + a + 1]
    return drafts, accepted, per_pos


def teacher_forced_hits(prompt_len: int, n_reply: int, wrong: dict, K: int):
    """Per step k a [1, T-k] bool tensor over the training columns (column j = token j+1), as the
    forward computes it: step k at column j right, and column j+k a reply column."""
    T = prompt_len + n_reply - 1  # input_ids[1:]
    valid = torch.tensor([j + 1 >= prompt_len for j in range(T)])
    hits = []
    for k in range(K):
        n = T - k
        h = torch.tensor([bool(valid[j + k]) and not wrong.get((j, k), False) for j in range(n)])
        hits.append(h[None])
    return hits, valid[None]


def test_replay_matches_a_brute_force_simulation_of_vllms_greedy_loop():
    rng = random.Random(0)
    for trial in range(200):
        K = rng.randint(1, 5)
        P, n = rng.randint(2, 8), rng.randint(1, 40)
        p_wrong = rng.random()
        T = P + n - 1
        wrong = {(j, k): rng.random() < p_wrong for j in range(T) for k in range(K)}
        cont = list(range(100, 100 + n))
        d, a, pp = simulate(P, cont, wrong, K)
        hits, valid = teacher_forced_hits(P, n, wrong, K)
        doc = torch.zeros_like(valid, dtype=torch.long)
        got = replay_batch(hits, valid.long(), doc, K)
        assert (got.num_drafts, got.num_accepted_tokens, got.accepted_per_pos) == (d, a, pp), (trial, K, P, n)


def test_leading_correct_counts_only_leading_steps():
    hits = [torch.tensor([[1, 0, 1, 1]]).bool(), torch.tensor([[1, 1, 1]]).bool(), torch.tensor([[0, 1]]).bool()]
    assert leading_correct(hits).tolist() == [[2, 0, 2, 1]]


def test_spans_split_at_documents_and_gaps():
    valid = torch.tensor([0, 1, 1, 0, 1, 1, 1, 1, 0])
    docs = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, -1])
    assert response_spans(valid, docs) == [(1, 3), (4, 6), (6, 8)]


def test_replay_visits_hard_stretches_more_than_the_estimate_assumes():
    # an easy stretch (all right) then a hard one (step 0 wrong): the estimate counts columns evenly
    K = 3
    run = [3] * 20 + [0] * 20
    r = replay(run, [(0, 40)], K)
    estimate = 1 + sum(sum(1 for x in run if x > k) / len(run) for k in range(K))
    assert r.acceptance_length < estimate
    assert r.num_drafts == 5 + 19 and r.num_accepted_tokens == 15
