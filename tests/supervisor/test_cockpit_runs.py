"""The operator's cockpit in the engine: the pace and ETA of a run (runs/eta.py), alerts and their
terminal notifications (runs/alerts.py), the run history (runs/index.py) and run comparison
(runs/compare.py, `speculators-tui compare`)."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from speculators_core.runs import index
from speculators_core.runs.alerts import AlertWatch, NotifySettings, load_settings, terminal_sequences
from speculators_core.runs.compare import compare_text, config_diff, fmt_value, load_run, resolve_run
from speculators_core.runs.eta import Pace, PaceTracker
from speculators_core.runs.reader import RunReader

REPO = Path(__file__).resolve().parents[2]
RECORDED = REPO / "tests" / "data" / "recorded_run"


@pytest.fixture
def history(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(d))
    return d / "speculators-tui" / "runs"


def train(step: int, t: float, epoch: int, spe: int, tokens: int = 1000) -> dict:
    return {"type": "train", "time": t, "step": step, "epoch": epoch,
            "epoch_progress": ((step - 1) % spe + 1) / spe, "loss": 1.0, "tokens": tokens}


def synthetic(steps: int, spe: int = 10, epochs: int = 3, gap: float = 2.0, pause: float = 30.0) -> list[dict]:
    """Steps every `gap` s; each epoch's end (validation) takes `pause` s more."""
    recs = [{"type": "start", "time": 0.0, "epochs": epochs, "steps_per_epoch": spe, "total_steps": spe * epochs}]
    t = 0.0
    for s in range(1, steps + 1):
        t += gap + (pause if s > 1 and (s - 1) % spe == 0 else 0.0)
        recs.append(train(s, t, (s - 1) // spe, spe))
    return recs


# ------------------------------------------------------------------------------------------ pace / ETA
def test_eta_from_the_step_rate_and_the_measured_epoch_end():
    tr = PaceTracker()
    tr.add_all(synthetic(15))  # mid epoch 2 (0-based 1), one epoch end seen
    last_t = tr.last["time"]
    p = tr.estimate(last_t + 1.0, ["prepare", "server", "train"], {})
    assert p.steps_per_s == pytest.approx(0.5)
    assert p.tokens_per_s == pytest.approx(500.0)
    assert p.eta_epoch_s == pytest.approx(5 * 2.0)  # steps 16..20
    assert tr.epoch_end_s == pytest.approx(30.0)
    # 15 steps left at 2 s, plus the end of epochs 2 and 3 (30 s each)
    assert p.eta_run_s == pytest.approx(15 * 2.0 + 2 * 30.0)
    assert p.includes_epoch_end and p.stalled_s is None
    assert p.text() == "0.50 steps/s · 500 tok/s · epoch ETA 0:00:10 · run ETA 0:01:30"


def test_eta_names_the_stages_after_training_it_does_not_include():
    tr = PaceTracker()
    tr.add_all(synthetic(5))
    p = tr.estimate(tr.last["time"], ["prepare", "server", "train", "evaluate"], {"evaluate": "pending"})
    assert p.not_included == ("evaluate",)
    assert p.text().endswith("+ evaluate")
    done = tr.estimate(tr.last["time"], ["prepare", "server", "train", "evaluate"], {"evaluate": "done"})
    assert done.not_included == ()


def test_a_stall_is_no_step_for_n_median_step_times():
    tr = PaceTracker(stall_factor=10.0, stall_min_s=5.0)
    tr.add_all(synthetic(8))  # 2 s per step
    last = tr.last["time"]
    assert tr.estimate(last + 19.0).stalled_s is None
    p = tr.estimate(last + 21.0)
    assert p.stalled_s == pytest.approx(21.0)
    assert "STALLED: no step for 0:00:21" in p.text()
    assert tr.estimate(last + 21.0, training=False).stalled_s is None  # not while training is not running


def test_no_stall_while_the_first_validation_runs():
    """After an epoch's last step, validation: allowed for from val_rows/train_rows before it was measured."""
    tr = PaceTracker(stall_factor=10.0, stall_min_s=5.0)
    recs = synthetic(10)  # the whole first epoch, 2 s a step
    recs[0].update(train_rows=100, val_rows=50)
    tr.add_all(recs)
    last = tr.last["time"]
    assert tr.epoch_end_s is None
    # validation of 50 rows ~ 5 steps' time (10 s) + 10 x 2 s: no stall before 30 s
    assert tr.estimate(last + 29.0).stalled_s is None
    assert tr.estimate(last + 31.0).stalled_s == pytest.approx(31.0)


def test_a_resumed_run_starts_a_new_pace_and_an_ended_run_has_no_eta():
    tr = PaceTracker()
    tr.add_all(synthetic(12))
    tr.add({"type": "start", "time": 500.0, "epochs": 3, "steps_per_epoch": 10, "total_steps": 30})
    tr.add(train(11, 600.0, 1, 10))  # replayed steps after resuming from epoch 1
    tr.add(train(12, 604.0, 1, 10))
    assert tr.estimate(605.0).steps_per_s == pytest.approx(0.25)
    tr.add({"type": "end", "time": 606.0, "status": "completed"})
    p = tr.estimate(700.0)
    assert p.eta_run_s is None and p.eta_epoch_s is None and p.steps_per_s == pytest.approx(0.25)


def test_pace_of_the_recorded_run_through_the_reader():
    r = RunReader(RECORDED)
    r.read_state()
    recs = r.read_metrics()
    trains = [x for x in recs if x["type"] == "train"]
    gaps = sorted(b["time"] - a["time"] for a, b in zip(trains[-32:], trains[-31:]))
    median = (gaps[15] + gaps[14]) / 2 if len(gaps) % 2 == 0 else gaps[len(gaps) // 2]
    p = r.pace()
    assert p.step == 126 and p.total_steps == 126
    assert p.steps_per_s == pytest.approx(1 / median)
    assert p.eta_run_s is None  # the run has ended
    assert r.plan() == ["assets", "prepare", "server", "train"]  # no stages.json: state.json's order


# ------------------------------------------------------------------------------------------ alerts
def test_alerts_fire_once_per_moment_and_not_for_what_happened_before_attaching():
    w = AlertWatch("demo")
    old = {"time": 1.0, "kind": "bottleneck", "message": "old"}
    assert w.check("running", old, Pace()) == []  # primed: nothing rings when attaching
    assert w.check("running", old, Pace()) == []
    new = {"time": 2.0, "kind": "bottleneck", "message": "waits 40%", "fix": "hybrid mode"}
    got = w.check("running", new, Pace())
    assert [(a.kind, a.title) for a in got] == [("warning", "demo: bottleneck")]
    assert "fix: hybrid mode" in got[0].message
    stalled = Pace(stalled_s=300.0, step_time_s=2.0)
    assert [a.kind for a in w.check("running", new, stalled)] == ["stalled"]
    assert w.check("running", new, stalled) == []  # once per stall
    assert [a.kind for a in w.check("failed", new, Pace())] == ["failed"]
    w2 = AlertWatch("demo")
    w2.check("running", None, None)
    assert [a.kind for a in w2.check("completed", None, None)] == ["finished"]


def test_terminal_sequences_bell_osc9_osc777_tmux_and_off():
    from speculators_core.runs.alerts import Alert

    a = Alert("finished", "demo\x1b]52;x finished", "done;\x07 all")
    seq = terminal_sequences(a, NotifySettings(bell=True, desktop=True), environ={})
    assert seq.startswith("\a")
    assert "\x1b]9;demo ]52,x finished: done;  all\x07" in seq
    assert "\x1b]777;notify;demo ]52,x finished;done,  all\x07" in seq
    assert seq.count("\x1b") == 2  # the title's own escape was removed
    tmux = terminal_sequences(a, NotifySettings(bell=False, desktop=True), environ={"TMUX": "/tmp/x"})
    assert tmux.startswith("\x1bPtmux;\x1b\x1b]9;") and tmux.endswith("\x1b\\") and "\a" != tmux[0]
    assert terminal_sequences(a, NotifySettings(bell=False, desktop=False), environ={}) == ""


def test_notify_settings_file_and_environment(tmp_path):
    f = tmp_path / "notify.toml"
    assert load_settings({}, f) == NotifySettings()
    f.write_text("bell = false\nstall_factor = 4\n")
    assert load_settings({}, f) == NotifySettings(bell=False, desktop=True, stall_factor=4.0)
    assert load_settings({"SPECULATORS_TUI_NOTIFY": "off"}, f).enabled is False
    assert load_settings({"SPECULATORS_TUI_NOTIFY": "bell"}, f) == NotifySettings(True, False, 4.0)
    f.write_text("bell = [broken")
    assert load_settings({}, f) == NotifySettings()  # a bad file never stops watching a run
    assert os.environ.get("SPECULATORS_TUI_NOTIFY") == "off"  # the test suite rings nothing


def test_follow_rings_the_terminal_when_the_run_ends(tmp_path, monkeypatch):
    from rich.console import Console

    from speculators_tui.run_cli import follow

    run = tmp_path / "run"
    shutil.copytree(RECORDED, run)
    st = json.loads((run / "state.json").read_text())
    st.update(status="running", finished=None, pid=None)
    (run / "state.json").write_text(json.dumps(st))
    monkeypatch.setenv("SPECULATORS_TUI_NOTIFY", "bell,desktop")
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)

    def finish():
        time.sleep(0.5)
        st.update(status="completed", finished=time.time())
        (run / "state.json.tmp").write_text(json.dumps(st))
        os.replace(run / "state.json.tmp", run / "state.json")

    threading.Thread(target=finish, daemon=True).start()
    follow(run, console=console, interval=0.05)
    text = out.getvalue()
    assert "\a" in text and f"\x1b]9;{run.name} finished: the run completed\x07" in text
    assert f"\x1b]777;notify;{run.name} finished;the run completed\x07" in text


# ------------------------------------------------------------------------------------------ run history
def _register_many(args):
    xdg, dirs = args
    os.environ["XDG_DATA_HOME"] = xdg
    for d in dirs:
        for _ in range(5):
            index.register(Path(d))


def test_run_history_register_list_refresh_prune_and_concurrent_writers(history, tmp_path):
    runs = []
    for i in range(4):
        rd = tmp_path / f"run{i}"
        shutil.copytree(RECORDED, rd)
        st = json.loads((rd / "state.json").read_text())
        st.update(name=f"run{i}", started=1000.0 + i)
        (rd / "state.json").write_text(json.dumps(st))
        runs.append(rd)
    # 4 processes register the same 4 runs 5 times each, at once: every entry stays whole
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        pool.map(_register_many, [(os.environ["XDG_DATA_HOME"], [str(r) for r in runs])] * 4)
    assert sorted(p.name for p in history.iterdir()) == sorted(f"{index._key(r)}.json" for r in runs)
    entries = index.list_entries()
    assert [e.name for e in entries] == ["run3", "run2", "run1", "run0"]  # newest first
    e = entries[0]
    assert e.status == "completed" and e.steps == 126
    assert e.best_val_loss == pytest.approx(0.058267186232658294)
    assert e.val_acceptance_length == pytest.approx(1.3652590779273766)
    assert e.acceptance_length is None and len(e.config_hash) == 12
    assert entries[1].config_hash == e.config_hash
    # measured acceptance: `eval` records of the evaluate stage
    with (runs[3] / "metrics.jsonl").open("a") as fh:
        fh.write(json.dumps({"type": "eval", "time": 2e9, "epoch": 2, "checkpoint": "checkpoint_best",
                             "num_speculative_tokens": 3, "acceptance_length": 1.81,
                             "per_position_acceptance": [0.5, 0.2, 0.1], "tokens_per_s": 90.0,
                             "speedup": 1.4}) + "\n")
    index.register(runs[3])
    e = index.list_entries()[0]
    assert (e.acceptance_length, e.speedup) == (1.81, 1.4)
    # a status change in state.json is seen without re-registering
    st = json.loads((runs[2] / "state.json").read_text())
    st["status"] = "failed"
    time.sleep(0.01)
    (runs[2] / "state.json").write_text(json.dumps(st))
    assert {x.name: x.status for x in index.list_entries()}["run2"] == "failed"
    # deleted directories are pruned
    shutil.rmtree(runs[1])
    assert [x.name for x in index.list_entries()] == ["run3", "run2", "run0"]
    assert not index.entry_path(runs[1]).exists()
    assert index.find_entry("run2").dir == str(runs[2].resolve())
    assert str(history).startswith(str(tmp_path))  # never the real home


def test_a_run_registers_itself_when_created_and_when_it_ends(history, run_dir, port):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent / "fakes"))
    from stages import fake_stages

    from speculators_core.runs.supervisor import Supervisor

    entry = json.loads(index.entry_path(run_dir).read_text())
    assert entry["status"] == "starting" and entry["dir"] == str(run_dir)
    stages = fake_stages(run_dir, port, trainer_args=["--steps", "1"], prepare_code="pass")
    assert Supervisor(run_dir, stages=stages, skip_check=lambda s: None, grace=5.0).run() == 0
    entry = json.loads(index.entry_path(run_dir).read_text())
    assert entry["status"] == "completed" and entry["finished"] is not None


