"""Time from `python` start to the app's first screen, and the heavy modules loaded by then.

    python benchmarks/tui_startup.py [runs]

Prints the median wall time of several cold starts (a fresh interpreter each) to the StartScreen
being mounted and painted (headless, 80x24), and asserts torch/transformers/datasets were not imported.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = """
import sys, time
from speculators_tui.app import SpeculatorsApp
from speculators_tui.screens.start import StartScreen

async def auto(pilot):
    await pilot.pause()
    assert isinstance(pilot.app.screen, StartScreen)
    print("READY", time.time(), ",".join(m for m in ("torch", "transformers", "datasets") if m in sys.modules),
          flush=True)
    pilot.app.exit(0)

SpeculatorsApp().run(headless=True, size=(80, 24), auto_pilot=auto)
"""


def one(cwd: str) -> tuple[float, str]:
    env = dict(os.environ, SPECULATORS_TUI_CONFIG=os.path.join(cwd, "cfg"))
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=120)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("READY"))
    parts = line.split(" ")
    return float(parts[1]) - t0, (parts[2] if len(parts) > 2 else "")


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as cwd:
        one(cwd)  # warm the OS file cache and .pyc files
        results = [one(cwd) for _ in range(runs)]
    times = [t for t, _ in results]
    heavy = {h for _, h in results if h}
    print(f"first screen after {statistics.median(times) * 1000:.0f} ms (median of {runs}; "
          f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms)")
    print("heavy modules imported: " + (", ".join(sorted(heavy)) or "none"))
    return 1 if heavy else 0


if __name__ == "__main__":
    sys.exit(main())
