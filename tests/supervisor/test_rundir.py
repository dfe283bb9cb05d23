"""Run directories: layout, state, listing, log tails, and export == what the supervisor runs."""

import os
import time

from speculators_core import config as cfgmod
from speculators_core.runs import rundir
from speculators_core.plan.script import render_script
from speculators_core.config.presets import find_preset
from speculators_core.runs.supervisor import Supervisor


def _cfg(tmp_path, gpus=False):
    cfg = find_preset("tiny-cpu-demo").load()
    cfg.run.dir = str(tmp_path / "runs")
    if gpus:
        cfg.hidden_states.engine = "vllm"
        cfg.hidden_states.gpus = [0, 1]
        cfg.hidden_states.data_parallel_size = 2
        cfg.training.gpus = [2]
    return cfg


def test_create_run_dir_writes_resolved_config_script_and_state(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = _cfg(tmp_path)
    run_dir = rundir.create_run_dir(cfg, source="tiny-cpu-demo")
    assert run_dir.parent == tmp_path / "runs" and run_dir.name.startswith("tiny-cpu-demo-")
    resolved = cfgmod.load(run_dir / "run.toml")
    # Every key is present and relative paths are absolute (the run means the same from anywhere).
    text = (run_dir / "run.toml").read_text()
    assert "gpu_memory_utilization" in text and "tiny-cpu-demo" in text.splitlines()[0]
    assert resolved.data.output == str(tmp_path / "speculators-demo" / "data")
    assert resolved.training.checkpoint_dir == str(tmp_path / "speculators-demo" / "checkpoints")
    assert resolved.model.target == "builtin:tiny-qwen3" and resolved.data.sources == ["builtin:demo-chat"]
    assert os.access(run_dir / "run.sh", os.X_OK)
    assert f"--run-dir {run_dir}" in (run_dir / "run.sh").read_text().replace(" \\\n  ", " ")
    state = rundir.read_state(run_dir)
    assert state["status"] == "starting" and state["source"] == "tiny-cpu-demo"
    assert list(state["stages"]) == ["assets", "prepare", "server", "train", "evaluate"]  # in run order
    # A second run of the same config gets its own directory.
    assert rundir.create_run_dir(cfg) != run_dir


def test_export_of_a_run_dir_equals_what_the_supervisor_runs(tmp_path, monkeypatch, capsys):
    """`speculators-tui export RUN_DIR` == run.sh == the supervisor's stages, CUDA_VISIBLE_DEVICES included."""
    from speculators_tui.cli import main as cli_main

    monkeypatch.chdir(tmp_path)
    cfg = _cfg(tmp_path, gpus=True)
    environ = dict(os.environ, CUDA_VISIBLE_DEVICES="4,5,6,7")
    run_dir = rundir.create_run_dir(cfg, source="mine.toml", environ=environ)
    sup = Supervisor(run_dir, environ=environ)
    server = next(s for s in sup.stages if s.name == "server")
    assert server.env["CUDA_VISIBLE_DEVICES"] == "4,5"
    assert next(s for s in sup.stages if s.name == "train").env["CUDA_VISIBLE_DEVICES"] == "6"
    expected = render_script(sup.stages, sup.cfg, "mine.toml")
    assert (run_dir / "run.sh").read_text() == expected
    # Exported from another directory, under another CUDA_VISIBLE_DEVICES: still the same commands.
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    assert cli_main(["export", os.path.relpath(run_dir, other)]) == 0
    assert capsys.readouterr().out == expected


def test_read_state_list_runs_and_tail_lines(tmp_path):
    assert rundir.read_state(tmp_path / "nope") == {}
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "state.json").write_text("{not json")
    assert rundir.read_state(tmp_path / "bad") == {}
    parent = tmp_path / "runs"
    a, b = parent / "a", parent / "b"
    for d, started in ((a, 100.0), (b, 200.0)):
        d.mkdir(parents=True)
        rundir.write_state(d, {"started": started, "status": "completed"})
    (parent / "not-a-run").mkdir()
    assert rundir.list_runs(parent) == [b, a]
    assert rundir.list_runs(tmp_path / "missing") == []
    log = tmp_path / "x.log"
    log.write_bytes(b"".join(f"line {i}\n".encode() for i in range(5000)) + b"50%\r75%\r100%\n")
    assert rundir.tail_lines(log, 3) == ["line 4998", "line 4999", "100%"]
    assert rundir.tail_lines(tmp_path / "none.log") == []


def test_events_are_jsonl(tmp_path):
    from speculators_core.fsutil import read_jsonl

    rundir.append_event(tmp_path, "warning", "x", kind="bottleneck", fix="y", fix_config={"a.b": 1})
    (rec,), _ = read_jsonl(tmp_path / "events.jsonl")
    assert rec["event"] == "warning" and rec["fix_config"] == {"a.b": 1} and rec["time"] <= time.time()
