"""The one error root of the stages, and the exit codes of the stage CLIs.

Every error meant for a user derives from `SpeculatorsError`: its `message` says what is wrong
(naming the file, line, key or flag) and `fix` what to do about it (empty when the message already
says it). Each concrete class keeps its builtin base too (`ConfigError` is a `ValueError`,
`PrepareError` a `RuntimeError`, ...), so existing `except` clauses still catch them.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit statuses of the stage CLIs (`python -m speculators_core.<stage>`)."""

    #: Done (also: nothing to do, e.g. a demo target already built, a cache already full).
    OK = 0
    #: The stage ran and failed: a sample or a server that keeps failing, a health wait that timed out.
    FAILED = 1
    #: Bad input or usage (argparse's own code): a wrong flag, a missing dataset, bad layer ids.
    USAGE = 2
    #: `wait_health --pid`: the watched server process exited before it became healthy.
    PROCESS_DIED = 2
    #: prepare stopped by a signal exits 128 + the signal number (SIGTERM: 143), as a shell does.
    SIGNAL_BASE = 128


class SpeculatorsError(Exception):
    """A failure meant for the user. `str(e)` is the message, unchanged.

    `SpeculatorsError(message, fix="...")` sets the fix of this one error; a subclass may set a
    class-wide `fix` and `exit_code` instead.
    """

    #: What to do about it ("" when the message already says it).
    fix: str = ""
    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, *args, fix: str | None = None) -> None:
        super().__init__(*args)
        if fix is not None:
            self.fix = fix

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


def report(stage: str, exc: SpeculatorsError, file=None) -> int:
    """Print `exc` the one way the stage CLIs do (message, then the fix; no traceback) and return
    its exit code."""
    import sys

    out = file or sys.stderr
    print(f"{stage}: error: {exc.message}", file=out, flush=True)
    if exc.fix:
        print(f"{stage}: fix: {exc.fix}", file=out, flush=True)
    return int(exc.exit_code)


#: The exit-code table for a stage CLI's --help epilog.
EXIT_CODES_HELP = (
    "exit codes:\n"
    f"  {int(ExitCode.OK)}  done (or nothing to do)\n"
    f"  {int(ExitCode.FAILED)}  the stage ran and failed (rows or a server that keep failing, a non-finite loss);\n"
    "     the error and its fix are printed, no traceback\n"
    f"  {int(ExitCode.USAGE)}  bad input or usage: a wrong or missing flag, dataset, checkpoint or environment variable\n"
    f"  {int(ExitCode.SIGNAL_BASE)}+N  stopped by signal N\n"
)
