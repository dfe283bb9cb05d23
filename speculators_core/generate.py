"""Fill the hidden-states cache for a prepared dataset (offline / hybrid training). Resumable.

    python -m speculators_core.generate --data-path ./output --hidden-states-path ./hs-cache \
        --vllm-endpoint http://127.0.0.1:8000/v1 --hidden-states-storage /dev/shm/speculators-hidden-states

Row i of the dataset goes to `<cache>/hs_<i>.safetensors` (moved atomically from the server's file, so
a present file is always complete); rows already cached are skipped, so an interrupted run resumes.
A sample that cannot be obtained (e.g. longer than the server's --max-model-len) is reported and the
others go on; the exit code is 1 if any row is missing at the end, 0 otherwise; bad input (a
missing dataset, an unset --api-key-env variable) prints the error and its fix and exits 2.
The work is `speculators_core.hidden_states.fill`'s; this module is the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Optional

from speculators_core.errors import EXIT_CODES_HELP, SpeculatorsError, report
from speculators_core.plan import flags as stage_args


def main(argv: Optional[list[str]] = None) -> int:
    p = stage_args.generate_parser()
    p.epilog = EXIT_CODES_HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--progress-every", type=float, default=10.0, help="seconds between progress lines")
    args = p.parse_args(argv)
    if not args.vllm_endpoint:
        p.error("--vllm-endpoint is required (the hidden-states server, e.g. http://127.0.0.1:8000/v1)")
    if not args.hidden_states_storage:
        p.error("--hidden-states-storage is required: the directory the server writes to (its --hidden-states-path)")
    from speculators_core.hidden_states.fill import run

    try:
        return asyncio.run(run(args))
    except SpeculatorsError as exc:  # expected: message and fix, no traceback
        return report("generate", exc)


if __name__ == "__main__":
    sys.exit(main())
