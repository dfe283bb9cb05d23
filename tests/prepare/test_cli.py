"""`python -m speculators_core.prepare` as a real process on the bundled demo data."""

from __future__ import annotations

import os
import subprocess
import sys

from speculators_core.plan.flags import prepare_parser


def _run(argv, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    return subprocess.run([sys.executable, "-m", "speculators_core.prepare", *argv], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=300)


def test_cli_end_to_end_on_demo_data(tiny_target, tmp_path):
    import datasets

    from speculators_core.prepare import is_prepared

    out = tmp_path / "prepared"
    argv = ["--model", "builtin:tiny-qwen3", "--data", "builtin:demo-chat", "--output", str(out),
            "--seq-length", "512", "--num-preprocessing-workers", "2", "--max-samples", "100"]
    p = _run(argv, tmp_path)
    assert p.returncode == 0, p.stderr
    assert f"prepared {out}" in p.stdout and "kept: 100" in p.stdout and "trainable tokens:" in p.stdout
    ds = datasets.load_from_disk(str(out))
    assert len(ds) == 100 and max(ds["seq_len"]) <= 512
    assert (out / "token_freq.pt").is_file()
    assert is_prepared(prepare_parser().parse_args(argv))
    again = _run(argv, tmp_path)
    assert again.returncode == 0 and "already prepared" in again.stdout
    changed = _run(argv[:-1] + ["50"], tmp_path)
    assert changed.returncode == 2
    assert "already holds a dataset prepared from other inputs" in changed.stderr and "--overwrite" in changed.stderr


def test_cli_reports_bad_input_with_file_and_line(tiny_target, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\nnot json\n')
    p = _run(["--model", str(tiny_target), "--data", str(bad), "--output", str(tmp_path / "o")], tmp_path)
    assert p.returncode == 2
    assert f"error: {bad}:2: unreadable JSON line" in p.stderr
    assert "Traceback" not in p.stderr


def test_demo_prepared_fixture(demo_prepared):
    import datasets
    import torch

    ds = datasets.load_from_disk(str(demo_prepared))
    assert len(ds) > 100 and max(ds["seq_len"]) <= 1024
    freq = torch.load(demo_prepared / "token_freq.pt")
    assert sum(freq.values()) == sum(sum(m) for m in ds["loss_mask"])


def test_cli_sigterm_stops_workers_and_leaves_no_output(tiny_target, tmp_path):
    import json
    import signal
    import time

    rows = [{"messages": [{"role": "user", "content": f"Question {i}: what is {i} squared?"},
                          {"role": "assistant", "content": f"{i} squared is {i * i}. " * 20}]} for i in range(40000)]
    data = tmp_path / "big.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "speculators_core.prepare", "--model", str(tiny_target), "--data", str(data),
         "--output", str(out), "--num-preprocessing-workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        seen = ""
        while "prepare:" not in seen and time.monotonic() < deadline:  # the progress bar: processing began
            seen += proc.stderr.read(1)
        assert "prepare:" in seen
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM
        time.sleep(0.5)
        try:
            os.killpg(proc.pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        assert not alive, "worker processes survived the parent"
        assert not out.exists() and not list(tmp_path.glob(".out.tmp-*"))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
