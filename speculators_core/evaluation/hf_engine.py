"""The `hf` engine: greedy speculative decoding in-process, the way vLLM runs an EAGLE-3 drafter.

The target (transformers) verifies; the drafter is loaded from the checkpoint (its config, its
weights, the d2t mapping, the frozen embedding / final norm / lm_head rows from the target) and
proposes a chain of K tokens per step: step 0 over every verified column (the target's auxiliary
hidden states of token j and the embedding of token j+1, at position j+1), then K-1 steps at the
last column only, each fed the previous step's hidden state and the token it drafted, attending
to step 0's keys and to its own earlier steps (the TTT mask the trainer uses). Per verify step it
counts one draft, the leading drafted tokens the target agrees with, and the accepted tokens per
position, as vLLM's scheduler does (before the reply is cut at max_tokens or EOS).

No KV cache (each step recomputes the sequence): meant for small targets and quick checks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F


#: below this many target parameters the CPU engine runs on one thread
SMALL_TARGET_PARAMS = 50_000_000


@dataclass
class Counts:
    num_drafts: int = 0
    num_draft_tokens: int = 0
    num_accepted_tokens: int = 0
    accepted_per_pos: list[int] = field(default_factory=list)
    output_tokens: int = 0
    seconds: float = 0.0


class Drafter:
    def __init__(self, ckpt: Path, verifier: Path, device: torch.device) -> None:
        from speculators_core.model.config import DrafterConfig
        from speculators_core.model.eagle3 import Eagle3Drafter
        from speculators_core.model.verifier import load_verifier_tensors
        from speculators_core.model.vocab import mapping_tables, selected_from_d2t
        from speculators_core.target import load_target
        from speculators_core.training.checkpoint import load_drafter_tensors

        cfg = DrafterConfig.load(ckpt)
        tensors = load_drafter_tensors(ckpt)
        selected = selected_from_d2t(tensors["d2t"]) if "d2t" in tensors else torch.arange(cfg.vocab_size)
        d2t, t2d = mapping_tables(selected, cfg.vocab_size)
        target = load_target(str(verifier))
        frozen = load_verifier_tensors(verifier, target.tie_word_embeddings, selected)
        model = Eagle3Drafter(cfg)
        model.set_frozen(frozen["embed"], frozen["norm"], frozen["lm_head_rows"], d2t, t2d)
        own = model.state_dict()
        model.load_state_dict({k: tensors[k].float() for k in own})
        self.model = model.to(device).eval()
        self.cfg, self.selected, self.device = cfg, selected.to(device), device

    @torch.no_grad()
    def propose(self, aux: torch.Tensor, tokens: list[int], k_steps: int) -> list[int]:
        """aux [1, n, n_aux*H]: the target's aux hidden states of tokens 0..n-1; tokens: the n+1
        verified tokens (the last one is the target's newest, without hidden states yet)."""
        from speculators_core.model.layers import rope_cos_sin

        m, n = self.model, aux.shape[1]
        dev = self.device
        ids = torch.tensor([tokens[1:n + 1]], device=dev)
        pos = torch.arange(1, n + 1, device=dev)[None]
        h = m.fc(aux)
        mask = torch.ones(n, n, dtype=torch.bool, device=dev).tril()[None, None]
        past: list = [None] * len(m.layers)
        out: list[int] = []
        for k in range(k_steps):
            emb = F.embedding(ids, m.embed_tokens)
            cos, sin = rope_cos_sin(m.inv_freq, pos)
            x = h
            for i, layer in enumerate(m.layers):
                x, (kk, vv) = layer(x, emb if i == 0 else None, cos, sin, past[i], mask)
                past[i] = (kk, vv) if past[i] is None else (torch.cat([past[i][0], kk], 2),
                                                            torch.cat([past[i][1], vv], 2))
            h = x[:, -1:]
            logits = m.lm_head(m.norm(h))
            tok = int(self.selected[int(logits[0, -1].argmax())])
            out.append(tok)
            # the next step: one query at the last column, position + 1, fed the drafted token
            ids = torch.tensor([[tok]], device=dev)
            pos = pos[:, -1:] + 1
            mask = torch.ones(1, 1, 1, n + k + 1, dtype=torch.bool, device=dev)
        return out


class HfEngine:
    def __init__(self, ckpt: Path, verifier: Path, device: str = "auto") -> None:
        from transformers import AutoModelForCausalLM

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.target = AutoModelForCausalLM.from_pretrained(str(verifier), dtype=torch.float32).to(self.device).eval()
        if self.device.type == "cpu" and sum(p.numel() for p in self.target.parameters()) < SMALL_TARGET_PARAMS:
            # a small target's forwards are many tiny ops: thread hand-offs cost more than they give
            # (several times slower with 2 threads on a busy machine), so one thread
            torch.set_num_threads(1)
        self.drafter = Drafter(ckpt, verifier, self.device)
        self.aux_ids = list(self.drafter.cfg.aux_layer_ids)
        gen = getattr(self.target, "generation_config", None)
        eos = getattr(gen, "eos_token_id", None) if gen is not None else None
        if eos is None:
            eos = self.target.config.eos_token_id
        self.eos = set(eos if isinstance(eos, list) else ([eos] if eos is not None else []))

    @torch.no_grad()
    def _target(self, tokens: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(greedy next token per position [T], aux hidden states [1, T, n_aux*H])."""
        ids = torch.tensor([tokens], device=self.device)
        out = self.target(input_ids=ids, output_hidden_states=True)
        aux = torch.cat([out.hidden_states[i] for i in self.aux_ids], dim=-1).float()
        return out.logits[0].argmax(-1), aux

    def generate(self, prompt: list[int], k_steps: int, max_tokens: int, counts: Counts) -> list[int]:
        nxt, aux = self._target(prompt)
        reply = [int(nxt[-1])]
        while len(reply) < max_tokens and reply[-1] not in self.eos:
            seq = prompt + reply
            drafts = self.drafter.propose(aux[:, :len(seq) - 1], seq, k_steps)
            nxt, aux_new = self._target(seq + drafts)
            greedy = [int(t) for t in nxt[len(seq) - 1:len(seq) + k_steps]]
            a = 0
            while a < k_steps and drafts[a] == greedy[a]:
                a += 1
            counts.num_drafts += 1
            counts.num_draft_tokens += k_steps
            counts.num_accepted_tokens += a
            for i in range(a):
                counts.accepted_per_pos[i] += 1
            new = drafts[:a] + [greedy[a]]
            for t in new:  # the reply ends at max_tokens or at an end-of-sequence token
                if len(reply) >= max_tokens or reply[-1] in self.eos:
                    break
                reply.append(t)
            aux = aux_new
        counts.output_tokens += len(reply)
        return reply

    def run(self, prompts: list[list[int]], k_steps: int, max_tokens: int) -> Counts:
        counts = Counts(accepted_per_pos=[0] * k_steps)
        if prompts:  # warm-up (not counted): the first forwards of a process are slow
            self.generate(prompts[0], k_steps, min(4, max_tokens), Counts(accepted_per_pos=[0] * k_steps))
        t0 = time.perf_counter()
        for p in prompts:
            self.generate(p, k_steps, max_tokens, counts)
        counts.seconds = time.perf_counter() - t0
        return counts

    def baseline(self, prompts: list[list[int]], max_tokens: int) -> Counts:
        """The target alone, greedy, one token per forward, computed the same way (no KV cache) as
        the speculative loop: the speedup is that of the accepted drafts in this engine, not vLLM's."""
        counts = Counts()
        t0 = time.perf_counter()
        for p in prompts:
            reply: list[int] = []
            while len(reply) < max_tokens and not (reply and reply[-1] in self.eos):
                nxt, _ = self._target(p + reply)
                reply.append(int(nxt[-1]))
            counts.output_tokens += len(reply)
        counts.seconds = time.perf_counter() - t0
        return counts
