"""`speculators-tui`: the console entry point.

With no subcommand it opens the app; subcommands work without it (`presets`, `validate`, `export`,
and the run commands). Nothing here imports torch/transformers, and Textual is imported only when
the app opens, so `speculators-tui --help` is instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from speculators_core import (
    ConfigError, RunConfig, config_errors, dumps_config, find_preset, list_presets, plan_run, problems_for_export,
    validate_config,
)
from speculators_tui import run_cli
from speculators_tui.run_cli import add_verb


def _load(spec: str) -> tuple[RunConfig, str, Optional[Path]]:
    """Config from a preset name, TOML path or run directory -> (config, source, run_dir or None)."""
    preset = find_preset(spec)
    run_dir = preset.path.parent if preset.path.name == "run.toml" else None
    return preset.load(), str(preset.path), run_dir


def cmd_presets_list(args: argparse.Namespace) -> int:
    presets = list_presets()
    width = max((len(p.name) for p in presets), default=10)
    for p in presets:
        kind = "built-in" if p.builtin else "user"
        note = " (shadows the built-in of this name: `run` uses this one)" if p.shadows else ""
        print(f"{p.name:<{width}}  {kind:<8}  {p.description()}{note}")
    return 0


def _change_preset(name: str, change, done) -> int:
    """Apply `change(preset)`; a refusal (a built-in, a bad or taken name, a file that is no user
    preset) is a ValueError: print it and exit 2; else print `done(preset, result)`."""
    preset = find_preset(name)
    try:
        result = change(preset)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(done(preset, result))
    return 0


def cmd_presets_delete(args: argparse.Namespace) -> int:
    return _change_preset(args.name, lambda p: p.delete(), lambda p, _: f"deleted {p.path}")


def cmd_presets_rename(args: argparse.Namespace) -> int:
    return _change_preset(args.old, lambda p: p.rename(args.new),
                          lambda p, new: f"renamed {p.name} to {new.name} ({new.path})")


def cmd_presets_show(args: argparse.Namespace) -> int:
    preset = find_preset(args.name)
    if args.resolved:
        print(dumps_config(preset.load(), include_defaults=True), end="")
    else:
        print(preset.path.read_text(encoding="utf-8"), end="")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    cfg, source, _ = _load(args.config)
    from speculators_core import gpu_memory_map, run_memory

    gpu_memory = gpu_memory_map(cfg, probe_now=bool(cfg.training.gpus or cfg.hidden_states.gpus))
    plan = plan_run(cfg, gpu_memory=gpu_memory)
    if plan.target is None:
        print(f"note: target checks skipped: {plan.target_note}", file=sys.stderr)
    else:
        print(f"target: {plan.target.summary()}")
        memory = run_memory(cfg, plan.target, gpu_memory)
        for line in memory.lines() if memory else []:
            print(f"memory: {line}")
    for p in plan.problems:
        print(f"{p.severity}: {p}", file=sys.stderr if p.severity == "error" else sys.stdout)
    if plan.errors:
        print(f"{source}: {len(plan.errors)} error(s)", file=sys.stderr)
        return 1
    print(f"{source}: valid")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    cfg, source, run_dir = _load(args.config)
    # The config alone (its target may be out of reach); a script may run on another machine, so a
    # path missing here is a warning, not an error.
    problems = problems_for_export(validate_config(cfg))
    for p in problems:
        if p.local and p.severity == "warning":
            print(f"warning: {p}", file=sys.stderr)
    errs = config_errors(problems)
    if errs:
        for p in errs:
            print(f"error: {p}", file=sys.stderr)
        return 1
    if getattr(args, "format", "bash") == "slurm":  # an sbatch script for the [cluster] topology
        from speculators_core import render_slurm

        plan = plan_run(cfg, source=source)  # for the target's facts: its local stages may need
        script = render_slurm(cfg, plan.target, source)  # a rendezvous endpoint, the sbatch script does not
    elif run_dir is not None:  # the exact commands of that run: the stages it recorded
        from speculators_core import read_run_stages, read_state, render_script, run_layout

        run_dir = run_dir.resolve()
        source = read_state(run_dir).get("source") or source
        if (run_dir / run_layout.STAGES).exists():
            script = render_script(read_run_stages(run_dir), cfg, source)
        else:  # a run directory from before stages.json: plan it again in its recorded environment
            from speculators_core import run_environ

            script = plan_run(cfg, run_dir=str(run_dir), environ=run_environ(run_dir), source=source).require().script
    else:
        script = plan_run(cfg, source=source).require().script
    if args.output:
        from speculators_core import atomic_write_text

        out = atomic_write_text(Path(args.output), script)
        out.chmod(0o755)
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(script)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="speculators-tui",
        description="Train an EAGLE-3 drafter for vLLM speculative decoding: prepare data, serve hidden "
                    "states, train. With no command, opens the terminal app.",
    )
    from speculators_tui import __version__

    p.add_argument("--version", action="version", version=f"speculators-tui {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    pr = sub.add_parser("presets", help="list, show, rename or delete presets")
    prs = pr.add_subparsers(dest="presets_command", metavar="ACTION", required=True)
    add_verb(prs, "list", "built-in and user presets", cmd_presets_list)
    show = add_verb(prs, "show", "print a preset's TOML", cmd_presets_show, "name")
    show.add_argument("--resolved", action="store_true", help="print every option, defaults included")
    add_verb(prs, "delete", "delete a user preset (built-ins cannot be deleted)", cmd_presets_delete, "name")
    add_verb(prs, "rename", "rename a user preset (not to a built-in's name)", cmd_presets_rename, "old", "new")

    v = sub.add_parser("validate", help="check a preset or config file (exit 1 on errors)")
    v.add_argument("config", help="preset name, TOML file or run directory")
    v.set_defaults(func=cmd_validate)

    e = sub.add_parser("export", help="print (or write) the equivalent bash (or Slurm) script")
    e.add_argument("config", help="preset name, TOML file or run directory")
    e.add_argument("-o", "--output", help="write the script to this file (made executable)")
    e.add_argument("--format", choices=("bash", "slurm"), default="bash",
                   help="bash: this machine's script (default); slurm: an sbatch script for the [cluster] nodes")
    e.set_defaults(func=cmd_export)

    run_cli.add_subcommands(sub)
    from speculators_tui import check_cli

    check_cli.add_subcommands(sub)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from speculators_tui.app import run_app

        return run_app()
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
