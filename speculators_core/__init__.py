"""speculators_core: the engine of speculators-tui (data prep, hidden-states serving, EAGLE-3
training, run supervision). Every stage is a plain CLI (`python -m speculators_core.<stage>`).

This module is the engine's public face for the app: the names below are imported on first use
(a module `__getattr__`), so `import speculators_core` imports nothing heavy.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> (module, attribute in it; None = the module itself)
_EXPORTS: dict[str, tuple[str, str | None]] = {}


def _export(module: str, *names: str, **renamed: str) -> None:
    for n in names:
        _EXPORTS[n] = (module, n)
    for public, attr in renamed.items():
        _EXPORTS[public] = (module, attr)


_export("speculators_core.config", "RunConfig", "Problem", "ConfigError", "MODE_HELP", "resolved_layer_ids",
        load_config="load", validate_config="validate", config_errors="errors", problems_for_export="for_export",
        dumps_config="dumps", config_from_dict="from_dict", config_to_dict="to_dict")
_export("speculators_core.config.presets", "list_presets", "find_preset", "save_user_preset")
_export("speculators_core.target", "try_load_target", "human_count")
_export("speculators_core.fsutil", "atomic_write_text")
_export("speculators_core.plan.plan", "plan_run")
_export("speculators_core.plan.stages", "Stage", "build_stages")
_export("speculators_core.plan.script", "render_script")
_export("speculators_core.plan.slurm", "render_slurm")
_export("speculators_core.runs.hardware", "declared_gpus", "gpu_memory_for_plan", "gpu_memory_map", "plan_gpus", "plan_warnings",
        "suggest_cluster_split")
_export("speculators_core.serving.engines", "ENGINES", "get_engine")
_export("speculators_core.runs.control", "start_detached", "stop_run", "is_running")
_export("speculators_core.runs.rundir", "create_run_dir")
_export("speculators_core.runs.supervisor", "Supervisor")
_export("speculators_core.runs.rundir", "read_state", "list_runs", "run_environ", "tail_lines",
        load_run_config="load_config", read_run_stages="read_stages")
_export("speculators_core.runs.reader", "RunReader", "format_event", "serve_command", "hms", "stage_icon",
        "measured_line", "measured_summary")
_export("speculators_core.runs.gpu", "probe_gpus", "GpuProbe", "GpuInfo", "GpuProcess", describe_gpus="describe")
_export("speculators_core.runs.advice", "suggest_split", "assignment_warnings")
_export("speculators_core.procs", "pid_alive")
_export("speculators_core.paths", "config_home")
_export("speculators_core.runs.eta", "Pace", "PaceTracker")
_export("speculators_core.runs.alerts", "Alert", "AlertWatch", "NotifySettings", "terminal_sequences",
        load_notify_settings="load_settings", save_notify_settings="save_settings")
_export("speculators_core.runs.index", "RunEntry", list_run_history="list_entries", register_run="register",
        summarize_run="summarize", run_history_dir="index_dir")
_export("speculators_core.runs.compare", "RunCurves", "config_diff", "compare_text", "resolve_run",
        load_run_curves="load_run")
_export("speculators_core.errors", "SpeculatorsError")
_export("speculators_core.doctor", run_doctor="run_checks", DoctorCheck="Check")
_export("speculators_core.data.mask_view", "RowView", "row_view", "MaskViewError")
_export("speculators_core.config.memory_checks", "run_memory", gpu_memory_of_probe="gpu_memory_of_probe")
_EXPORTS["run_layout"] = ("speculators_core.runs.layout", None)

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
