"""Plan a run once: the stages, the script that shows them and the config's problems.

`export`, the review screen, `validate`, `create_run_dir` and (through the run directory's
`stages.json`) the supervisor all use `plan_run`, so what is shown, exported and run is one object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Optional

from speculators_core import config as cfgmod
from speculators_core.plan.script import render_script
from speculators_core.plan.stages import Stage, build_stages

if TYPE_CHECKING:
    from speculators_core.target import TargetInfo


@dataclass
class RunPlan:
    cfg: cfgmod.RunConfig
    target: Optional["TargetInfo"]
    #: None when the stages cannot be built (`error` says why).
    stages: Optional[list[Stage]]
    script: Optional[str]
    problems: list = field(default_factory=list)
    error: Optional[Exception] = None
    #: Why the target's facts are unknown (None when they are known).
    target_note: Optional[str] = None

    @property
    def errors(self) -> list:
        return cfgmod.errors(self.problems)

    @property
    def warnings(self) -> list:
        return [p for p in self.problems if p.severity == "warning"]

    def require(self) -> "RunPlan":
        """This plan, or the error that kept its stages from being built."""
        if self.error is not None:
            raise self.error
        return self


def plan_run(cfg: cfgmod.RunConfig, target: Optional["TargetInfo"] = None, run_dir: Optional[str] = None,
             environ: Optional[Mapping[str, str]] = None, *, source: str = "",
             load_target: bool = True, gpu_memory: Optional[Mapping[int, int]] = None) -> RunPlan:
    """The plan of a run of `cfg`. target None: read from the target's config.json when reachable
    (`load_target`; False = plan without the target's facts, as a caller that knows it is unreachable)."""
    note = None
    if target is None and load_target:
        from speculators_core.target import try_load_target

        target, note = try_load_target(cfg.model.target)
    problems = cfgmod.validate(cfg, target, gpu_memory)
    try:
        stages = build_stages(cfg, target, run_dir=run_dir, environ=environ)
        script = render_script(stages, cfg, source)
    except (cfgmod.ConfigError, ValueError, ArithmeticError) as exc:  # validate's problems say why
        return RunPlan(cfg, target, None, None, problems, exc, note)
    return RunPlan(cfg, target, stages, script, problems, None, note)
