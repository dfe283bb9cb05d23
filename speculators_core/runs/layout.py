"""The run-directory contract: file names, statuses, record types, the per-stage state.

Every writer (supervisor, trainer) and reader (`RunReader`, `status`, the dashboard) of a run
directory takes its names from here; docs/interfaces.md describes the contents.
"""

from __future__ import annotations

RUN_TOML = "run.toml"
RUN_SH = "run.sh"
#: The serialised stages the supervisor executes (the plan `run.sh` renders).
STAGES = "stages.json"
STATE = "state.json"
EVENTS = "events.jsonl"
METRICS = "metrics.jsonl"
GPU = "gpu.jsonl"
SUPERVISOR_LOG = "supervisor.log"

#: Environment variables whose inherited value changes the commands (recorded in state.json).
RECORDED_ENV = ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")

#: Run statuses (state.json "status").
RUN_ACTIVE = ("starting", "running")
RUN_FINISHED = ("completed", "failed", "stopped")
#: Stage statuses (state.json "stages"[name]["status"]).
STAGE_STATUSES = ("pending", "running", "done", "skipped", "failed")
#: metrics.jsonl record types.
RECORD_TYPES = ("start", "train", "val", "checkpoint", "warning", "end", "eval", "eval_best")


def new_stage_state() -> dict:
    """The state of a stage that has not started."""
    return {"status": "pending", "pid": None, "started": None, "finished": None, "returncode": None, "restarts": 0}


def stage_states(names) -> dict:
    """The initial "stages" entry of state.json for stages named `names`."""
    return {n: new_stage_state() for n in names}


def mark_interrupted(state: dict, status: str) -> None:
    """Set the run's final `status`; a stage still running was interrupted: record it as failed."""
    import time

    for st in (state.get("stages") or {}).values():
        if st.get("status") == "running":
            st["status"] = "failed"
    state.update(status=status, finished=time.time())
