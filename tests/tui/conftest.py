"""Fixtures of the app's tests: isolated user presets, fake GPU lists, a recorded run directory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

RECORDED = HERE.parent / "data" / "recorded_run"


@pytest.fixture(autouse=True)
def isolated_xdg_config(tmp_path, monkeypatch) -> Path:
    """The app's settings (theme) never come from, or go to, the real ~/.config."""
    d = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(d))
    monkeypatch.delenv("SPECULATORS_TUI_CONFIG", raising=False)
    return d


@pytest.fixture(autouse=True)
def run_history(tmp_path, monkeypatch) -> Path:
    """A fresh, empty run history (runs/index.py) per test: what the start screen lists never
    depends on the other tests' runs (nor, ever, on the real home's)."""
    d = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(d))
    return d


@pytest.fixture
def user_config(tmp_path, monkeypatch) -> Path:
    """A fresh user config dir (user presets go to <it>/presets)."""
    d = tmp_path / "user-config"
    monkeypatch.setenv("SPECULATORS_TUI_CONFIG", str(d))
    return d


@pytest.fixture
def fabricated_run(tmp_path) -> Path:
    from tui_fakes import write_run_dir

    return write_run_dir(tmp_path / "recorded")


@pytest.fixture
def offline_env(monkeypatch, tmp_path):
    """Machine-independent rendering: no hub cache, a fixed interpreter path in scripts."""
    monkeypatch.setenv("HF_HUB_CACHE", "/nonexistent/hub")
    monkeypatch.setenv("HF_HOME", "/nonexistent/hf")
    monkeypatch.setenv("HOME", "/nonexistent/home")
    monkeypatch.setenv("SPECULATORS_TUI_CACHE", "/nonexistent/spec-cache")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(sys, "executable", "/usr/bin/python3")
    monkeypatch.chdir(tmp_path)
