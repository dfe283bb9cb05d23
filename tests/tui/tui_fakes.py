"""Made-up GPUs and a recorded-looking run directory for the app's tests (schemas of docs/interfaces.md).

Run it as a script to open the app on them (for looking at it in tmux):
    python tests/tui/tui_fakes.py [gpus|nogpu|dashboard DIR]
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from speculators_core.runs.gpu import GpuInfo, GpuProbe, GpuProcess


def four_gpus() -> GpuProbe:
    gpus = []
    for i in range(4):
        procs = [GpuProcess(4242, "python other_job.py", 30500.0)] if i == 0 else []
        gpus.append(GpuInfo(index=i, name="NVIDIA H100 80GB HBM3", mem_total_mb=81559.0,
                            mem_used_mb=31000.0 if i == 0 else 520.0, util=63.0 if i == 0 else 0.0,
                            power_w=310.0 if i == 0 else 70.0, temp_c=54.0 if i == 0 else 31.0, processes=procs))
    return GpuProbe(gpus, None)


def no_gpus() -> GpuProbe:
    return GpuProbe([], "no GPU: the NVIDIA driver library (libnvidia-ml.so) was not found")


def write_run_dir(run_dir: Path, t0: float = 1_780_000_000.0, steps: int = 60, finished: bool = True,
                  evals: bool = False) -> Path:
    """A run directory as the supervisor and trainer write it, with fixed times (stable snapshots).
    evals: epochs 1 and 2 measured while training ran (`type: "eval"`, a K = 1, 2 sweep)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    ttt = 3
    lines = [{"type": "start", "time": t0 + 40, "epochs": 3, "steps_per_epoch": 20, "total_steps": 60,
              "train_rows": 160, "val_rows": 16, "world_size": 1, "ttt_steps": ttt, "resumed_from_epoch": None,
              "draft_vocab_size": 1024}]
    for s in range(1, steps + 1):
        rec = {"type": "train", "time": t0 + 40 + s * 2, "step": s, "epoch": (s - 1) // 20,
               "epoch_progress": ((s - 1) % 20 + 1) / 20, "loss": 7.0 * math.exp(-s / 25) + 1.0 + 0.1 * math.sin(s),
               "lr": 3e-4 * (1 - s / 60), "grad_norm": 1.0, "tokens": 2048, "tokens_per_s": 900 + 80 * math.sin(s / 3),
               "samples_per_s": 4.0, "data_wait_s": 0.9, "compute_s": 1.1, "step_time_s": 2.0, "skipped_rows": 0,
               "hs_requests": 4, "hs_mb": 3.0, "hs_latency_s": 0.4, "hs_queue_wait_s": 0.1}
        for k in range(ttt):
            acc = (0.75 - 0.15 * k) * (1 - math.exp(-s / 15))
            rec[f"loss_{k}"] = rec["loss"] / ttt
            rec[f"full_acc_{k}"] = acc
            rec[f"cond_acc_{k}"] = min(1.0, acc + 0.05)
        lines.append(rec)
        if s % 20 == 0:
            e = s // 20 - 1
            val = {"type": "val", "time": t0 + 41 + s * 2, "step": s, "epoch": e, "loss": 2.6 - 0.3 * e,
                   "samples": 16, "acceptance_length": None}
            for k in range(ttt):
                val[f"loss_{k}"] = val["loss"] / ttt
                val[f"full_acc_{k}"] = (0.7 - 0.15 * k) * (0.8 + 0.05 * e)
                val[f"cond_acc_{k}"] = 0.8
            val.pop("acceptance_length")
            lines.append(val)
            lines.append({"type": "checkpoint", "time": t0 + 42 + s * 2, "step": s, "epoch": e,
                          "path": str(run_dir / "checkpoints" / f"checkpoint_{e}"), "val_loss": val["loss"],
                          "best": True})
            if evals and e < 2:
                for k in (1, 2):
                    lines.append({"type": "eval", "time": t0 + 43 + s * 2, "engine": "hf", "epoch": e,
                                  "checkpoint": str(run_dir / "checkpoints" / f"checkpoint_{e}"),
                                  "num_speculative_tokens": k, "acceptance_length": 1.5 + 0.2 * e + 0.3 * (k - 1),
                                  "tokens_per_s": 50.0, "speedup": None})
    end_t = t0 + 45 + steps * 2
    if finished:
        lines.append({"type": "end", "time": end_t, "status": "completed", "message": "training finished"})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    events = [
        {"time": t0, "event": "run_started", "message": "run started"},
        {"time": t0 + 1, "event": "stage_started", "stage": "prepare", "message": ""},
        {"time": t0 + 12, "event": "stage_finished", "stage": "prepare", "message": ""},
        {"time": t0 + 12, "event": "stage_started", "stage": "server", "message": ""},
        {"time": t0 + 35, "event": "server_healthy", "stage": "server", "message": "healthy"},
        {"time": t0 + 80, "event": "warning", "kind": "bottleneck",
         "message": "training waits for hidden states 45% of each step; the server GPU is saturated",
         "fix": "give the server GPUs 0,1,3 (data parallel 3)",
         "fix_config": {"hidden_states.gpus": [0, 1, 3], "hidden_states.data_parallel_size": 3,
                        "training.gpus": [2]}},
    ]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in events))
    gpu_lines = []
    for j in range(20):
        gpu_lines.append({"time": t0 + 40 + j * 2, "gpus": [
            {"index": 0, "name": "NVIDIA H100 80GB HBM3", "util": 95.0, "mem_used_mb": 70000.0,
             "mem_total_mb": 81559.0, "power_w": 600.0, "temp_c": 78.0, "role": "server",
             "processes": [{"pid": 4101, "name": "python -m vllm.entrypoints.openai.api_server", "mem_mb": 66000.0,
                            "stage": "server"},
                           {"pid": 777, "name": "python notebook_kernel.py", "mem_mb": 3500.0, "stage": None}]},
            {"index": 1, "name": "NVIDIA H100 80GB HBM3", "util": 40.0 + j, "mem_used_mb": 20000.0,
             "mem_total_mb": 81559.0, "power_w": 300.0, "temp_c": 50.0, "role": "training",
             "processes": [{"pid": 4230, "name": "python -m speculators_core.train", "mem_mb": 19500.0,
                            "stage": "train"}]}]})
    (run_dir / "gpu.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gpu_lines))
    stage = lambda st, a, b: {"status": st, "pid": None, "started": a, "finished": b, "returncode": 0 if b else None,
                              "restarts": 0}
    state = {"name": run_dir.name, "run_dir": str(run_dir), "status": "completed" if finished else "running",
             "pid": None, "pgid": None, "started": t0, "updated": end_t, "finished": end_t if finished else None,
             "stage": "train", "server_url": "http://127.0.0.1:18080/v1",
             "stages": {"prepare": stage("done", t0 + 1, t0 + 12),
                        "server": stage("done" if finished else "running", t0 + 12, end_t if finished else None),
                        "train": stage("done" if finished else "running", t0 + 36, end_t if finished else None)}}
    (run_dir / "state.json").write_text(json.dumps(state))
    (run_dir / "train.log").write_text("".join(f"step {s} loss {7.0 * math.exp(-s / 25) + 1:.3f}\n"
                                               for s in range(1, steps + 1)))
    (run_dir / "server.log").write_text("INFO server listening on 127.0.0.1:18080\n")
    (run_dir / "prepare.log").write_text("prepared 176 rows\n")
    (run_dir / "run.toml").write_text(
        '[model]\ntarget = "builtin:tiny-qwen3"\n[data]\nsources = ["builtin:demo-chat"]\n'
        '[hidden_states]\nengine = "vllm"\ngpus = [0]\n[training]\ngpus = [1]\n'
        f'checkpoint_dir = "{run_dir / "checkpoints"}"\n[run]\nname = "recorded"\n')
    return run_dir


async def type_into(pilot, dotted: str, text: str) -> None:
    """Focus a wizard field and type `text` key by key (long paths are pasted: one edit)."""
    from textual.widgets import Input

    field = pilot.app.screen.query_one(f"#f-{dotted.replace('.', '--')}")
    inp = field.query_one(Input)
    inp.focus()
    inp.value = ""
    if len(text) > 20:
        inp.insert_text_at_cursor(text)
    elif text:
        await pilot.press(*text)
    await pilot.pause()


if __name__ == "__main__":  # pragma: no cover - a manual look in tmux
    from speculators_tui.app import SpeculatorsApp

    what = sys.argv[1] if len(sys.argv) > 1 else "gpus"
    if what == "dashboard":
        rd = Path(sys.argv[2]) if len(sys.argv) > 2 else write_run_dir(Path("/tmp/tui-recorded") / f"run-{int(time.time())}")
        SpeculatorsApp(run_dir=rd, gpu_probe=four_gpus).run()
    else:
        SpeculatorsApp(gpu_probe=four_gpus if what == "gpus" else no_gpus).run()
