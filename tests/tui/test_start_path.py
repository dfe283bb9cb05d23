"""The app's first screen appears without importing torch, transformers or datasets."""

import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import sys
    from speculators_tui.app import SpeculatorsApp
    from speculators_tui.screens.start import StartScreen

    async def auto(pilot):
        await pilot.pause()
        assert isinstance(pilot.app.screen, StartScreen), pilot.app.screen
        heavy = sorted(m for m in ("torch", "transformers", "datasets") if m in sys.modules)
        print("HEAVY=" + ",".join(heavy), flush=True)
        pilot.app.exit(0)

    SpeculatorsApp().run(headless=True, size=(80, 24), auto_pilot=auto)
""")


def test_start_screen_without_heavy_imports(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", SPECULATORS_TUI_CONFIG=str(tmp_path / "cfg"))
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("HEAVY=")]
    assert line == ["HEAVY="], out.stdout[-2000:]
