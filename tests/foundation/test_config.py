"""The run configuration: TOML round-trip, errors that name key/file/line, validation."""

from __future__ import annotations

import pytest

from speculators_core import config as C
from speculators_core.config.presets import find_preset
from speculators_core.target import TargetInfo, TargetNotFound, load_target


def qwen_like(layers=36, vocab=151936, hidden=4096) -> TargetInfo:
    return TargetInfo("fake/qwen", None, {"num_hidden_layers": layers, "vocab_size": vocab, "hidden_size": hidden,
                                          "num_attention_heads": 32, "model_type": "qwen3"})


def fields(problems):
    return {p.field for p in problems if p.severity == "error"}


def test_round_trip_is_equal_and_omits_defaults(tmp_path):
    cfg = find_preset("qwen3-8b-sharegpt-hybrid-5k").load()
    path = C.save(cfg, tmp_path / "x.toml")
    text = path.read_text()
    assert C.load(path) == cfg
    # defaults are not written out...
    assert "gpu_memory_utilization" not in text and "warmup_ratio" not in text
    assert 'mode = "hybrid"' in text
    # ...unless asked for
    full = C.dumps(cfg, include_defaults=True)
    assert "warmup_ratio" in full and C.loads(full) == cfg


def test_round_trip_of_every_field_changed(tmp_path):
    cfg = C.RunConfig()
    cfg.model.target = "/models/x"
    cfg.model.trust_remote_code = True
    cfg.data.sources = ["sharegpt", "/data/a.jsonl"]
    cfg.data.max_samples = 10
    cfg.hidden_states.target_layer_ids = [1, 2, 3, 4]
    cfg.hidden_states.env = {"VLLM_CPU_KVCACHE_SPACE": "1"}
    cfg.hidden_states.extra_args = ["--enforce-eager"]
    cfg.training.lr = 3e-5
    cfg.training.mode = "offline"
    cfg.run.allow_gpu_sharing = True
    C.save(cfg, tmp_path / "y.toml")
    assert C.load(tmp_path / "y.toml") == cfg