# ------------------------------------------------------------------------------------------ compare
def _variant(tmp_path: Path, name: str, lr: str, epochs: int) -> Path:
    rd = tmp_path / name
    shutil.copytree(RECORDED, rd)
    text = (rd / "run.toml").read_text().replace("lr = 0.0003", f"lr = {lr}").replace("epochs = 3", f"epochs = {epochs}")
    (rd / "run.toml").write_text(text)
    st = json.loads((rd / "state.json").read_text())
    st["name"] = name
    (rd / "state.json").write_text(json.dumps(st))
    return rd


def test_compare_curves_and_config_difference(tmp_path):
    b = _variant(tmp_path, "run-b", "0.0001", 2)
    runs = [load_run(RECORDED), load_run(b)]
    assert len(runs[0].train_loss) == 126 and len(runs[0].val_loss) == 3
    assert runs[0].best_val_loss == pytest.approx(0.058267186232658294)
    assert config_diff(runs) == [("training.epochs", ["3", "2"]), ("training.lr", ["3e-4", "1e-4"])]
    text = compare_text(runs)
    assert "training.lr      3e-4 -> 1e-4" in text
    assert "training.epochs  3 -> 2" in text
    assert "epoch 3  A: 0.0583 / 0.192 / 1.37   B: 0.0583 / 0.192 / 1.37" in text
    assert fmt_value(1e-4) == "1e-4" and fmt_value(0.9) == "0.9" and fmt_value([0, 1]) == "[0, 1]"


