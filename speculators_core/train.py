"""Stage 3: train an EAGLE-3 drafter.

    torchrun --standalone --nproc_per_node N -m speculators_core.train --verifier-name-or-path TARGET \\
        --data-path PREPARED --save-path CKPTS [--vllm-endpoint URL] [--hidden-states-path DIR] ...

Single process or torchrun (FSDP2). Rank 0 appends `<run-dir>/metrics.jsonl` (docs/metrics.md) and
writes the checkpoints (`<save>/<epoch>/`, `checkpoint_best`). An expected failure (a
`SpeculatorsError`: bad flags, missing cache rows, a server failing every request, a non-finite
loss) writes the `end` record, prints its message and fix without a traceback and exits with its
code (`--help` lists them); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from speculators_core.errors import EXIT_CODES_HELP, SpeculatorsError, report
from speculators_core.training.trainer import Trainer


def main(argv: Optional[list[str]] = None) -> int:
    from speculators_core.plan.flags import train_parser

    p = train_parser()
    p.epilog = EXIT_CODES_HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    args = p.parse_args(argv)
    import signal

    def _terminate(signum, frame):  # a supervisor's stop: still write the `end` record
        raise SystemExit(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, _terminate)
    from speculators_core.training import distributed

    d = distributed.setup(args.device)
    run_dir = Path(args.run_dir or args.save_path)
    from speculators_core.training.metrics import MetricsWriter

    metrics = MetricsWriter(run_dir / "metrics.jsonl" if d.is_main else None, args.logger,
                            run_name=Path(args.save_path).name)
    try:
        try:
            Trainer(args, d, metrics).run()
        except SpeculatorsError as exc:
            metrics.write("end", status="failed", message=f"{type(exc).__name__}: {exc}")
            metrics.close()
            return report("train", exc)
        except BaseException as exc:
            metrics.write("end", status="failed", message=f"{type(exc).__name__}: {exc}")
            metrics.close()
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
        metrics.write("end", status="completed", message="")
        metrics.close()
        return 0
    finally:  # also after a failure: the process group (NCCL's communicators) is released, not leaked
        distributed.cleanup(d)


if __name__ == "__main__":
    sys.exit(main())
