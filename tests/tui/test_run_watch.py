"""The dashboard's file reader: incremental, tolerant of partial lines, bounded."""

import json

from speculators_tui.data.run_watch import RunWatcher
from speculators_tui.widgets.line_chart import LineChart


def test_reads_appended_records_and_skips_partial_lines(tmp_path):
    w = RunWatcher(tmp_path)
    assert w.poll() is False
    m = tmp_path / "metrics.jsonl"
    m.write_text(json.dumps({"type": "start", "ttt_steps": 2, "total_steps": 10, "epochs": 1}) + "\n"
                 + json.dumps({"type": "train", "step": 1, "epoch": 0, "loss": 3.0, "full_acc_0": 0.5,
                               "full_acc_1": 0.25, "tokens_per_s": 100.0}) + "\n"
                 + '{"type": "train", "step": 2, "lo')  # a writer mid-append
    assert w.poll() is True
    assert w.train_loss == [(1.0, 3.0)]
    assert w.acceptance_length() == 1.75
    with m.open("a") as fh:
        fh.write('ss": 2.0}\n')
    assert w.poll() is True
    assert w.train_loss == [(1.0, 3.0), (2.0, 2.0)]
    assert w.poll() is False


def test_val_acceptance_length_checkpoints_and_serve_command(fabricated_run):
    w = RunWatcher(fabricated_run)
    w.poll()
    assert w.status == "completed" and w.finished
    assert len(w.checkpoints) == 3 and [c["best"] for c in w.checkpoints] == [False, False, True]
    v = w.last_val
    assert abs(w.acceptance_length() - (1 + sum(v[f"full_acc_{k}"] for k in range(3)))) < 1e-9
    assert w.serve_command(str(fabricated_run / "checkpoints")) == \
        f"vllm serve {fabricated_run / 'checkpoints' / 'checkpoint_best'}"
    assert w.warning["fix_config"]["hidden_states.data_parallel_size"] == 3
    assert [s.name for s in w.stages()] == ["prepare", "server", "train"]
    assert w.gpus[0].role == "server" and len(w.gpus[1].util_hist) == 20


def test_log_tail_is_incremental(tmp_path):
    w = RunWatcher(tmp_path)
    assert w.read_log("trainer") == ""
    log = tmp_path / "train.log"
    log.write_text("a\nb\npartial")
    assert w.read_log("trainer") == "a\nb\n"
    with log.open("a") as fh:
        fh.write(" line\nc\n")
    assert w.read_log("trainer") == "partial line\nc\n"
    assert w.read_log("trainer") == ""


def test_line_chart_draws_axes_and_points():
    chart = LineChart("loss")
    chart.series = [("train", [(1, 4.0), (2, 3.0), (3, 1.0)], "cyan")]
    lines = [t.plain for t in chart.render_lines_text(40, 10)]
    assert len(lines) == 10
    assert lines[0].strip().startswith("4.15")  # top label = max + 5% padding
    assert lines[-2].strip().startswith("0.85")  # bottom label = min - 5%
    assert any(ch for line in lines[:-1] for ch in line if 0x2800 < ord(ch) <= 0x28FF)
    assert lines[-1].strip().startswith("└1─") and lines[-1].endswith("─3 step")
    assert chart.legend() == "[cyan]■[/] train"  # the colour key goes in the bottom border
    empty = LineChart("x")
    assert "waiting for data" in empty.render_lines_text(30, 6)[0].plain


def test_line_chart_smoothing_keeps_the_scale_of_the_data():
    raw = LineChart("acc", y_range=(0.0, 1.0))
    smooth = LineChart("acc", y_range=(0.0, 1.0), smooth=0.8)
    pts = [(float(i), 0.9 if i % 2 else 0.1) for i in range(1, 41)]
    for c in (raw, smooth):
        c.series = [("step 0", pts, "green")]
    dots = lambda c: sum(1 for t in c.render_lines_text(30, 12)[:-1] for ch in t.plain if 0x2800 < ord(ch) <= 0x28FF)
    assert dots(smooth) < dots(raw)  # a zig-zag drawn as a line around 0.5, not a filled band


def test_events_are_shown_once_each(fabricated_run):
    w = RunWatcher(fabricated_run)
    w.poll()
    text = w.read_log("events")
    assert text.count("\n") == 6 and "server_healthy server: healthy" in text
    assert "(fix: give the server GPUs 0,1,3 (data parallel 3))" in text
    assert w.read_log("events") == ""
    with (fabricated_run / "events.jsonl").open("a") as fh:
        fh.write(json.dumps({"time": 1.0, "event": "run_stopped", "message": "bye"}) + "\n")
    w.poll()
    assert w.read_log("events").endswith("run_stopped: bye\n")


def test_a_resumed_run_replaces_the_steps_it_replays(tmp_path):
    def rec(kind, step, loss):
        return json.dumps({"type": kind, "step": step, "epoch": 0, "loss": loss, "full_acc_0": loss / 10}) + "\n"

    m = tmp_path / "metrics.jsonl"
    # steps 1-4, killed after step 4; the checkpoint was at step 2: the resumed process replays 3-4
    m.write_text(json.dumps({"type": "start", "ttt_steps": 1}) + "\n" + rec("train", 1, 4.0) + rec("train", 2, 3.0)
                 + rec("val", 2, 3.5) + rec("train", 3, 2.9) + rec("train", 4, 2.8)
                 + json.dumps({"type": "start", "ttt_steps": 1, "resumed_from_epoch": 0}) + "\n"
                 + rec("train", 3, 2.5) + rec("train", 4, 2.4) + rec("train", 5, 2.3) + rec("val", 2, 3.4))
    w = RunWatcher(tmp_path)
    w.poll()
    assert w.train_loss == [(1.0, 4.0), (2.0, 3.0), (3.0, 2.5), (4.0, 2.4), (5.0, 2.3)]
    assert [s for s, _ in w.acc[0]] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert w.val_loss == [(2.0, 3.4)]


def test_eval_records_give_the_measured_line_and_move_best(tmp_path):
    """The evaluate stage's records: measured acceptance beside the replayed validation figure,
    the K to serve with, and checkpoint_best re-pointed by measured acceptance."""
    w = RunWatcher(tmp_path)
    recs = [{"type": "start", "ttt_steps": 3, "epochs": 2},
            {"type": "val", "epoch": 1, "acceptance_length": 1.46, "acceptance_length_estimate": 1.83},
            {"type": "checkpoint", "epoch": 0, "path": "/c/0", "best": True},
            {"type": "checkpoint", "epoch": 1, "path": "/c/1", "best": False},
            {"type": "eval", "engine": "hf", "epoch": 0, "checkpoint": "/c/0", "num_speculative_tokens": 3,
             "acceptance_length": 1.2, "tokens_per_s": 9.0, "speedup": 1.1},
            {"type": "eval", "engine": "hf", "epoch": 1, "checkpoint": "/c/1", "num_speculative_tokens": 3,
             "acceptance_length": 1.47, "tokens_per_s": 10.0, "speedup": 1.3},
            {"type": "eval_best", "epoch": 1, "checkpoint": "/c/1", "acceptance_length": 1.47}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert w.poll() is True
    assert w.acceptance_length() == 1.46
    assert [c["best"] for c in w.checkpoints] == [False, True]
    assert w.measured_text() == ("measured acceptance length 1.47 at K = 3, speedup 1.30x (hf engine; K 3: 1.47); "
                                 "serve with K = 3")
