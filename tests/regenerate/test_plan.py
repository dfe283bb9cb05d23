"""`[data] regenerate`: the stage in the plan, the export and the config checks."""

from __future__ import annotations

from pathlib import Path

from speculators_core import config as cfgmod
from speculators_core.plan.flags import prepare_parser, regenerate_parser
from speculators_core.plan.plan import plan_run

PRESET = Path(__file__).resolve().parents[2] / "speculators_core" / "presets" / "tiny-cpu-demo-regenerate.toml"


def test_regenerate_stage_runs_before_prepare_on_the_runs_own_server(tmp_path):
    cfg = cfgmod.load(PRESET)
    plan = plan_run(cfg, run_dir=str(tmp_path), environ={}).require()
    assert not plan.errors, plan.errors
    names = [s.name for s in plan.stages]
    assert names == ["assets", "regenerate", "prepare", "server", "train"]
    regen = plan.stages[1]
    assert regen.needs_server and regen.log == "regenerate.log"
    args = regenerate_parser().parse_args(regen.stage_argv())
    assert args.endpoint == ["http://127.0.0.1:18081/v1"] and args.resume and args.max_tokens == 96
    assert args.output == cfg.regenerated_data == "./speculators-demo-regenerate/data-regenerated.jsonl"
    assert args.max_samples == 96 and args.metrics_file == str(tmp_path / "metrics.jsonl")
    prep = prepare_parser().parse_args(plan.stages[2].stage_argv())
    assert prep.data == [cfg.regenerated_data]  # prepare reads the regenerated rows
    # The export starts the server once: regenerate, prepare and train share it.
    script = plan.script
    assert script.count("stop_server\n") == 1 and script.count("& \n") + script.count(" &\n") == 1
    assert script.index("speculators_core.regenerate") < script.index("speculators_core.prepare") < \
        script.index("speculators_core.train")


def test_regenerate_with_external_endpoints_needs_no_server_for_it():
    cfg = cfgmod.load(PRESET)
    cfg.data.regenerate_endpoints = ["http://10.0.0.5:8000/v1", "http://10.0.0.6:8000"]
    cfg.data.regenerate_chat_template_kwargs = '{"enable_thinking": false}'
    plan = plan_run(cfg, environ={}).require()
    regen = next(s for s in plan.stages if s.name == "regenerate")
    args = regenerate_parser().parse_args(regen.stage_argv())
    assert not regen.needs_server and args.endpoint == cfg.data.regenerate_endpoints
    assert args.chat_template_kwargs == '{"enable_thinking":false}'


def test_regenerate_settings_are_checked():
    cfg = cfgmod.load(PRESET)
    cfg.data.regenerate_chat_template_kwargs = "{enable_thinking: false}"
    cfg.data.regenerate_top_p = 0.0
    cfg.data.regenerate_endpoints = ["10.0.0.5:8000"]
    cfg.data.regenerate_output = "out.json"
    fields = {p.field: p for p in cfgmod.errors(cfgmod.validate(cfg))}
    assert {"data.regenerate_chat_template_kwargs", "data.regenerate_top_p", "data.regenerate_endpoints[0]",
            "data.regenerate_output"} <= set(fields)
    assert "enable_thinking" in fields["data.regenerate_chat_template_kwargs"].fix
    cfg = cfgmod.load(PRESET)
    cfg.hidden_states.engine = "vllm"
    fields = {p.field: p for p in cfgmod.errors(cfgmod.validate(cfg))}
    assert "data.regenerate" in fields and "vllm serve" in fields["data.regenerate"].fix


def test_toml_round_trip_and_off_by_default():
    cfg = cfgmod.load(PRESET)
    again = cfgmod.loads(cfgmod.dumps(cfg))
    assert again.data == cfg.data and again.data.regenerate
    assert not cfgmod.RunConfig().data.regenerate
    plain = cfgmod.load(PRESET.with_name("tiny-cpu-demo.toml"))
    assert "regenerate" not in [s.name for s in plan_run(plain, environ={}).require().stages]
