"""Fault matrix, areas `runs` and `security`: the end-of-run sweep deletes only the server's own
request files; secrets never reach run.toml, run.sh, stages.json, state.json or logs, and a missing
one fails its stage clearly; the default hidden-states directory is private to its user."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from speculators_core import config as cfgmod
from speculators_core.plan.stages import Stage
from speculators_core.runs import rundir
from speculators_core.runs.sweep import sweep_scratch


def _cfg(tmp_path: Path, port: int = 18998) -> cfgmod.RunConfig:
    cfg = cfgmod.RunConfig()
    cfg.model.target = "builtin:tiny-qwen3"
    cfg.data.sources = ["builtin:demo-chat"]
    cfg.data.output = str(tmp_path / "data")
    cfg.hidden_states.engine = "hf"
    cfg.hidden_states.gpus = []
    cfg.hidden_states.port = port
    cfg.hidden_states.target_layer_ids = [2, 4, 8]
    cfg.training.gpus = []
    cfg.training.checkpoint_dir = str(tmp_path / "ckpt")
    cfg.run.name = "fault"
    cfg.run.dir = str(tmp_path / "runs")
    return cfg


# --------------------------------------------------------------------------- finding 1: the sweep
@pytest.mark.fault("runs")
def test_sweep_deletes_only_the_servers_request_files(tmp_path):
    storage = tmp_path / "output"
    keep = [storage / "checkpoints" / "2" / "model.safetensors",    # a checkpoint (the probe's loss)
            storage / "hs_7.safetensors",                            # a cache file
            storage / "mine.safetensors",                            # the user's own file
            storage / "sub" / "cmpl-0123456789abcdef.safetensors",   # not a direct child
            storage / ".tmp-notes"]
    gone = [storage / "cmpl-0123456789abcdef0123456789abcdef.safetensors",           # hf engine
            storage / "cmpl-0123456789abcdef0123456789abcdef.safetensors.lock",
            storage / "cmpl-89abcdef01234567-0-1a2b3c4d.safetensors",                # vLLM
            storage / "cmpl-89abcdef01234567-0-1a2b3c4d.safetensors.lock"]
    since = time.time()
    for p in keep + gone:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * 10)
    link = storage / "cmpl-feedfeedfeedfeed-0-00000000.safetensors"
    link.symlink_to(keep[0])
    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    events = []
    sweep_scratch(run_dir, str(storage), since, lambda *a, **k: events.append((a, k)))
    assert all(p.exists() for p in keep), [p for p in keep if not p.exists()]
    assert not any(p.exists() for p in gone)
    assert link.is_symlink() and keep[0].exists()
    assert events and events[0][0][0] == "scratch_swept" and events[0][1]["files"] == 4


@pytest.mark.fault("runs")
def test_sweep_leaves_files_older_than_the_server(tmp_path):
    storage = tmp_path / "s"
    storage.mkdir()
    old = storage / "cmpl-0123456789abcdef0123456789abcdef.safetensors"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    sweep_scratch(tmp_path, str(storage), time.time(), lambda *a, **k: None)
    assert old.exists()


# --------------------------------------------------------------------------- finding 10: secrets
SECRET = "s3cr3t-VALUE-do-not-leak"


def _secret_cfg(tmp_path, engine="hf"):
    cfg = _cfg(tmp_path)
    cfg.hidden_states.engine = engine
    cfg.hidden_states.api_key_env = "MY_API_KEY"
    cfg.hidden_states.env = {"HF_TOKEN": SECRET, "MY_Secret": "${OTHER_VAR}", "PLAIN": "1"}
    return cfg


@pytest.mark.fault("security")
@pytest.mark.parametrize("engine", ["hf", "vllm"])
def test_secrets_never_reach_the_run_directory(tmp_path, monkeypatch, engine):
    monkeypatch.chdir(tmp_path)
    environ = dict(os.environ, MY_API_KEY=SECRET, HF_TOKEN=SECRET, OTHER_VAR=SECRET)
    run_dir = rundir.create_run_dir(_secret_cfg(tmp_path, engine), source="t", environ=environ)
    for name in ("run.toml", "run.sh", "stages.json", "state.json"):
        assert SECRET not in (run_dir / name).read_text(), name
    toml = (run_dir / "run.toml").read_text()
    assert "<redacted: from $HF_TOKEN>" in toml and "<redacted: from $OTHER_VAR>" in toml
    script = (run_dir / "run.sh").read_text()
    assert 'HF_TOKEN="${HF_TOKEN:?' in script and 'MY_Secret="${OTHER_VAR:?' in script
    stages = {s["name"]: s for s in json.loads((run_dir / "stages.json").read_text())}
    assert stages["server"]["env_from"]["HF_TOKEN"] == "HF_TOKEN"
    train = stages["train"]["argv"]
    assert train[train.index("--api-key-env") + 1] == "MY_API_KEY"
    if engine == "vllm":
        assert stages["server"]["env_from"]["VLLM_API_KEY"] == "MY_API_KEY"
        assert 'VLLM_API_KEY="${MY_API_KEY:?set MY_API_KEY to the API key}"' in script
        assert "--api-key" not in " ".join(stages["server"]["argv"])
    else:
        srv = stages["server"]["argv"]
        assert srv[srv.index("--api-key-env") + 1] == "MY_API_KEY"
    # A run directory planned again (export RUN_DIR) keeps the references.
    again = cfgmod.load(run_dir / "run.toml")
    from speculators_core.plan.plan import plan_run
    assert SECRET not in plan_run(again, environ=environ).require().script


@pytest.mark.fault("security")
def test_secret_env_resolved_at_spawn_and_missing_one_fails_the_stage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from speculators_core.runs.supervisor import Supervisor

    run_dir = rundir.create_run_dir(_cfg(tmp_path), source="t")
    out = tmp_path / "seen"
    stage = Stage("train", [sys.executable, "-c",
                            f"import os; open({str(out)!r}, 'w').write(os.environ['VLLM_API_KEY'])"],
                  env_from={"VLLM_API_KEY": "MY_API_KEY"}, log="train.log", description="t")
    env = dict(os.environ, MY_API_KEY=SECRET)
    rc = Supervisor(run_dir, env, stages=[stage], skip_check=lambda s: None, poll_interval=0.02).run()
    assert rc == 0 and out.read_text() == SECRET
    for name in ("train.log", "state.json", "events.jsonl"):
        assert SECRET not in (run_dir / name).read_text(), name

    run_dir2 = rundir.create_run_dir(_cfg(tmp_path), source="t")
    env.pop("MY_API_KEY")
    rc = Supervisor(run_dir2, env, stages=[stage], skip_check=lambda s: None, poll_interval=0.02).run()
    assert rc != 0
    events = [json.loads(x) for x in (run_dir2 / "events.jsonl").read_text().splitlines()]
    failed = [e for e in events if e["event"] == "stage_failed"]
    assert failed and "MY_API_KEY" in failed[0]["message"] and "export MY_API_KEY" in failed[0]["message"]


@pytest.mark.fault("security")
def test_recorded_environ_keeps_no_secret(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = dict(os.environ, HF_TOKEN=SECRET, MY_API_KEY=SECRET, CUDA_VISIBLE_DEVICES="")
    run_dir = rundir.create_run_dir(_secret_cfg(tmp_path), source="t", environ=env)
    assert SECRET not in json.dumps(rundir.read_state(run_dir))
    assert set(rundir.recorded_environ(env)) <= {"CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS"}


@pytest.mark.fault("security")
@pytest.mark.parametrize("env,field", [({"BAD KEY": "1"}, "hidden_states.env.BAD KEY"),
                                       ({"X;touch m": "1"}, "hidden_states.env.X;touch m")])
def test_env_keys_must_be_names(tmp_path, env, field):
    cfg = _cfg(tmp_path)
    cfg.hidden_states.env = env
    errs = cfgmod.errors(cfgmod.validate(cfg))
    assert [p.field for p in errs] == [field]


@pytest.mark.fault("security")
@pytest.mark.parametrize("name", ["1KEY", "MY-KEY", "$(touch m)", "A B"])
def test_api_key_env_must_be_a_name(tmp_path, name):
    cfg = _cfg(tmp_path)
    cfg.hidden_states.api_key_env = name
    assert "hidden_states.api_key_env" in [p.field for p in cfgmod.errors(cfgmod.validate(cfg))]


@pytest.mark.fault("security")
@pytest.mark.parametrize("host,key,warned", [("0.0.0.0", "", True), ("10.0.0.5", "", True),
                                             ("0.0.0.0", "MY_API_KEY", False), ("127.0.0.1", "", False),
                                             ("localhost", "", False), ("::1", "", False)])
def test_non_loopback_server_without_key_is_warned(tmp_path, host, key, warned):
    cfg = _cfg(tmp_path)
    cfg.hidden_states.host, cfg.hidden_states.api_key_env = host, key
    probs = [p for p in cfgmod.validate(cfg) if p.field == "hidden_states.host"]
    assert [p.severity for p in probs] == (["warning"] if warned else [])


# --------------------------------------------------------------------------- finding 14: /dev/shm
@pytest.mark.fault("security")
def test_default_hidden_states_dir_is_per_user(tmp_path):
    from speculators_core.paths import default_hidden_states_dir
    from speculators_core.plan.flags import launch_vllm_parser

    d = default_hidden_states_dir()
    assert str(os.getuid()) in d or os.environ.get("XDG_RUNTIME_DIR", "\0") in d
    assert launch_vllm_parser().parse_args(["m"]).hidden_states_path == d


@pytest.mark.fault("security")
def test_private_dir_created_0700_and_foreign_or_open_dirs_refused(tmp_path):
    from speculators_core.paths import UnsafeDirectory, ensure_private_dir

    parent = tmp_path / "shm"
    parent.mkdir()
    parent.chmod(0o1777)
    d = ensure_private_dir(parent / "hs")
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert ensure_private_dir(d) == d  # ours and private: fine again
    d.chmod(0o777)
    with pytest.raises(UnsafeDirectory, match="writable by other users"):
        ensure_private_dir(d)
    link = parent / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(UnsafeDirectory, match="symlink"):
        ensure_private_dir(link)
    fake_uid = os.getuid() + 1
    d.chmod(0o700)
    with pytest.raises(UnsafeDirectory, match="owned by uid"):
        ensure_private_dir(d, uid=fake_uid)


@pytest.mark.fault("security")
def test_launch_vllm_refuses_an_open_default_dir(tmp_path, monkeypatch):
    from speculators_core import launch_vllm

    d = tmp_path / "hs"
    d.mkdir()
    d.chmod(0o777)
    monkeypatch.setattr(launch_vllm, "build", lambda argv: ([sys.executable, "-c", "pass"], {}, str(d)))
    monkeypatch.setattr(os, "execve", lambda *a: pytest.fail("exec'd with an unsafe directory"))
    assert launch_vllm.main(["m"]) == 2