def test_compare_cli_on_recorded_runs_and_names_from_the_history(history, tmp_path, capsys):
    from speculators_tui.cli import main

    b = _variant(tmp_path, "run-b", "0.0001", 3)
    index.register(b)
    assert main(["compare", str(RECORDED), "run-b"]) == 0
    out = capsys.readouterr().out
    assert "training.lr  3e-4 -> 1e-4" in out and str(b.resolve()) in out
    assert "train loss (shared scales" in out
    assert main(["compare", str(RECORDED), str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "nope: neither a run directory" in err and "fix:" in err
    assert main(["compare", str(RECORDED)]) == 2
    with pytest.raises(Exception):
        resolve_run(str(tmp_path / "nope"))


def test_runs_cli_lists_the_history(history, tmp_path, capsys):
    from speculators_tui.cli import main

    assert main(["runs"]) == 0
    assert "no runs in the run history yet" in capsys.readouterr().out
    b = _variant(tmp_path, "run-b", "0.0001", 3)
    index.register(b)
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert "run-b" in out and "completed" in out and "val 0.05827" in out and "accept~1.37" in out


def test_status_shows_the_pace(capsys):
    from speculators_tui.cli import main

    assert main(["status", str(RECORDED)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("train:"))
    assert "step 126/126" in line and "0.19 steps/s · 379 tok/s" in line


def test_a_resumed_start_keeps_the_measurements_of_the_epochs_it_resumed_from(tmp_path):
    """The evaluate stage reuses (and does not record again) what was measured on the checkpoints a
    resumed run keeps, so the reader must keep those records; a fresh start replaces them all."""
    def ev(epoch, k, al):
        return {"type": "eval", "epoch": epoch, "checkpoint": f"ck/checkpoint_{epoch}", "num_speculative_tokens": k,
                "acceptance_length": al}

    recs = [{"type": "start", "resumed_from_epoch": None}, ev(0, 1, 1.4), ev(0, 2, 1.6), ev(1, 1, 1.5),
            {"type": "eval_best", "epoch": 1, "acceptance_length": 1.5, "num_speculative_tokens": 1},
            {"type": "start", "resumed_from_epoch": 0}]  # killed in epoch 2; epoch 1's checkpoint is redone
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    reader = RunReader(tmp_path)
    reader.read_metrics()
    assert [(e["epoch"], e["num_speculative_tokens"]) for e in reader.evals] == [(0, 1), (0, 2)]
    assert reader.eval_best is None  # it named epoch 1, which the resumed run writes again
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write(json.dumps(ev(1, 1, 1.7)) + "\n")
        f.write(json.dumps({"type": "start", "resumed_from_epoch": None}) + "\n")
    reader.read_metrics()
    assert reader.evals == [] and reader.eval_best is None  # a fresh start: every checkpoint is new


def test_history_shows_a_run_whose_supervisor_was_killed_as_interrupted(history, tmp_path):
    """kill -9 leaves state.json saying "running"; the history must not."""
    import socket
    import subprocess

    from speculators_core import procs

    gone = subprocess.Popen(["true"])
    gone.wait()  # a PID that has exited (were it reused, its start time tells it apart)

    def run(name: str, **state) -> Path:
        rd = tmp_path / name
        shutil.copytree(RECORDED, rd)
        st = json.loads((rd / "state.json").read_text())
        st.update(name=name, status="running", finished=None, **state)
        (rd / "state.json").write_text(json.dumps(st))
        index.register(rd)
        return rd

    here = socket.gethostname()
    run("killed", pid=gone.pid, pid_start=None, host=here)
    run("alive", pid=os.getpid(), pid_start=procs.start_ticks(os.getpid()), host=here)
    run("elsewhere", pid=gone.pid, pid_start=None, host=here + "-another-node")
    run("old-format", pid=gone.pid, pid_start=None)  # before state.json named its host
    run("starting", pid=None)
    status = {e.name: e.status for e in index.list_entries()}
    assert status == {"killed": "interrupted", "alive": "running", "elsewhere": "running",
                      "old-format": "interrupted", "starting": "running"}
    # shown only: the run's files and its history entry still hold what the run wrote
    assert json.loads(index.entry_path(tmp_path / "killed").read_text())["status"] == "running"
