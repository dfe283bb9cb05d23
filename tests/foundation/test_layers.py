"""The layers written down in pyproject.toml ([tool.importlinter]) hold: the engine never imports the
app or Textual, stage packages never import the run machinery, the app reaches the engine only
through `speculators_core`'s root."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept():
    tool = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not os.path.exists(tool):
        pytest.fail("lint-imports not found: pip install -e '.[dev]' (import-linter)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([tool, "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_engine_text_never_names_the_app():
    """Not even in a docstring or a lazy import (which a graph of top-level imports could miss)."""
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "speculators_core").rglob("*.py")
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if re.search(r"speculators_tui|textual", line)]
    assert hits == []


def test_importing_the_root_imports_nothing_else():
    code = ("import sys, speculators_core; "
            "print(sorted(m for m in sys.modules if m.startswith('speculators_core.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT))).stdout.strip()
    assert out == "[]"
