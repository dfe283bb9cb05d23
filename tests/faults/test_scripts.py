"""Fault matrix, area `scripts`: exported scripts and run.sh with hostile values. Every value is
quoted in every position (commands, env, echo, comments); nothing in a config or a file name runs as
code. Checked with `bash -n` and by running the script with every command stubbed out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from speculators_core import config as cfgmod
from speculators_core.plan.plan import plan_run


def _cfg(tmp_path: Path) -> cfgmod.RunConfig:
    cfg = cfgmod.RunConfig()
    cfg.model.target = "builtin:tiny-qwen3"
    cfg.data.sources = ["builtin:demo-chat"]
    cfg.data.output = str(tmp_path / "data")
    cfg.hidden_states.engine = "hf"
    cfg.hidden_states.gpus = []
    cfg.hidden_states.target_layer_ids = [2, 4, 8]
    cfg.training.gpus = []
    cfg.training.checkpoint_dir = str(tmp_path / "ckpt")
    return cfg


def _run_stubbed(script: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `script` with every command it starts (python, torchrun, sleep) replaced by a no-op
    function, so what is left is the shell's own parsing and expansion."""
    tools = {sys.executable, str(Path(sys.executable).parent / "torchrun"), "torchrun", "sleep", "seq"}
    stubs = "".join(f"{t}() {{ :; }}\n" for t in tools)
    path = cwd / "script.sh"
    path.write_text(script)
    check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    return subprocess.run(["bash", "-c", stubs + f"source {path}"], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env=env or dict(os.environ))


HOSTILE = [
    # (what, how to apply it, source name)
    ("target newline", lambda c, m: setattr(c.model, "target", f"x\ntouch {m}\n#"), ""),
    ("toml file name newline", lambda c, m: None, "a.toml\ntouch {m}\n"),
    ("checkpoint_dir quote", lambda c, m: setattr(c.training, "checkpoint_dir", f"/tmp/x'; touch {m}; echo '"), ""),
    ("checkpoint_dir subshell", lambda c, m: setattr(c.training, "checkpoint_dir", f"/tmp/$(touch {m})"), ""),
    ("host quote", lambda c, m: setattr(c.hidden_states, "host", f"127.0.0.1'; touch {m}; echo '"), ""),
    ("storage_dir", lambda c, m: setattr(c.hidden_states, "storage_dir", f"/tmp/`touch {m}`"), ""),
    ("env value", lambda c, m: c.hidden_states.env.update(PLAIN=f"$(touch {m})"), ""),
    ("extra_args", lambda c, m: setattr(c.hidden_states, "extra_args", [f"; touch {m}"]), ""),
    ("data source", lambda c, m: setattr(c.data, "sources", [f"x$(touch {m}).jsonl"]), ""),
    ("carriage return target", lambda c, m: setattr(c.model, "target", f"x\rtouch {m}\r"), ""),
]


@pytest.mark.fault("scripts")
@pytest.mark.parametrize("what,apply,source", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_values_never_run_as_code(tmp_path, what, apply, source):
    marker = tmp_path / "MARKER"
    cfg = _cfg(tmp_path)
    apply(cfg, marker)
    script = plan_run(cfg, source=source.format(m=marker), environ={}, load_target=False).require().script
    res = _run_stubbed(script, tmp_path)
    assert not marker.exists(), f"{what}: the script ran injected code\n{script}"
    assert res.returncode == 0, res.stderr


@pytest.mark.fault("scripts")
@pytest.mark.parametrize("key", ["A B", "X;touch m", "$(touch m)", "1X", "A=B"])
def test_bad_env_keys_never_reach_a_script(tmp_path, key):
    cfg = _cfg(tmp_path)
    cfg.hidden_states.env = {key: "1"}
    plan = plan_run(cfg, environ={}, load_target=False)
    assert plan.script is None and "not an environment variable name" in str(plan.error)
    assert any(p.field == f"hidden_states.env.{key}" for p in plan.errors)


@pytest.mark.fault("scripts")
def test_api_key_is_a_reference_and_a_missing_key_stops_the_script(tmp_path):
    cfg = _cfg(tmp_path)
    cfg.hidden_states.engine = "vllm"
    cfg.hidden_states.api_key_env = "MY_KEY"
    cfg.hidden_states.env = {"HF_TOKEN": "hf_literal_secret"}
    script = plan_run(cfg, environ={}, load_target=False).require().script
    assert 'VLLM_API_KEY="${MY_KEY:?set MY_KEY to the API key}"' in script
    assert "hf_literal_secret" not in script and 'HF_TOKEN="${HF_TOKEN:?' in script
    env = {k: v for k, v in os.environ.items() if k not in ("MY_KEY", "HF_TOKEN")}
    res = _run_stubbed(script, tmp_path, env)
    assert res.returncode != 0 and "set MY_KEY to the API key" in res.stderr + res.stdout \
        or "HF_TOKEN" in res.stderr
    res = _run_stubbed(script, tmp_path, dict(env, MY_KEY="k", HF_TOKEN="t"))
    assert res.returncode == 0, res.stderr


@pytest.mark.fault("scripts")
def test_export_cli_with_hostile_file_name(tmp_path):
    """`export` of a TOML whose name holds a newline and a command: the header stays one comment."""
    marker = tmp_path / "M"
    name = tmp_path / "x\ntouch M\n.toml"
    name.write_text(f'[model]\ntarget = "builtin:tiny-qwen3"\n[data]\nsources = ["builtin:demo-chat"]\n'
                    f'output = "{tmp_path}/o"\n[hidden_states]\nengine = "hf"\ngpus = []\n'
                    f'target_layer_ids = [2, 4, 8]\n[training]\ngpus = []\ndraft_vocab_size = 256\n'
                    f'checkpoint_dir = "{tmp_path}/ck"\n')
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    res = subprocess.run([sys.executable, "-m", "speculators_tui", "export", str(name)], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=60)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    _run_stubbed(res.stdout, tmp_path)
    assert not marker.exists()
