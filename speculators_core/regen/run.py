"""The regeneration loop: conversations in flight over the endpoints, rows appended as they finish.

`--concurrency` workers each carry one conversation at a time through its assistant turns (turn k
is asked with the answers already regenerated for turns < k), so at most that many requests are
in flight. Progress (rows/s, generated tokens/s, ETA) goes to stderr, and with `--metrics-file` to
that JSONL file as `{"type": "regenerate", ...}` records (the run's metrics.jsonl).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from speculators_core.regen import output as out_file
from speculators_core.regen.pool import Failed, Pool, Rejected
from speculators_core.regen.rows import RegenerateError, SourceChat, request_messages, select, token_row


@dataclass
class Options:
    endpoints: Sequence[str]
    data: Sequence[str]
    output: str
    max_samples: Optional[int] = None
    max_tokens: int = 1024
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    concurrency: int = 32
    turns: str = "all"
    chat_template_kwargs: Optional[dict] = None
    retries: int = 5
    request_timeout: float = 600.0
    resume: bool = False
    overwrite: bool = False
    metrics_file: Optional[str] = None
    api_key: Optional[str] = None
    progress_every: float = 10.0


@dataclass
class Summary:
    total: int = 0  # conversations selected
    resumed: int = 0  # already in the output
    written: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (source, why)
    failed: list[tuple[str, str]] = field(default_factory=list)
    generated_tokens: int = 0
    unmatched_turns: int = 0
    seconds: float = 0.0


def check(opts: Options) -> None:
    if opts.max_tokens < 1:
        raise RegenerateError(f"--max-tokens {opts.max_tokens}: must be at least 1")
    if opts.temperature < 0:
        raise RegenerateError(f"--temperature {opts.temperature}: must be >= 0 (0 = greedy)")
    if not 0 < opts.top_p <= 1:
        raise RegenerateError(f"--top-p {opts.top_p}: must be in (0, 1]")
    if opts.concurrency < 1:
        raise RegenerateError(f"--concurrency {opts.concurrency}: must be at least 1")
    if opts.resume and opts.overwrite:
        raise RegenerateError("--resume and --overwrite: choose one")


def _seed(opts: Options, chat: SourceChat, turn: int) -> int:
    return (opts.seed * 1_000_003 + chat.index * 1009 + turn) % (1 << 62)


async def regenerate_chat(pool: Pool, opts: Options, chat: SourceChat) -> tuple[dict, int, int]:
    """(output row, generated tokens, unmatched earlier turns) of one conversation."""
    convo: list[dict] = []
    turns: list[tuple[list[int], list[int]]] = []
    finish: list[Optional[str]] = []
    generated = 0
    for m in chat.messages:
        if m["role"] != "assistant":
            convo.append(dict(m))
            continue
        if not convo:  # a chat that opens with the assistant: nothing to answer; keep the turn as context
            convo.append(dict(m))
            continue
        body: dict[str, Any] = {"messages": request_messages(convo), "max_tokens": opts.max_tokens,
                                "temperature": opts.temperature, "top_p": opts.top_p, "return_token_ids": True}
        if opts.temperature > 0:
            body["seed"] = _seed(opts, chat, len(turns))
        if opts.chat_template_kwargs:
            body["chat_template_kwargs"] = opts.chat_template_kwargs
        resp = await pool.chat(body)
        try:
            choice = resp["choices"][0]
            prompt_ids, gen_ids = resp["prompt_token_ids"], choice["token_ids"]
            message = choice.get("message") or {}
        except (KeyError, IndexError, TypeError):
            raise RegenerateError(
                "the server's answer has no token ids (prompt_token_ids / choices[0].token_ids)",
                fix="use vLLM >= 0.10 or the built-in hf engine (both honour return_token_ids)") from None
        if not isinstance(prompt_ids, list) or not isinstance(gen_ids, list) or not gen_ids:
            raise RegenerateError("the server's answer has empty or malformed token ids",
                                  fix="use vLLM >= 0.10 or the built-in hf engine")
        new = {"role": "assistant", "content": message.get("content") or ""}
        if message.get("reasoning_content"):
            new["reasoning_content"] = message["reasoning_content"]
        convo.append(new)
        turns.append((prompt_ids, gen_ids))
        finish.append(choice.get("finish_reason"))
        generated += len(gen_ids)
        if opts.turns == "first":
            break
    if not turns:
        raise Rejected("no user turn before an assistant turn")
    tr = token_row(turns)
    row = {"id": chat.id, "source": chat.origin, "messages": convo, "input_ids": tr.input_ids,
           "loss_mask": tr.loss_mask,
           "regenerate": {**settings_of(opts, pool.model), "finish_reasons": finish}}
    return row, generated, tr.unmatched_turns


def settings_of(opts: Options, model: Optional[str]) -> dict[str, Any]:
    return {"model": model, "max_tokens": opts.max_tokens, "temperature": opts.temperature, "top_p": opts.top_p,
            "seed": opts.seed, "turns": opts.turns, "chat_template_kwargs": opts.chat_template_kwargs or None}


class Progress:
    def __init__(self, opts: Options, total: int, resumed: int) -> None:
        self.opts, self.total, self.resumed = opts, total, resumed
        self.t0 = time.monotonic()
        self.next = self.t0 + min(2.0, opts.progress_every)
        self.tty = sys.stderr.isatty()

    def line(self, s: Summary, final: bool = False) -> str:
        el = max(1e-9, time.monotonic() - self.t0)
        new = s.written + len(s.rejected) + len(s.failed)
        rate, tps = s.written / el, s.generated_tokens / el
        left = self.total - self.resumed - new
        eta = left / (new / el) if new else float("nan")
        done = self.resumed + s.written
        pct = 100.0 * done / self.total if self.total else 100.0
        bar_w = 24
        fill = int(bar_w * pct / 100)
        eta_s = "-" if eta != eta else _dur(eta)
        return (f"regenerate: [{'#' * fill}{'.' * (bar_w - fill)}] {done}/{self.total} rows ({pct:.0f}%), "
                f"{rate:.2f} rows/s, {tps:.0f} tok/s, ETA {eta_s}"
                + (f", {len(s.failed)} failed" if s.failed else "") + (f", {len(s.rejected)} rejected" if s.rejected else ""))

    def record(self, s: Summary) -> dict:
        el = max(1e-9, time.monotonic() - self.t0)
        new = s.written + len(s.rejected) + len(s.failed)
        left = self.total - self.resumed - new
        return {"type": "regenerate", "time": time.time(), "rows_done": self.resumed + s.written,
                "rows_total": self.total, "rows_per_s": s.written / el, "tokens_per_s": s.generated_tokens / el,
                "eta_s": (left / (new / el)) if new else None, "failed": len(s.failed), "rejected": len(s.rejected)}

    def maybe(self, s: Summary, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self.next:
            return
        self.next = now + self.opts.progress_every
        text = self.line(s)
        if self.tty and not force:
            print("\r" + text, end="", file=sys.stderr, flush=True)
        else:
            print(("\r" if self.tty else "") + text, file=sys.stderr, flush=True)
        if self.opts.metrics_file:
            try:
                from speculators_core.fsutil import append_jsonl

                append_jsonl(Path(self.opts.metrics_file), self.record(s))
            except OSError as e:
                print(f"regenerate: warning: cannot append to {self.opts.metrics_file}: {e}", file=sys.stderr)


def _dur(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


async def run(opts: Options) -> Summary:
    check(opts)
    t0 = time.monotonic()
    sel = select(opts.data, opts.max_samples, opts.seed)
    summary = Summary(total=len(sel.chats), skipped=dict(sel.skipped))
    outp = Path(opts.output)
    async with Pool(opts.endpoints, retries=opts.retries, timeout=opts.request_timeout, api_key=opts.api_key) as pool:
        model = await pool.discover()
        done = out_file.open_output(outp, opts.resume, opts.overwrite, settings_of(opts, model))
        todo = [c for c in sel.chats if c.origin not in done]
        summary.resumed = len(sel.chats) - len(todo)
        progress = Progress(opts, summary.total, summary.resumed)
        queue: asyncio.Queue = asyncio.Queue()
        for c in todo:
            queue.put_nowait(c)

        async def worker() -> None:
            while True:
                try:
                    chat = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    row, ntok, unmatched = await regenerate_chat(pool, opts, chat)
                except Rejected as e:
                    summary.rejected.append((chat.origin, str(e)))
                except Failed as e:
                    summary.failed.append((chat.origin, str(e)))
                else:
                    out_file.append_row(outp, row)
                    summary.written += 1
                    summary.generated_tokens += ntok
                    summary.unmatched_turns += unmatched
                progress.maybe(summary)

        tasks = [asyncio.create_task(worker()) for _ in range(min(opts.concurrency, max(1, len(todo))))]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
        progress.maybe(summary, force=True)
    summary.seconds = time.monotonic() - t0
    return summary
