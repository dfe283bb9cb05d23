"""The pre-flight commands of `speculators-tui`: doctor and the loss-mask view.

    speculators-tui doctor CONFIG [--json]             # pass / warn / fail, each with its fix
    speculators-tui data show DATA_DIR [--row N] [--model M] [--tokens]
"""

from __future__ import annotations

import argparse
import json
import sys

from speculators_tui.run_cli import add_verb


def cmd_doctor(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from speculators_core import find_preset, run_doctor

    cfg = find_preset(args.config).load()
    checks = run_doctor(cfg)
    if args.json:
        print(json.dumps([asdict(c) for c in checks]))
    else:
        from rich.console import Console
        from rich.text import Text

        console = Console(soft_wrap=True, highlight=False)
        style = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}
        for c in checks:
            console.print(Text(c.line(), style=style[c.status]))
        fails = sum(c.status == "fail" for c in checks)
        warns = sum(c.status == "warn" for c in checks)
        console.print(f"{fails} failed, {warns} warning(s)" if fails or warns else "ready: every check passed")
    return 1 if any(c.status == "fail" for c in checks) else 0


def cmd_data_show(args: argparse.Namespace) -> int:
    from speculators_core import MaskViewError, row_view

    try:
        view = row_view(args.data_dir, args.row, args.model)
    except MaskViewError as exc:
        print(f"error: {exc.message}" + (f"\n  fix: {exc.fix}" if exc.fix else ""), file=sys.stderr)
        return 2
    from rich.console import Console
    from rich.text import Text

    console = Console(soft_wrap=True, highlight=False)
    header = f"{args.data_dir}: {view.summary()}"
    if not console.is_terminal:  # plain markers: logs, pipes, tests
        print(header + "; trained tokens are between ⟦ and ⟧")
        if args.tokens:
            print("".join(f"⟦{t}⟧" if m else f"[{t}]" for t, m in view.tokens))
        else:
            print(view.plain())
        return 0
    console.print(Text(header, style="bold"))
    console.print(Text.assemble(("trained", "bold black on green"), " tokens are highlighted; the rest is dim"))
    out = Text()
    if args.tokens:  # every token boundary visible: alternating shades
        for i, (t, m) in enumerate(view.tokens):
            shade = ("on green" if i % 2 else "on dark_green") if m else ("on grey23" if i % 2 else "on grey15")
            out.append(t, style=("bold black " if m else "dim ") + shade)
    else:
        for t, m in view.segments():
            out.append(t, style="bold black on green" if m else "dim")
    console.print(out)
    return 0


def add_subcommands(sub) -> None:
    d = add_verb(sub, "doctor", "pre-flight check of a config (target, layer ids, vLLM, chat template and "
                 "loss mask, disk) before any GPU time", cmd_doctor, "config")
    d.add_argument("--json", action="store_true", help="the checks as one JSON list")
    data = sub.add_parser("data", help="look at prepared data")
    ds = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    show = add_verb(ds, "show", "a prepared row's tokens with the trained ones (loss mask) highlighted",
                    cmd_data_show, "data_dir")
    show.add_argument("--row", type=int, default=0, help="row index (0-based; negative from the end)")
    show.add_argument("--model", default=None, help="the tokenizer's model (default: the one prepare recorded)")
    show.add_argument("--tokens", action="store_true", help="show every token boundary")