def test_unknown_key_names_key_file_and_line(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[model]\ntarget = "x"\n\n[training]\nepochs = 2\nlearning_rate = 1e-4\n')
    with pytest.raises(C.ConfigError) as exc:
        C.load(p)
    msg = str(exc.value)
    assert f"{p}:6" in msg and "training.learning_rate" in msg and "unknown key" in msg


def test_unknown_key_suggests_close_name(tmp_path):
    with pytest.raises(C.ConfigError, match="did you mean 'epochs'"):
        C.loads("[training]\nepoch = 2\n")


def test_wrong_type_names_key_and_line(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[model]\ntarget = "x"\n[data]\nseq_length = "long"\n')
    with pytest.raises(C.ConfigError) as exc:
        C.load(p)
    assert f"{p}:4" in str(exc.value) and "data.seq_length" in str(exc.value) and "integer" in str(exc.value)


def test_unknown_section_and_unknown_mode():
    with pytest.raises(C.ConfigError, match=r"\[trainig\]: unknown section"):
        C.loads("[trainig]\nepochs = 1\n")
    with pytest.raises(C.ConfigError, match="training.mode: 'streaming' is not allowed"):
        C.loads('[training]\nmode = "streaming"\n')
    cfg = C.RunConfig()
    cfg.training.mode = "streaming"  # set from code: validate() catches it too
    assert "training.mode" in fields(C.validate(cfg))


def test_invalid_toml_syntax_names_file(tmp_path):
    p = tmp_path / "broken.toml"
    p.write_text("[model\n")
    with pytest.raises(C.ConfigError, match="broken.toml: not valid TOML"):
        C.load(p)


def base() -> C.RunConfig:
    cfg = find_preset("qwen3-8b-sharegpt-online-5k").load()
    assert C.errors(C.validate(cfg, qwen_like())) == []
    return cfg


def test_reference_preset_is_the_reference_recipe():
    cfg = base()
    assert cfg.model.target == "Qwen/Qwen3-8B"
    assert cfg.data.sources == ["sharegpt"] and cfg.data.max_samples == 5000 and cfg.data.seq_length == 8192
    assert cfg.hidden_states.gpus == [0, 1] and cfg.hidden_states.data_parallel_size == 2
    assert cfg.training.gpus == [2, 3] and cfg.training.mode == "online"
    assert (cfg.training.draft_vocab_size, cfg.training.epochs, cfg.training.lr) == (32000, 5, 1e-4)
    assert cfg.hidden_states.target_layer_ids == C.default_layer_ids(36)


def test_gpu_overlap_is_an_error_unless_opted_in():
    cfg = base()
    cfg.training.gpus = [1, 2]
    probs = C.validate(cfg, qwen_like())
    assert "training.gpus" in fields(probs)
    assert any("[1]" in p.message and "allow_gpu_sharing" in p.fix for p in probs)
    cfg.run.allow_gpu_sharing = True
    assert "training.gpus" not in fields(C.validate(cfg, qwen_like()))


def test_dp_times_tp_must_match_server_gpus():
    cfg = base()
    cfg.hidden_states.gpus = [0, 1, 4]
    probs = [p for p in C.validate(cfg, qwen_like()) if p.field == "hidden_states.data_parallel_size"]
    assert probs and "3 server GPU(s)" in probs[0].message and "data_parallel_size = 3" in probs[0].fix
    cfg.hidden_states.data_parallel_size = 1
    cfg.hidden_states.tensor_parallel_size = 3
    assert "hidden_states.data_parallel_size" not in fields(C.validate(cfg, qwen_like()))


def test_draft_vocab_larger_than_target_vocab():
    cfg = base()
    cfg.training.draft_vocab_size = 200_000
    probs = [p for p in C.validate(cfg, qwen_like()) if p.field == "training.draft_vocab_size"]
    assert probs and "151936" in probs[0].message


def test_layer_ids_duplicated_out_of_range_and_last():
    cfg = base()
    cfg.hidden_states.target_layer_ids = None
    small = qwen_like(layers=6)  # the default formula collides: 2, 3, 3, 6
    probs = [p for p in C.validate(cfg, small) if p.field == "hidden_states.target_layer_ids"]
    assert probs and "duplicated" in probs[0].message
    fix_ids = C.suggest_layer_ids(6)
    assert len(set(fix_ids)) == 4 and fix_ids[-1] == 6 and str(fix_ids) in probs[0].fix
    assert C.layer_id_problems(fix_ids, 6, "x") == []
    cfg.hidden_states.target_layer_ids = [2, 18, 40]
    assert any("out of range" in p.message for p in C.validate(cfg, qwen_like()))
    cfg.hidden_states.target_layer_ids = [2, 18, 30]
    assert any("last id must be" in p.message for p in C.validate(cfg, qwen_like()))


def test_non_positive_numbers_name_the_field():
    cfg = base()
    cfg.training.epochs = 0
    cfg.training.lr = -1.0
    cfg.data.seq_length = 0
    cfg.hidden_states.gpu_memory_utilization = 1.5
    f = fields(C.validate(cfg))
    assert {"training.epochs", "training.lr", "data.seq_length", "hidden_states.gpu_memory_utilization"} <= f


def test_missing_local_data_file_is_named(tmp_path):
    cfg = base()
    cfg.data.sources = ["sharegpt", str(tmp_path / "nope.jsonl")]
    assert "data.sources[1]" in fields(C.validate(cfg))


def test_target_config_from_local_dir_and_hf_cache(tmp_path, monkeypatch):
    local = tmp_path / "m"
    local.mkdir()
    (local / "config.json").write_text('{"num_hidden_layers": 4, "vocab_size": 100, "hidden_size": 8, '
                                       '"num_attention_heads": 2}')
    assert load_target(str(local)).num_hidden_layers == 4
    hub = tmp_path / "hub"
    snap = hub / "models--org--name" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text('{"text_config": {"num_hidden_layers": 7, "vocab_size": 9, '
                                      '"hidden_size": 8, "num_attention_heads": 2}}')
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    info = load_target("org/name")
    assert info.num_hidden_layers == 7 and info.vocab_size == 9
    with pytest.raises(TargetNotFound, match="not found offline"):
        load_target("org/missing")


def test_builtin_demo_target_is_described_before_it_is_built():
    info = load_target("builtin:tiny-qwen3")
    assert info.num_hidden_layers == 8 and info.head_dim == 64
    cfg = find_preset("tiny-cpu-demo").load()
    assert C.errors(C.validate(cfg, info)) == []


def test_server_python_that_cannot_work_here_is_a_warning(tmp_path, monkeypatch):
    from speculators_core import config as cfgmod
    from speculators_core.config import checks

    cfg = cfgmod.RunConfig()
    monkeypatch.setattr(checks, "_vllm_importable_here", lambda: False)
    probs = [p for p in cfgmod.validate(cfg) if p.field == "hidden_states.python"]
    assert len(probs) == 1 and probs[0].severity == "warning" and "no vllm" in probs[0].message
    cfg.hidden_states.engine = "hf"  # the built-in engine needs no vllm
    assert not [p for p in cfgmod.validate(cfg) if p.field == "hidden_states.python"]
    cfg.hidden_states.python = str(tmp_path / "venv" / "bin" / "python")
    probs = [p for p in cfgmod.validate(cfg) if p.field == "hidden_states.python"]
    assert len(probs) == 1 and "not an executable" in probs[0].message and probs[0].severity == "warning"
    exe = tmp_path / "python"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    cfg.hidden_states.python, cfg.hidden_states.engine = str(exe), "vllm"
    assert not [p for p in cfgmod.validate(cfg) if p.field == "hidden_states.python"]
    monkeypatch.setattr(checks, "_vllm_importable_here", lambda: True)
    cfg.hidden_states.python = ""
    assert not [p for p in cfgmod.validate(cfg) if p.field == "hidden_states.python"]


# ----------------------------------------------------------------- review fixes (round C)
@pytest.mark.parametrize("key, secret", [
    ("HF_TOKEN", True), ("OPENAI_API_KEY", True), ("MY_SECRET", True), ("my_password", True),
    ("DB_PASSWD", True), ("APIKEY", True), ("TOKEN", True), ("hf_token", True), ("MY_Secret", True),
    ("TOKENIZERS_PARALLELISM", False), ("MONKEY_BUSINESS", False), ("KEYBOARD", False),
    ("HF_HOME", False), ("TURKEY", False),
])
def test_secret_keys_are_whole_words(key, secret):
    from speculators_core.config.safety import env_reference, is_secret_key

    assert is_secret_key(key) is secret
    assert (env_reference(key, "false") == key) is secret


@pytest.mark.parametrize("extra", [["--api-key", "sk-1"], ["--api-key=sk-1"], ["--port-x", "1", "--api-key"]])
def test_api_key_in_extra_args_is_an_error(extra):
    cfg = C.RunConfig()
    cfg.hidden_states.extra_args = extra
    probs = [p for p in C.validate(cfg) if p.field == "hidden_states.extra_args"]
    assert probs and probs[0].severity == "error" and "api_key_env" in probs[0].fix
    assert "sk-1" not in str(probs[0])


def test_other_extra_args_are_fine():
    cfg = C.RunConfig()
    cfg.hidden_states.extra_args = ["--api-key-file", "x", "--dtype", "half"]
    assert not [p for p in C.validate(cfg) if p.field == "hidden_states.extra_args"]
