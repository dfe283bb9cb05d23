"""The datagen bottleneck detector on recorded metric streams, and inside the supervisor."""

from pathlib import Path

import pytest

from speculators_core import config as cfgmod
from speculators_core.runs.bottleneck import analyze, parse_prometheus, train_window, wait_fraction
from speculators_core.fsutil import read_jsonl
from speculators_core.runs.gpu import GpuInfo, GpuProcess

DATA = Path(__file__).resolve().parent.parent / "data" / "recorded_bottleneck"


def records():
    return read_jsonl(DATA / "metrics.jsonl")[0]


def gpu(i, used=500.0, procs=()):
    return GpuInfo(i, "NVIDIA H100 80GB HBM3", 81559.0, used, 0.0, 70.0, 35.0, list(procs))


def vllm_cfg(**training):
    cfg = cfgmod.RunConfig()
    cfg.hidden_states.engine = "vllm"
    cfg.hidden_states.gpus = [0, 1]
    cfg.hidden_states.data_parallel_size = 2
    cfg.training.gpus = [2]
    for k, v in training.items():
        setattr(cfg.training, k, v)
    return cfg


def saturated():
    return parse_prometheus((DATA / "vllm_metrics_saturated.prom").read_text())


def test_parse_prometheus_sums_label_sets_and_skips_nan_and_created():
    m = saturated()
    assert m["vllm:num_requests_running"] == 16 and m["vllm:num_requests_waiting"] == 40
    assert m["vllm:prompt_tokens_total"] == pytest.approx(2434600)
    assert "vllm:prompt_tokens_created" not in m
    assert m["vllm:gpu_cache_usage_perc"] == pytest.approx(0.97)
    hf = parse_prometheus((DATA / "hf_server_metrics_under_load.prom").read_text())
    assert hf["vllm:num_requests_running"] == 3 and hf["vllm:num_requests_waiting"] == 1
    assert parse_prometheus("garbage here\n# only a comment\nx{a=\"1\"} notanumber\n") == {}


def test_saturated_server_with_an_idle_gpu_gives_it_to_the_server():
    gpus = [gpu(0, 70000), gpu(1, 70000), gpu(2, 30000), gpu(3)]
    f = analyze(records(), saturated(), vllm_cfg(epochs=3), gpus=gpus)
    assert f is not None and f.kind == "bottleneck" and f.severity == "warning"
    assert f.message.startswith("training waited 46% of the last 200 steps; the server is saturated "
                                "(16 running, 40 waiting)")
    assert "give the server GPU 3 (data parallel 2 -> 3)" in f.message and "hybrid" in f.message
    assert f.fix_config == {"hidden_states.gpus": [0, 1, 3], "hidden_states.data_parallel_size": 3}
    assert f.steps == 200 and f.wait_fraction == pytest.approx(0.46, abs=0.01)


def test_a_busy_spare_gpu_is_not_offered_and_hybrid_is_suggested_instead():
    busy = gpu(3, 40000, [GpuProcess(4242, "python train_other.py", 39000)])
    f = analyze(records(), saturated(), vllm_cfg(epochs=3), gpus=[gpu(0), gpu(1), gpu(2), busy])
    assert "GPU 3" not in f.message
    assert f.fix_config == {"training.mode": "hybrid"}


def test_saturated_server_without_spare_gpus_moves_one_from_training():
    cfg = vllm_cfg(epochs=1)
    cfg.training.gpus = [2, 3]
    f = analyze(records(), saturated(), cfg, gpus=[gpu(i) for i in range(4)])
    assert f.fix_config == {"hidden_states.gpus": [0, 1, 3], "hidden_states.data_parallel_size": 3,
                            "training.gpus": [2]}
    assert "move GPU 3 from training to the server" in f.message and f.fix.startswith("Move GPU 3")


def test_underfed_server_raises_requests_in_flight():
    metrics = {"vllm:num_requests_running": 1.0, "vllm:num_requests_waiting": 0.0}
    f = analyze(records(), metrics, vllm_cfg(epochs=1, max_in_flight=8))
    assert "not busy (1 running, 0 waiting)" in f.message
    assert f.fix_config["training.max_in_flight"] == 16


def test_hf_recording_and_offline_as_last_resort():
    cfg = cfgmod.RunConfig()
    cfg.hidden_states.engine = "hf"
    cfg.hidden_states.gpus = []
    cfg.training.gpus = []
    cfg.training.epochs = 1
    cfg.training.max_in_flight = 4
    hf = parse_prometheus((DATA / "hf_server_metrics_under_load.prom").read_text())
    f = analyze(records(), hf, cfg)
    assert "saturated (3 running, 1 waiting)" in f.message
    assert f.fix_config == {"training.mode": "offline"}


def test_no_finding_below_threshold_with_few_steps_or_after_a_resume():
    recs = records()
    assert analyze(recs[:101], saturated(), vllm_cfg()) is None  # steps 1-100 barely wait
    assert analyze(recs[:10], saturated(), vllm_cfg()) is None     # too few steps to judge
    # A resumed trainer writes a new start record: only what follows counts.
    resumed = recs + [{"type": "start"}] + recs[1:6]
    assert train_window(resumed, 200) == recs[1:6]
    assert analyze(resumed, saturated(), vllm_cfg()) is None
    assert wait_fraction(recs[1:101]) < 0.05


def test_idle_server_and_saturated_training_moves_a_gpu_to_training():
    idle = {"vllm:num_requests_running": 0.0, "vllm:num_requests_waiting": 0.0}
    f = analyze(records()[:101], idle, vllm_cfg())
    assert f.kind == "server_idle" and f.severity == "info"
    assert "training is the bottleneck" in f.message
    assert f.fix_config == {"hidden_states.gpus": [0], "hidden_states.data_parallel_size": 1,
                            "training.gpus": [2, 1]}
    assert analyze(records()[:101], idle, vllm_cfg(mode="hybrid")) is None  # idle after epoch 1 by design
    cpu = cfgmod.RunConfig()
    cpu.hidden_states.gpus, cpu.training.gpus = [], []
    assert analyze(records()[:101], idle, cpu) is None  # nothing to move on a CPU run


def test_supervisor_emits_one_warning_with_the_fix(run_dir, port, tmp_path):
    from stages import fake_stages
    from speculators_core.runs.supervisor import Supervisor

    cfg = cfgmod.load(run_dir / "run.toml")
    cfg.training.epochs = 3
    (run_dir / "run.toml").write_text(cfgmod.dumps(cfg, include_defaults=True))
    stages = fake_stages(run_dir, port, server_args=["--metrics", str(DATA / "hf_server_metrics_under_load.prom")],
                         trainer_args=["--steps", "60", "--step-time", "0.05", "--wait-frac", "0.6"])
    sup = Supervisor(run_dir, stages=stages, skip_check=lambda s: None, grace=3, bottleneck_interval=0.3)
    assert sup.run() == 0
    warnings = [e for e in read_jsonl(run_dir / "events.jsonl")[0] if e["event"] == "warning"]
    assert len(warnings) == 1, warnings  # at most one per kind per cooldown
    w = warnings[0]
    assert w["kind"] == "bottleneck" and w["stage"] == "train"
    assert "training waited 60%" in w["message"] and "(3 running, 1 waiting" in w["message"]
    assert w["fix_config"] == {"training.mode": "hybrid"} and "hybrid" in w["fix"]
