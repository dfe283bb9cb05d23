"""The run commands' argument handling and read-only views, through the real CLI entry point."""

import json
import time

from speculators_core import config as cfgmod
from speculators_core.runs import rundir
from speculators_core.runs.control import stop_run
from speculators_tui.cli import main


def test_run_refuses_an_invalid_config_before_creating_a_run(tmp_path, capsys):
    cfg = cfgmod.RunConfig()
    cfg.model.target = "builtin:tiny-qwen3"
    cfg.hidden_states.gpus = [0]
    cfg.training.gpus = [0]  # shared without allow_gpu_sharing: an error
    cfg.run.dir = str(tmp_path / "runs")
    cfgmod.save(cfg, tmp_path / "bad.toml")
    assert main(["run", str(tmp_path / "bad.toml"), "--headless"]) == 2
    err = capsys.readouterr().err
    assert "training.gpus" in err and "allow_gpu_sharing" in err
    assert not (tmp_path / "runs").exists()


def test_status_attach_and_stop_of_a_finished_run(tmp_path, capsys):
    cfg = cfgmod.RunConfig()
    cfg.model.target = "builtin:tiny-qwen3"
    cfg.hidden_states.engine, cfg.hidden_states.gpus, cfg.training.gpus = "hf", [], []
    run_dir = rundir.create_run_dir(cfg, parent=str(tmp_path / "runs"))
    st = rundir.read_state(run_dir)
    st.update(status="completed", finished=time.time())
    st["stages"]["train"].update(status="done", returncode=0)
    rundir.write_state(run_dir, st)
    with open(run_dir / "metrics.jsonl", "w") as fh:
        fh.write(json.dumps({"type": "start", "total_steps": 10, "epochs": 1}) + "\n")
        fh.write(json.dumps({"type": "train", "step": 10, "epoch": 0, "loss": 0.5, "step_time_s": 1.0,
                             "data_wait_s": 0.25}) + "\n")
        fh.write(json.dumps({"type": "checkpoint", "path": "/x/0", "best": True, "val_loss": 0.4}) + "\n")
        for k, al, tps in ((1, 1.3, 50.0), (2, 1.45, 61.0), (3, 1.5, 58.0)):  # the evaluate stage's sweep
            fh.write(json.dumps({"type": "eval", "engine": "hf", "epoch": 0, "checkpoint": "/x/checkpoint_best",
                                 "num_speculative_tokens": k, "acceptance_length": al, "tokens_per_s": tps,
                                 "per_position_acceptance": [0.3] * k, "speedup": None}) + "\n")
    rundir.append_event(run_dir, "warning", "training waited 25%", kind="bottleneck", fix="do X",
                        fix_config={"training.mode": "hybrid"})
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "status:  completed" in out and "step 10/10" in out and "waited 25%" in out
    assert "best:    /x/0" in out and 'training.mode = "hybrid"' in out
    # measured acceptance at the K with the most output tokens/s, the sweep beside it, the K to serve with
    assert ("eval:    measured acceptance length 1.45 at K = 2 (hf engine; K 1: 1.30, K 2: 1.45, K 3: 1.50); "
            "serve with K = 2") in out
    assert main(["status", str(tmp_path / "runs")]) == 0
    assert run_dir.name in capsys.readouterr().out
    assert main(["attach", str(run_dir), "--headless"]) == 0  # finished: prints and returns
    out = capsys.readouterr().out
    assert "completed" in out and "serve with K = 2" in out  # the run summary
    assert main(["stop", str(run_dir)]) == 0 and "was not running" in capsys.readouterr().out
    assert stop_run(run_dir) is False
    assert main(["status", str(tmp_path / "nothing")]) == 2


def test_gpus_json_without_a_driver_is_clean(capsys):
    assert main(["gpus", "tiny-cpu-demo", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    if not out["gpus"]:
        assert out["error"].startswith("no GPU: ")
        assert out["advice"]["server_gpus"] == [] and out["assignment_warnings"] == []


def test_recorded_demo_run_reads_back(capsys):
    """The recorded run the dashboard tests use is a complete, readable run directory."""
    from pathlib import Path

    from speculators_core.fsutil import read_jsonl

    rec = Path(__file__).resolve().parent.parent / "data" / "recorded_run"
    metrics = read_jsonl(rec / "metrics.jsonl")[0]
    assert metrics[0]["type"] == "start" and metrics[-1] == {**metrics[-1], "type": "end", "status": "completed"}
    assert [r["step"] for r in metrics if r["type"] == "train"] == list(range(1, metrics[0]["total_steps"] + 1))
    events = [e["event"] for e in read_jsonl(rec / "events.jsonl")[0]]
    assert events[0] == "run_started" and events[-1] == "run_finished" and "warning" in events
    assert cfgmod.load(rec / "run.toml").model.target == "builtin:tiny-qwen3"
    assert main(["status", str(rec)]) == 0
    out = capsys.readouterr().out
    assert "status:  completed" in out and "step 126/126" in out


def test_attach_to_a_run_whose_supervisor_was_killed_returns(tmp_path, capsys):
    cfg = cfgmod.RunConfig()
    cfg.model.target = "builtin:tiny-qwen3"
    cfg.hidden_states.engine, cfg.hidden_states.gpus, cfg.training.gpus = "hf", [], []
    run_dir = rundir.create_run_dir(cfg, parent=str(tmp_path / "runs"))
    st = rundir.read_state(run_dir)
    st.update(status="running", pid=1, pid_start=-1)  # a recorded supervisor that no longer exists
    rundir.write_state(run_dir, st)
    t0 = time.monotonic()
    assert main(["attach", str(run_dir), "--headless"]) == 1
    assert time.monotonic() - t0 < 5
    assert "supervisor (pid 1) is gone" in capsys.readouterr().out
    assert main(["status", str(run_dir)]) == 0
    assert "it was killed; `stop` cleans up" in capsys.readouterr().out
