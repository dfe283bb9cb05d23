"""Fake stage lists for supervisor tests (real processes, tiny scripts)."""

import json
import sys
from pathlib import Path

from speculators_core.plan.stages import Stage

FAKES = Path(__file__).resolve().parent
PY = sys.executable


def fake_stages(run_dir, port, server_args=(), trainer_args=(), prepare_code="print('prepared')",
                with_generate=False):
    health = f"http://127.0.0.1:{port}/health"
    env = {"OMP_NUM_THREADS": "1"}
    stages = [
        Stage("prepare", [PY, "-c", prepare_code], env=env, log="prepare.log", description="fake prepare"),
        Stage("server", [PY, str(FAKES / "fake_server.py"), "--port", str(port), *server_args], env=env,
              kind="server", log="server.log", health_url=health, description="fake server"),
    ]
    if with_generate:
        stages.append(Stage("generate", [PY, "-c", "print('generated')"], env=env, needs_server=True,
                            log="generate.log", description="fake generate"))
    stages.append(Stage("train", [PY, str(FAKES / "fake_trainer.py"), "--url", health, "--run-dir", str(run_dir),
                                  *trainer_args], env=env, needs_server=True, log="train.log",
                        description="fake train"))
    return stages


if __name__ == "__main__":
    # python stages.py RUN_DIR PORT OPTIONS_JSON: run a Supervisor over fake stages in this process
    # (the main thread, so it handles SIGINT/SIGTERM like `speculators-tui run --headless`).
    from speculators_core.runs.supervisor import Supervisor

    run_dir, port, opts = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    stages = fake_stages(run_dir, port, opts.get("server_args", []), opts.get("trainer_args", []))
    sup = Supervisor(Path(run_dir), stages=stages, skip_check=lambda s: None, grace=opts.get("grace", 5.0),
                     restart_backoff=0.2)
    sys.exit(sup.run())
