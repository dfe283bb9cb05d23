"""The dashboard's stage timeline shows the regenerate stage with its rate, read from metrics.jsonl."""

from __future__ import annotations

import json

from speculators_tui.data.run_watch import RunWatcher, StageView
from speculators_tui.widgets.stage_timeline import timeline


def test_timeline_shows_the_regenerate_rate(tmp_path):
    rec = {"type": "regenerate", "time": 1.0, "rows_done": 37, "rows_total": 96, "rows_per_s": 1.23,
           "tokens_per_s": 410.4, "eta_s": 48.0, "failed": 0, "rejected": 0}
    (tmp_path / "metrics.jsonl").write_text(json.dumps(rec) + "\n")
    w = RunWatcher(tmp_path)
    w.poll()
    assert w.regenerate["rows_done"] == 37
    stages = [StageView("regenerate", "running", 0.0, None), StageView("prepare", "pending", None, None)]
    text = timeline(stages, "running", 65.0, None, w.regenerate).plain
    assert "regenerate 1:05 (37/96 rows · 1.2 rows/s · 410 tok/s)" in text
    assert "(37/96" not in timeline(stages, "running", 65.0).plain  # no record yet: no rate
