"""The console script, preset discovery, and the import boundaries (engine without UI, fast CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from speculators_core import config as C
from speculators_core.paths import BUILTIN_PRESETS_DIR, user_presets_dir
from speculators_core.config.presets import find_preset, list_presets, save_user_preset


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "speculators_tui.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_builtin_presets_ship_inside_the_package():
    names = {p.name for p in list_presets() if p.builtin}
    assert {"qwen3-8b-sharegpt-online-5k", "qwen3-8b-sharegpt-hybrid-5k", "tiny-cpu-demo"} <= names
    for p in list_presets():
        if p.builtin:
            assert p.path.parent == BUILTIN_PRESETS_DIR
            p.load()  # every shipped preset parses


def test_user_presets_live_in_the_xdg_dir_and_shadow_builtins():
    cfg = find_preset("tiny-cpu-demo").load()
    cfg.training.epochs = 7
    path = save_user_preset(cfg, "tiny-cpu-demo")
    assert path.parent == user_presets_dir()
    found = find_preset("tiny-cpu-demo")
    assert not found.builtin and found.load().training.epochs == 7
    path.unlink()
    assert find_preset("tiny-cpu-demo").builtin


def test_presets_list_and_show():
    r = cli("presets", "list")
    assert r.returncode == 0 and "qwen3-8b-sharegpt-online-5k" in r.stdout and "built-in" in r.stdout
    r = cli("presets", "show", "tiny-cpu-demo")
    assert r.returncode == 0 and 'target = "builtin:tiny-qwen3"' in r.stdout
    r = cli("presets", "show", "tiny-cpu-demo", "--resolved")
    assert C.loads(r.stdout) == find_preset("tiny-cpu-demo").load()


def test_validate_cli(tmp_path):
    assert cli("validate", "tiny-cpu-demo").returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\ntarget = "x"\n[training]\ngpus = [0]\nepochz = 3\n')
    r = cli("validate", str(bad))
    assert r.returncode == 2 and "training.epochz" in r.stderr and f"{bad}:5" in r.stderr
    overlap = tmp_path / "overlap.toml"
    overlap.write_text('[model]\ntarget = "x"\n[hidden_states]\ngpus = [0]\n[training]\ngpus = [0]\n')
    r = cli("validate", str(overlap))
    assert r.returncode == 1 and "training.gpus" in r.stderr


def test_export_of_an_invalid_preset_fails_naming_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\ntarget = "x"\n[hidden_states]\ngpus = [0, 1]\ndata_parallel_size = 3\n'
                   'target_layer_ids = [1, 2]\n[training]\ngpus = [2]\n')
    r = cli("export", str(bad))
    assert r.returncode == 1 and "hidden_states.data_parallel_size" in r.stderr
    assert r.stdout == ""
    r = cli("export", "no-such-preset")
    assert r.returncode == 2 and "known presets" in r.stderr


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_engine_never_imports_textual():
    code = ("import importlib, pkgutil, speculators_core\n"
            "for m in pkgutil.walk_packages(speculators_core.__path__, 'speculators_core.'):\n"
            "    if m.name.split('.')[-1] in ('__main__',): continue\n"
            "    try: importlib.import_module(m.name)\n"
            "    except ImportError as e:\n"
            "        if 'vllm' not in str(e): raise\n")
    mods = _modules_after(code)
    assert not any(m == "textual" or m.startswith("textual.") for m in mods)


def test_cli_help_does_not_import_torch():
    code = ("import sys\nfrom speculators_tui import cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n")
    mods = _modules_after(code)
    heavy = {m for m in mods if m.split(".")[0] in ("torch", "transformers", "datasets", "textual")}
    assert not heavy, sorted(heavy)[:5]
    r = cli("--help")
    assert r.returncode == 0 and "presets" in r.stdout and "export" in r.stdout
