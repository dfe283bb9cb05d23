"""A stand-in trainer for supervisor tests: writes metrics.jsonl steps, needs the server between steps
and tolerates its outage for --grace seconds (like the real hidden-states client)."""

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

p = argparse.ArgumentParser()
p.add_argument("--url", required=True, help="server /health URL")
p.add_argument("--run-dir", required=True)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--step-time", type=float, default=0.1)
p.add_argument("--wait-frac", type=float, default=0.1, help="share of step time reported as data wait")
p.add_argument("--grace", type=float, default=30.0)
p.add_argument("--exit-code", type=int, default=0)
p.add_argument("--spawn-child", default=None, help="start a grandchild `sleep` and write its pid here")
a = p.parse_args()


def emit(rec):
    rec["time"] = time.time()
    with open(os.path.join(a.run_dir, "metrics.jsonl"), "a") as fh:
        fh.write(json.dumps(rec) + "\n")


def healthy():
    try:
        with urllib.request.urlopen(a.url, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


if a.spawn_child:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(a.spawn_child, "w") as fh:
        fh.write(str(child.pid))
print(f"fake trainer pid {os.getpid()}", flush=True)
emit({"type": "start", "epochs": 1, "steps_per_epoch": a.steps, "total_steps": a.steps, "resumed_from_epoch": None})
for step in range(1, a.steps + 1):
    down_since = None
    while not healthy():
        down_since = down_since or time.monotonic()
        if time.monotonic() - down_since > a.grace:
            print("server unavailable longer than the grace period", flush=True)
            emit({"type": "end", "status": "failed", "message": "server gone"})
            sys.exit(5)
        time.sleep(0.1)
    time.sleep(a.step_time)
    emit({"type": "train", "step": step, "epoch": 0, "loss": 1.0 / step, "data_wait_s": a.step_time * a.wait_frac,
          "compute_s": a.step_time * (1 - a.wait_frac), "step_time_s": a.step_time})
    print(f"step {step}", flush=True)
if a.exit_code:
    print("Traceback: RuntimeError: fake training failure", flush=True)
    sys.exit(a.exit_code)
emit({"type": "end", "status": "completed", "message": ""})
