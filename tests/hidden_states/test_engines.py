"""The engine registry builds exactly the server command lines the planner built before it existed.

`data/server_commands_before_registry.json` was recorded from the planner's own server-stage code
(commands.build_stages at c13b53b) on the cases below: the registry and the planner that now uses
it must both reproduce it (the interpreter and our package root stand as <PY> and <ROOT>)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from speculators_core import config as C
from speculators_core.plan import stages as planner
from speculators_core.serving.engines import ENGINES, ServerLaunch, ServerRequest, get_engine
from speculators_core.serving.vllm import package_root

RECORDED = json.loads((Path(__file__).parent / "data" / "server_commands_before_registry.json").read_text())

PLANNER_ONLY = ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "CUDA_DEVICE_ORDER", "PYTORCH_CUDA_ALLOC_CONF")
#: flags of the recorded commands dropped on purpose since (issue 14: vLLM 0.32's connector needs no
#: chunked-prefill override, and forcing it off aborts start-up with a lowered --max-num-batched-tokens)
DROPPED = ("--no-enable-chunked-prefill",)


def _cfg(engine: str, gpus: list[int], **hs) -> C.RunConfig:
    cfg = C.RunConfig()
    cfg.model.target = "/models/tiny"
    cfg.data.sources = ["sharegpt"]
    cfg.hidden_states.engine = engine
    cfg.hidden_states.gpus = gpus
    cfg.hidden_states.target_layer_ids = [2, 4, 5, 8]
    cfg.training.gpus = [] if not gpus else [max(gpus) + 1]
    for k, v in hs.items():
        setattr(cfg.hidden_states, k, v)
    return cfg


def _request(cfg: C.RunConfig, environ: dict, storage_dir: str = "") -> ServerRequest:
    hs = cfg.hidden_states
    return ServerRequest(
        python=hs.python or sys.executable, model=cfg.model.target, layer_ids=list(hs.target_layer_ids),
        storage_dir=storage_dir or cfg.storage_dir, host=hs.host, port=hs.port, gpus=list(hs.gpus), device=hs.device,
        dtype=hs.dtype, data_parallel_size=hs.data_parallel_size, tensor_parallel_size=hs.tensor_parallel_size,
        gpu_memory_utilization=hs.gpu_memory_utilization, max_model_len=hs.max_model_len, connector=hs.connector,
        extra_args=list(hs.extra_args), trust_remote_code=cfg.model.trust_remote_code, environ=environ)


def _planned(cfg: C.RunConfig, environ: dict) -> planner.Stage:
    return next(s for s in planner.build_stages(cfg, None, environ=environ, cores=4) if s.name == "server")


def _placeholders(values):
    root = f"{package_root()}:/elsewhere"
    return [("<PY>" if v == sys.executable else "<ROOT>:/elsewhere" if v == root else v) for v in values]


CASES = {
    "hf-cpu": ("hf", [], {}),
    "hf-cpu-options": ("hf", [], {"dtype": "bf16", "max_model_len": 4096, "extra_args": ["--max-batch-tokens", "64"]}),
    "hf-gpu": ("hf", [0], {"device": "auto"}),
    "vllm-gpu-stock": ("vllm", [0, 1], {"data_parallel_size": 2, "gpu_memory_utilization": 0.85}),
    "vllm-gpu-tp-len": ("vllm", [2, 3], {"tensor_parallel_size": 2, "max_model_len": 2048}),
    "vllm-cpu": ("vllm", [], {}),
    "vllm-cpu-eager-given": ("vllm", [], {"extra_args": ["--no-enforce-eager"], "connector": "cpu"}),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("trust", [False, True])
def test_engine_launch_equals_todays_server_stage(case, trust):
    engine, gpus, hs = CASES[case]
    cfg = _cfg(engine, gpus, **hs)
    cfg.model.trust_remote_code = trust
    environ = {"PYTHONPATH": "/elsewhere"}
    recorded = RECORDED[f"{case}|{trust}"]
    launch = get_engine(engine).launch(_request(cfg, environ))
    assert isinstance(launch, ServerLaunch)
    assert _placeholders(launch.argv) == [a for a in recorded["argv"] if a not in DROPPED]
    assert dict(zip(launch.env, _placeholders(launch.env.values()))) == recorded["env"]
    assert launch.description == recorded["description"]
    stage = _planned(cfg, environ)  # the planner adds only its own variables
    # ... and makes the storage directory absolute (the server and the trainer may run elsewhere)
    assert stage.storage_dir == os.path.abspath(cfg.storage_dir)
    launch = get_engine(engine).launch(_request(cfg, environ, stage.storage_dir))
    assert stage.argv == launch.argv and stage.description == launch.description
    assert {k: v for k, v in stage.env.items() if k not in PLANNER_ONLY} == launch.env


def test_vllm_on_cpu_uses_our_connector_eagerly():
    cfg = _cfg("vllm", [])
    launch = get_engine("vllm").launch(_request(cfg, {}))
    assert "--enforce-eager" in launch.argv and launch.env["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert "CPUHiddenStatesConnector" in launch.argv[launch.argv.index("--kv-transfer-config") + 1]
    assert launch.env["PYTHONPATH"].split(":")[0] == package_root()
    gpu = get_engine("vllm").launch(_request(_cfg("vllm", [0]), {}))
    assert "--enforce-eager" not in gpu.argv and gpu.env == {}
    assert "ExampleHiddenStatesConnector" in gpu.argv[gpu.argv.index("--kv-transfer-config") + 1]


def test_registry_properties_and_unknown_names():
    assert set(ENGINES) == {"hf", "vllm"}
    assert get_engine("hf").max_gpus == 1 and not get_engine("hf").needs_vllm
    assert get_engine("vllm").max_gpus is None and get_engine("vllm").needs_vllm
    with pytest.raises(ValueError, match="hf, vllm|vllm, hf"):
        get_engine("sglang")


@pytest.mark.parametrize("engine", ["hf", "vllm"])
def test_api_key_env_reaches_the_server_command(engine):
    """hf: `--api-key-env NAME` (the key itself never on argv); vLLM reads VLLM_API_KEY, set by the planner."""
    base = _request(_cfg(engine, []), {"SECRET_KEY": "s3cret"})
    assert base.api_key_env == ""  # default: existing callers unchanged
    keyed = ServerRequest(**{**base.__dict__, "api_key_env": "SECRET_KEY"})
    argv = get_engine(engine).launch(keyed).argv
    assert "s3cret" not in " ".join(argv)
    if engine == "hf":
        assert argv[argv.index("--api-key-env") + 1] == "SECRET_KEY"
        assert "--api-key-env" not in get_engine(engine).launch(base).argv
    else:
        assert argv == get_engine(engine).launch(base).argv
