"""The planner's GPU-facing output: GPU numbering and allocator env, the vLLM command, storage in
/dev/shm with a disk fallback (always absolute), max_model_len for a whole request."""

from __future__ import annotations

import os

from speculators_core.config import validate
from speculators_core.config.presets import find_preset
from speculators_core.plan.script import render_script
from speculators_core.plan.stages import build_stages
from speculators_core.plan.storage import GIB, planned_storage_dir, scratch_bytes
from speculators_core.target import load_target

from .test_config import qwen_like


def reference():
    return find_preset("qwen3-8b-sharegpt-online-5k").load()


def test_every_stage_numbers_gpus_by_pci_bus_and_gpu_training_gets_expandable_segments():
    cfg = reference()
    stages = {s.name: s for s in build_stages(cfg, qwen_like(layers=36), environ={})}
    assert all(s.env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID" for s in stages.values())
    assert stages["train"].env["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    assert "PYTORCH_CUDA_ALLOC_CONF" not in stages["server"].env  # vLLM manages its own pool
    assert "PYTORCH_CUDA_ALLOC_CONF" not in stages["prepare"].env
    script = render_script(list(stages.values()), cfg)
    assert "CUDA_DEVICE_ORDER=PCI_BUS_ID" in script and "expandable_segments:True" in script
    # the user's own settings win
    mine = {s.name: s for s in build_stages(cfg, qwen_like(layers=36), environ={
        "CUDA_DEVICE_ORDER": "FASTEST_FIRST", "PYTORCH_CUDA_ALLOC_CONF": "backend:native"})}
    assert all("CUDA_DEVICE_ORDER" not in s.env and "PYTORCH_CUDA_ALLOC_CONF" not in s.env for s in mine.values())


def test_cpu_training_gets_no_cuda_allocator_setting():
    cfg = find_preset("tiny-cpu-demo").load()
    stages = {s.name: s for s in build_stages(cfg, load_target("builtin:tiny-qwen3"), environ={})}
    assert "PYTORCH_CUDA_ALLOC_CONF" not in stages["train"].env


def test_vllm_command_leaves_chunked_prefill_to_vllm():
    cfg = reference()
    server = next(s for s in build_stages(cfg, qwen_like(layers=36), environ={}) if s.kind == "server")
    assert not any("chunked-prefill" in a for a in server.argv)


def _storage_flags(stages):
    server = next(s for s in stages if s.kind == "server")
    train = next(s for s in stages if s.name == "train")
    import json

    kv = json.loads(server.argv[server.argv.index("--kv-transfer-config") + 1])
    return (kv["kv_connector_extra_config"]["shared_storage_path"], server.storage_dir,
            train.argv[train.argv.index("--hidden-states-storage") + 1])


def test_relative_storage_becomes_absolute_for_server_trainer_and_script(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = reference()
    cfg.hidden_states.storage_dir = "./scratch"
    stages = build_stages(cfg, qwen_like(layers=36), environ={})
    served, planned, trained = _storage_flags(stages)
    assert served == planned == trained == str(tmp_path / "scratch")
    assert f"mkdir -p -- {tmp_path / 'scratch'}" in render_script(stages, cfg)


def test_default_storage_is_dev_shm_when_it_has_room_else_the_disk(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = reference()
    target = qwen_like(layers=36)
    need = scratch_bytes(cfg, target)
    assert need == cfg.training.max_in_flight * cfg.data.seq_length * 4 * target.hidden_size * 2
    shm = tmp_path / "shm"
    shm.mkdir()
    roomy = planned_storage_dir(cfg, target, "/runs/r-1", free=lambda p: 2 * need + GIB, shm=str(shm))
    assert roomy == str(shm / f"speculators-tui-{os.getuid()}-r-1")
    small = planned_storage_dir(cfg, target, "/runs/r-1", free=lambda p: 64 * 2**20, shm=str(shm))  # Docker's 64 MB
    assert small == str(tmp_path / "output" / "hs_scratch") == os.path.abspath(cfg.storage_dir)
    # not for a server on the CPU, the hf engine, an explicit directory or an unknown target
    cfg.hidden_states.gpus = []
    assert planned_storage_dir(cfg, target, None, free=lambda p: 10**15, shm=str(shm)).startswith(str(tmp_path))
    cfg = reference()
    assert planned_storage_dir(cfg, None, None, free=lambda p: 10**15, shm=str(shm)).startswith(str(tmp_path))
    cfg.hidden_states.storage_dir = "/data/hs"
    assert planned_storage_dir(cfg, target, None, free=lambda p: 10**15, shm=str(shm)) == "/data/hs"
    # nor across nodes: the trainer on another node must read what the server wrote
    cfg = reference()
    cfg.cluster.training_nodes = 2
    assert planned_storage_dir(cfg, target, None, free=lambda p: 10**15, shm=str(shm)) == os.path.abspath(cfg.storage_dir)
    cfg = reference()
    cfg.cluster.server_endpoints = ["http://node1:8000/v1"]
    assert planned_storage_dir(cfg, target, None, free=lambda p: 10**15, shm=str(shm)) == os.path.abspath(cfg.storage_dir)


def test_planner_uses_the_planned_storage_everywhere(tmp_path, monkeypatch):
    import speculators_core.plan.storage as storage

    shm = tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setattr(storage, "SHM", str(shm))
    monkeypatch.setattr(storage, "_free", lambda p: 10**13)
    cfg = reference()
    stages = build_stages(cfg, qwen_like(layers=36), run_dir=str(tmp_path / "runs" / "r-2"), environ={})
    served, planned, trained = _storage_flags(stages)
    assert served == planned == trained == str(shm / f"speculators-tui-{os.getuid()}-r-2")


def test_max_model_len_must_hold_the_sample_and_one_token():
    cfg = reference()
    cfg.data.seq_length = 8192
    cfg.hidden_states.max_model_len = 8192
    probs = [p for p in validate(cfg, qwen_like(layers=36)) if p.field == "hidden_states.max_model_len"]
    assert probs and probs[0].severity == "warning" and "8193" in probs[0].fix
    cfg.hidden_states.max_model_len = 8193
    assert not [p for p in validate(cfg, qwen_like(layers=36)) if p.field == "hidden_states.max_model_len"]
