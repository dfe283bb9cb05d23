"""CPU cost of the dashboard while it watches an active run (% of one core).

    python benchmarks/tui_dashboard_cpu.py [seconds per tab]

A writer thread plays an active run into a temporary run directory (5 training steps/s with
per-TTT-step metrics, 4 GPUs sampled each second, 20 log lines/s); a fresh interpreter runs the
app headless (120x40) on that run's dashboard and reports its own CPU time per wall second, on
the Metrics tab and then on the Logs tab. Each tab is measured in 5-second windows and the median
window is the figure (a small VM's neighbours move single windows by a point or more; the range
is printed beside it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHILD = """
import asyncio, sys, time
from pathlib import Path
from speculators_tui.app import SpeculatorsApp

SECONDS = float(sys.argv[2])
WINDOW = 5.0

async def auto(pilot):
    await asyncio.sleep(3.0)  # start-up and first full read are not the steady state
    for tab in ("metrics", "logs"):
        pilot.app.screen.action_tab(tab)
        await asyncio.sleep(1.0)
        shares = []
        for _ in range(max(1, round(SECONDS / WINDOW))):
            c0, t0 = time.process_time(), time.time()
            await asyncio.sleep(WINDOW)
            c1, t1 = time.process_time(), time.time()
            shares.append(100 * (c1 - c0) / (t1 - t0))
        steps = len(pilot.app.screen.watcher.train_loss)
        shares.sort()
        median = shares[len(shares) // 2] if len(shares) % 2 else sum(shares[len(shares) // 2 - 1:][:2]) / 2
        print(f"RESULT {tab} {median:.1f} {shares[0]:.1f} {shares[-1]:.1f} {steps}", flush=True)
    pilot.app.exit(0)

SpeculatorsApp(run_dir=Path(sys.argv[1])).run(headless=True, size=(120, 40), auto_pilot=auto)
"""


def writer(run_dir: Path, stop: threading.Event) -> None:
    step = 0
    t0 = time.time()
    with open(run_dir / "metrics.jsonl", "a") as m, open(run_dir / "gpu.jsonl", "a") as g, \
            open(run_dir / "train.log", "a") as log:
        m.write(json.dumps({"type": "start", "time": t0, "epochs": 5, "steps_per_epoch": 100000,
                            "total_steps": 500000, "ttt_steps": 3}) + "\n")
        while not stop.is_set():
            step += 1
            rec = {"type": "train", "time": time.time(), "step": step, "epoch": 0, "epoch_progress": step / 1e5,
                   "loss": 5.0 / (1 + step / 50), "lr": 1e-4, "tokens_per_s": 900 + step % 50,
                   "data_wait_s": 0.05, "step_time_s": 0.2, "hs_latency_s": 0.1}
            for k in range(3):
                rec[f"full_acc_{k}"] = min(0.9, step / 1000) * (1 - 0.2 * k)
            m.write(json.dumps(rec) + "\n")
            m.flush()
            for i in range(4):
                log.write(f"step {step} rank 0 loss {rec['loss']:.4f} tokens/s {rec['tokens_per_s']}\n")
            log.flush()
            if step % 5 == 0:
                g.write(json.dumps({"time": time.time(), "gpus": [
                    {"index": i, "name": "H100", "util": 50.0 + i, "mem_used_mb": 40000.0, "mem_total_mb": 81559.0,
                     "power_w": 300.0, "temp_c": 50.0, "role": "server" if i < 2 else "training"}
                    for i in range(4)]}) + "\n")
                g.flush()
            stop.wait(0.2)


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "bench-run"
        run_dir.mkdir()
        now = time.time()
        (run_dir / "state.json").write_text(json.dumps({
            "name": "bench-run", "run_dir": str(run_dir), "status": "running", "pid": None, "started": now,
            "stages": {"prepare": {"status": "done", "started": now - 30, "finished": now - 20},
                       "server": {"status": "running", "started": now - 20},
                       "train": {"status": "running", "started": now - 10}}}))
        stop = threading.Event()
        th = threading.Thread(target=writer, args=(run_dir, stop), daemon=True)
        th.start()
        env = dict(os.environ, SPECULATORS_TUI_CONFIG=os.path.join(tmp, "cfg"))
        out = subprocess.run([sys.executable, "-c", CHILD, str(run_dir), str(seconds)], env=env,
                             capture_output=True, text=True, timeout=4 * seconds + 60)
        stop.set()
        th.join()
    results = [ln.split() for ln in out.stdout.splitlines() if ln.startswith("RESULT")]
    if len(results) != 2:
        print(out.stdout[-2000:], out.stderr[-2000:])
        return 1
    for _, tab, pct, low, high, steps in results:
        print(f"dashboard ({tab} tab) while a run writes 5 steps/s: {pct}% of one core "
              f"(median of 5 s windows, range {low}-{high}%; {steps} steps read, {seconds:.0f} s measured)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
