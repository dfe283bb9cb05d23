"""Checkpoint writing: atomic (a failure mid-save leaves the previous one intact), best link, stale cleanup;
schedules; the drafter config.json round trip."""

from __future__ import annotations

import json
import os

import pytest
import torch

from speculators_core.model.config import DrafterConfig
from speculators_core.training import checkpoint as ck
from speculators_core.training.schedule import lr_factor


def _save(tmp_path, epoch, marker):
    return ck.save_checkpoint(tmp_path, epoch, tensors={"fc.weight": torch.full((2, 2), marker, dtype=torch.bfloat16)},
                              config={"epoch": epoch, "marker": marker}, optimizer_state={"m": marker},
                              scheduler_state={}, trainer_state={"epoch": epoch, "step": 1})


def test_failed_save_leaves_previous_checkpoint(tmp_path, monkeypatch):
    _save(tmp_path, 0, 1.0)
    real = torch.save

    def boom(obj, f, *a, **k):
        if str(f).endswith("trainer_state.pt"):
            raise OSError("disk full")
        return real(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        _save(tmp_path, 0, 2.0)  # overwrite of the same epoch fails half-way
    with pytest.raises(OSError):
        _save(tmp_path, 1, 2.0)
    monkeypatch.setattr(torch, "save", real)
    assert json.loads((tmp_path / "0" / "config.json").read_text())["marker"] == 1.0
    assert not (tmp_path / "1").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["0"]
    assert ck.latest_checkpoint(tmp_path)[0] == 0


def test_best_link_latest_and_stale_cleanup(tmp_path):
    _save(tmp_path, 0, 1.0)
    _save(tmp_path, 1, 2.0)
    ck.set_best(tmp_path, 0)
    assert os.readlink(tmp_path / "checkpoint_best") == "0"
    ck.set_best(tmp_path, 1)
    assert os.readlink(tmp_path / "checkpoint_best") == "1"
    (tmp_path / "2").mkdir()  # incomplete: not a checkpoint
    (tmp_path / f"{ck.TMP_PREFIX}3-123").mkdir()
    assert ck.latest_checkpoint(tmp_path)[0] == 1
    removed = ck.clean_stale(tmp_path)
    assert [p.name for p in removed] == [f"{ck.TMP_PREFIX}3-123"]


def test_schedules():
    assert lr_factor(0, 100, 10, "linear") == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, "linear") == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, "linear") == pytest.approx(0.5)
    assert lr_factor(55, 100, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(99, 100, 0, "cosine") < 0.01
    assert lr_factor(50, 100, 0, "constant") == 1.0


def test_config_json_round_trip_llama_and_qwen_fields():
    from speculators_core.target import TargetInfo

    llama = TargetInfo("meta-llama/Llama-3.1-8B", None, {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
        "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 131072, "hidden_act": "silu",
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192}})
    cfg = DrafterConfig.from_target(llama, draft_vocab_size=32000, aux_layer_ids=[2, 16, 29], num_layers=1, ttt_steps=3)
    assert cfg.head_dim == 128 and cfg.rope_type == "llama3"
    d = cfg.to_json_dict("0.3.0", "5.19.0")
    assert d["transformer_layer_config"]["rope_parameters"]["rope_type"] == "llama3"
    assert d["speculators_config"]["verifier"] == {"name_or_path": "meta-llama/Llama-3.1-8B",
                                                    "architectures": ["LlamaForCausalLM"]}
    back = DrafterConfig.from_json_dict(json.loads(json.dumps(d)))
    assert back.rope_scaling["factor"] == 8.0 and back.aux_layer_ids == [2, 16, 29] and back.head_dim == 128
    qwen = TargetInfo("Qwen/Qwen3-8B", None, {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 4096, "num_hidden_layers": 36,
        "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 12288,
        "vocab_size": 151936, "rope_theta": 1000000, "tie_word_embeddings": False})
    qc = DrafterConfig.from_target(qwen, draft_vocab_size=32000, aux_layer_ids=[2, 18, 33], num_layers=1, ttt_steps=3)
    assert qc.rope_theta == 1e6 and qc.rope_scaling is None and qc.intermediate_size == 12288
    with pytest.raises(ValueError, match="rope type"):
        DrafterConfig.from_target(TargetInfo("x", None, {**qwen.config, "rope_scaling": {"rope_type": "yarn", "factor": 4}}),
                                  draft_vocab_size=10, aux_layer_ids=[1], num_layers=1, ttt_steps=1)
