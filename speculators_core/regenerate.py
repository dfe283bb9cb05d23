"""Stage 0: regenerate the assistant answers of chat data with the target, so the drafter learns what
the target really says (not another model's habits).

    python -m speculators_core.regenerate --endpoint http://127.0.0.1:8000/v1 --data sharegpt \
        --output regenerated.jsonl [--max-samples N] [--max-tokens 1024] [--temperature 0] [--resume]

Sources are read as `prepare` reads them. Each conversation keeps its system and user turns; each
assistant turn is replaced by the target's answer to the conversation so far (through
`/v1/chat/completions` with `return_token_ids`; vLLM or the built-in hf engine). Each output row is
the `messages` schema plus the exact ids the server used and produced (`input_ids`, `loss_mask` = 1
on generated tokens), so `prepare --data regenerated.jsonl` trains on them as they are. The output
is appended and flushed row by row; `--resume` skips sources already written. Exit codes: 0 done
(rows the server rejected, e.g. too long, are listed), 1 some rows failed after retries (run again
with --resume), 2 bad input (a source line, an unreachable endpoint, an output of other settings).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Optional

from speculators_core.errors import EXIT_CODES_HELP, ExitCode, SpeculatorsError, report
from speculators_core.plan import flags as stage_args


def main(argv: Optional[list[str]] = None) -> int:
    p = stage_args.regenerate_parser()
    p.epilog = EXIT_CODES_HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--progress-every", type=float, default=10.0, help="seconds between progress lines")
    args = p.parse_args(argv)
    from speculators_core.regen.rows import RegenerateError
    from speculators_core.regen.run import Options, run

    try:
        kwargs = None
        if args.chat_template_kwargs:
            try:
                kwargs = json.loads(args.chat_template_kwargs)
            except json.JSONDecodeError as e:
                raise RegenerateError(f"--chat-template-kwargs: not JSON ({e.msg} at column {e.colno})",
                                      fix='give a JSON object, e.g. \'{"enable_thinking": false}\'') from None
            if not isinstance(kwargs, dict):
                raise RegenerateError("--chat-template-kwargs: expected a JSON object",
                                      fix='e.g. \'{"enable_thinking": false}\'')
        api_key = None
        if args.api_key_env:
            from speculators_core.hidden_states.client import key_for_flag

            api_key = key_for_flag(args.api_key_env, RegenerateError)
        opts = Options(endpoints=args.endpoint, data=args.data, output=args.output, max_samples=args.max_samples,
                       max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p, seed=args.seed,
                       concurrency=args.concurrency, turns=args.turns, chat_template_kwargs=kwargs,
                       retries=args.retries, request_timeout=args.request_timeout, resume=args.resume,
                       overwrite=args.overwrite, metrics_file=args.metrics_file, api_key=api_key,
                       progress_every=args.progress_every)
        s = asyncio.run(run(opts))
    except RegenerateError as exc:
        exc.exit_code = ExitCode.USAGE
        return report("regenerate", exc)
    except SpeculatorsError as exc:
        return report("regenerate", exc)
    except KeyboardInterrupt:
        print("regenerate: interrupted; every row written is kept (run again with --resume)", file=sys.stderr)
        return ExitCode.SIGNAL_BASE + 2
    skipped = ", ".join(f"{n} {why}" for why, n in s.skipped.items())
    print(f"regenerate: {s.written} rows written to {args.output} in {s.seconds:.1f} s"
          f" ({s.generated_tokens} generated tokens)"
          + (f"; {s.resumed} were already there" if s.resumed else "")
          + (f"; not regenerated: {skipped}" if skipped else "")
          + (f"; {s.unmatched_turns} earlier answers re-rendered differently by the template (not trained on)"
             if s.unmatched_turns else ""), flush=True)
    for origin, why in s.rejected[:20]:
        print(f"regenerate: rejected by the server: {origin}: {why}", file=sys.stderr)
    if s.rejected:
        print(f"regenerate: {len(s.rejected)} rows rejected by the server (left out)", file=sys.stderr)
    for origin, why in s.failed[:20]:
        print(f"regenerate: failed: {origin}: {why}", file=sys.stderr)
    if s.failed:
        print(f"regenerate: error: {len(s.failed)} rows failed after retries; run the same command with --resume "
              f"to retry them", file=sys.stderr)
        return ExitCode.FAILED
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
