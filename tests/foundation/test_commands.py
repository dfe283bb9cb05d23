"""The one command builder: export golden test, argv/parser agreement, environments."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from speculators_core import config as C
from speculators_core.plan import flags as stage_args
from speculators_core.plan.flags import evaluate_parser, train_parser
from speculators_core.plan.stages import build_stages
from speculators_core.plan.script import render_script
from speculators_core.config.presets import find_preset, list_presets
from speculators_core.target import load_target

from .test_config import qwen_like


def reference_stages(environ=None):
    cfg = find_preset("qwen3-8b-sharegpt-online-5k").load()
    return cfg, build_stages(cfg, None, environ=environ or {})


def flag_values(argv: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    key = None
    for a in argv:
        if a.startswith("--"):
            key = a
            out.setdefault(key, [])
        elif key is not None:
            out[key].append(a)
    return out


def test_reference_script_has_the_tutorial_flags():
    cfg, stages = reference_stages()
    script = render_script(stages, cfg, "presets/qwen3-8b-sharegpt-online-5k.toml")
    by_name = {s.name: s for s in stages}
    assert [s.name for s in stages] == ["prepare", "server", "train"]

    # Step 1 of the tutorial: prepare_data.py flags and values.
    prep = flag_values(by_name["prepare"].stage_argv())
    assert prep["--model"] == ["Qwen/Qwen3-8B"] and prep["--data"] == ["sharegpt"]
    assert prep["--output"] == ["./output"] and prep["--max-samples"] == ["5000"]
    assert prep["--seq-length"] == ["8192"]

    # Step 2: vLLM on GPUs 0,1 with data parallel 2, extraction configured.
    server = by_name["server"]
    assert server.env["CUDA_VISIBLE_DEVICES"] == "0,1"
    sv = flag_values(server.argv)
    assert sv["--data-parallel-size"] == ["2"] and sv["--port"] == ["8000"] and sv["--host"] == ["127.0.0.1"]
    assert '"method":"extract_hidden_states"' in sv["--speculative-config"][0]
    assert "[2,18,33,36]" in sv["--speculative-config"][0]
    assert "ExampleHiddenStatesConnector" in sv["--kv-transfer-config"][0]

    # Step 3: torchrun --standalone --nproc_per_node 2 on GPUs 2,3 with the tutorial's flags.
    train = by_name["train"]
    assert train.env["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert train.argv[0].endswith("torchrun") and train.argv[1:4] == ["--standalone", "--nproc_per_node", "2"]
    tv = flag_values(train.stage_argv())
    expected = {"--verifier-name-or-path": "Qwen/Qwen3-8B", "--data-path": "./output",
                "--vllm-endpoint": "http://127.0.0.1:8000/v1", "--save-path": "./checkpoints/qwen3-8b-sharegpt-online-5k",
                "--draft-vocab-size": "32000", "--epochs": "5", "--lr": "1e-4", "--total-seq-len": "8192",
                "--on-missing": "generate", "--on-generate": "delete"}
    for flag, value in expected.items():
        assert tv[flag] == [value], flag

    # The script text itself, as a user reads it.
    for text in ("--draft-vocab-size 32000", "--epochs 5", "--lr 1e-4", "--total-seq-len 8192",
                 "--on-missing generate", "--on-generate delete", "CUDA_VISIBLE_DEVICES=0,1",
                 "--data-parallel-size 2", "--standalone", "--nproc_per_node 2", "set -euo pipefail",
                 "trap stop_server EXIT INT TERM", "speculators_core.wait_health"):
        assert text in script, text


def test_hybrid_and_offline_modes_map_to_tutorial_flags():
    cfg = find_preset("qwen3-8b-sharegpt-hybrid-5k").load()
    train = build_stages(cfg, None, environ={})[-1]
    tv = flag_values(train.stage_argv())
    assert tv["--on-missing"] == ["generate"] and tv["--on-generate"] == ["cache"]
    assert tv["--hidden-states-path"] == ["./output/hidden_states"]
    cfg.training.mode = "offline"
    stages = build_stages(cfg, None, environ={})
    assert [s.name for s in stages] == ["prepare", "server", "generate", "train"]
    assert stages[2].needs_server and not stages[3].needs_server
    tv = flag_values(stages[3].stage_argv())
    assert tv["--on-missing"] == ["raise"] and "--vllm-endpoint" not in tv
    script = render_script(stages, cfg)
    # the server is stopped before offline training starts
    assert script.index("stop_server\n") < script.index("speculators_core.train")


def _all_configs():
    for preset in list_presets():
        for mode in C.MODES:
            cfg = preset.load()
            cfg.training.mode = mode
            if cfg.cluster.serving_nodes and not cfg.cluster.server_endpoints:  # servers on other nodes
                cfg.cluster.server_endpoints = ["http://node0:8000/v1"]
            yield f"{preset.name}-{mode}", cfg
    cfg = find_preset("tiny-cpu-demo").load()
    cfg.training.cpu_processes = 2
    cfg.hidden_states.engine = "vllm"
    cfg.training.from_pretrained = "/ckpt"
    cfg.training.scheduler = "cosine"
    cfg.data.minimum_valid_tokens = 5
    cfg.model.trust_remote_code = True
    yield "tiny-variant", cfg


@pytest.mark.parametrize("name,cfg", list(_all_configs()), ids=lambda x: x if isinstance(x, str) else "")
def test_every_built_argv_parses_with_its_stage_parser(name, cfg):
    target = load_target("builtin:tiny-qwen3") if cfg.model.target.startswith("builtin:") else qwen_like()
    for st in build_stages(cfg, target, run_dir="/tmp/run", environ={}):
        module = st.module
        if module is None or module.startswith("vllm."):
            continue
        if module == "speculators_core.demo":
            continue
        parser = stage_args.PARSERS[module]()
        ns = parser.parse_args(st.stage_argv())  # raises SystemExit on any unknown flag
        if module == "speculators_core.train":
            assert ns.epochs == cfg.training.epochs and ns.lr == pytest.approx(cfg.training.lr)
            assert ns.resume == cfg.training.resume and ns.run_dir == "/tmp/run"
            assert ns.target_layer_ids[-1] == target.num_hidden_layers
        if module == "speculators_core.prepare":
            assert ns.seq_length == cfg.data.seq_length and len(ns.data) == len(cfg.data.sources)


def test_inherited_cuda_visible_devices_numbering():
    _, stages = reference_stages(environ={"CUDA_VISIBLE_DEVICES": "4,5,6,7"})
    env = {s.name: s.env.get("CUDA_VISIBLE_DEVICES") for s in stages}
    assert env["server"] == "4,5" and env["train"] == "6,7"
    with pytest.raises(C.ConfigError, match="exposes only 2 GPU"):
        reference_stages(environ={"CUDA_VISIBLE_DEVICES": "0,1"})


def test_default_layer_ids_need_the_target_config():
    cfg = find_preset("qwen3-8b-sharegpt-online-5k").load()
    cfg.hidden_states.target_layer_ids = None
    with pytest.raises(C.ConfigError, match="target_layer_ids"):
        build_stages(cfg, None, environ={})
    stages = build_stages(cfg, qwen_like(layers=28), environ={})
    assert "[2,14,25,28]" in stages[1].argv[stages[1].argv.index("--speculative-config") + 1]


def test_demo_config_runs_everything_on_the_cpu_with_the_hf_engine():
    cfg = find_preset("tiny-cpu-demo").load()
    stages = build_stages(cfg, load_target("builtin:tiny-qwen3"), environ={})
    assert [s.name for s in stages] == ["assets", "prepare", "server", "train", "evaluate"]
    server, train, ev = stages[2], stages[3], stages[4]
    # the demo measures checkpoint_best with the hf engine on the held-out split, on the CPU
    assert ev.module == "speculators_core.evaluate" and ev.env["CUDA_VISIBLE_DEVICES"] == ""
    a = evaluate_parser().parse_args(ev.stage_argv())
    assert a.engine == "hf" and a.checkpoint.endswith("checkpoint_best") and a.prompts == cfg.data.output
    assert a.num_speculative_tokens == [1, 2, 3] and a.device == "cpu" and not ev.needs_server
    assert server.module == "speculators_core.hf_server" and "--host" in server.argv
    assert server.argv[server.argv.index("--host") + 1] == "127.0.0.1"
    assert train.argv[1:3] == ["-m", "speculators_core.train"]  # one CPU process: plain python -m
    assert train.env["CUDA_VISIBLE_DEVICES"] == ""
    assert "builtin:" not in " ".join(server.argv + train.argv)  # resolved to the built directory


def test_evaluation_section_adds_the_stage_and_checkpoint_best_follows_acceptance(tmp_path):
    cfg = find_preset("tiny-cpu-demo").load()
    cfg.evaluation.select_best_by = "acceptance_length"
    cfg.evaluation.engine = "vllm"
    cfg.hidden_states.python = sys.executable
    stages = build_stages(cfg, load_target("builtin:tiny-qwen3"), run_dir=str(tmp_path), environ={})
    train, ev = stages[-2], stages[-1]
    assert train_parser().parse_args(train.stage_argv()).select_best_by == "acceptance_length"
    a = evaluate_parser().parse_args(ev.stage_argv())
    # every epoch is measured and checkpoint_best re-pointed at the best; records go to the run's metrics
    assert a.checkpoint == cfg.training.checkpoint_dir and a.select_best_by == "acceptance_length"
    assert a.metrics == str(tmp_path / "metrics.jsonl") and a.output == str(tmp_path / "eval.json")
    assert a.engine == "vllm" and a.python == sys.executable
    cfg.evaluation.enabled = False
    assert build_stages(cfg, load_target("builtin:tiny-qwen3"), environ={})[-1].name == "train"


def test_script_quotes_every_argument(tmp_path):
    cfg = find_preset("tiny-cpu-demo").load()
    cfg.data.output = str(tmp_path / "dir with spaces; rm -rf x")
    stages = build_stages(cfg, load_target("builtin:tiny-qwen3"), environ={})
    script = render_script(stages, cfg)
    assert shlex.quote(cfg.data.output) in script
    # bash parses it (syntax only)
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_export_cli_writes_a_runnable_script(tmp_path):
    out = tmp_path / "run.sh"
    r = subprocess.run([sys.executable, "-m", "speculators_tui.cli", "export", "qwen3-8b-sharegpt-online-5k",
                        "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_mode & 0o111
    assert "--nproc_per_node 2" in out.read_text()


def test_vllm_on_cpu_gets_the_cpu_connector_and_eager_mode():
    cfg = find_preset("tiny-cpu-demo").load()
    cfg.hidden_states.engine = "vllm"
    server = build_stages(cfg, load_target("builtin:tiny-qwen3"), environ={})[2]
    sv = flag_values(server.argv)
    assert "CPUHiddenStatesConnector" in sv["--kv-transfer-config"][0]
    assert "--enforce-eager" in server.argv and server.env["VLLM_CPU_KVCACHE_SPACE"]
    import os

    first = server.env["PYTHONPATH"].split(os.pathsep)[0]
    assert os.path.isfile(os.path.join(first, "speculators_core", "vllm_plugins", "cpu_hidden_states_connector.py"))
    cfg.hidden_states.extra_args = ["--no-enforce-eager"]
    assert "--enforce-eager" not in build_stages(cfg, load_target("builtin:tiny-qwen3"), environ={})[2].argv


@pytest.mark.parametrize("cores, procs, train_cpu, server_cpu, concurrent, expected", [
    (2, 1, True, True, True, (1, 1)),      # the demo on a 2-core laptop: one core each, never 2 + 2
    (16, 1, True, True, True, (8, 8)),
    (16, 3, True, True, True, (4, 4)),
    (2, 2, True, True, True, (1, 1)),      # oversubscribed at worst by one thread
    (8, 2, True, True, False, (8, 4)),     # offline: the server is gone before training starts
    (8, 1, True, False, True, (None, 8)),  # server on a GPU: training has the CPU to itself
    (16, 2, False, True, True, (14, None)),  # training on GPUs: a core per training process
    (16, 2, False, False, True, (None, 8)),  # GPU training, GPU server: a share of the cores for the data path
    (4, 8, False, False, True, (None, 1)),
])
def test_cpu_thread_split(cores, procs, train_cpu, server_cpu, concurrent, expected):
    from speculators_core.plan.stages import cpu_threads

    t = cpu_threads(cores, procs, train_cpu, server_cpu, concurrent)
    assert (t.server, t.train) == expected
    if train_cpu and server_cpu and concurrent and cores >= procs + 1:
        assert t.server + procs * t.train <= cores  # no core is asked for twice


def test_demo_threads_are_in_the_stage_env_and_run_sh():
    cfg = find_preset("tiny-cpu-demo").load()
    stages = {s.name: s for s in build_stages(cfg, load_target("builtin:tiny-qwen3"), environ={}, cores=2)}
    assert stages["server"].env["OMP_NUM_THREADS"] == "1" and stages["train"].env["OMP_NUM_THREADS"] == "1"
    script = render_script(list(stages.values()), cfg)
    # recorded in run.sh: the server's and the trainer's command lines start with it
    starts = [ln for ln in script.splitlines() if ln.startswith("CUDA_VISIBLE_DEVICES=")]
    assert sum("OMP_NUM_THREADS=1 " in ln for ln in starts) == 2, starts
    # the user's own OMP_NUM_THREADS wins, for every process
    stages = {s.name: s for s in build_stages(cfg, load_target("builtin:tiny-qwen3"), environ={"OMP_NUM_THREADS": "3"},
                                              cores=2)}
    assert stages["server"].env["OMP_NUM_THREADS"] == "3" and stages["train"].env["OMP_NUM_THREADS"] == "3"


@pytest.mark.parametrize("parser", [stage_args.launch_vllm_parser, stage_args.hf_server_parser, train_parser])
@pytest.mark.parametrize("given", [["2", "18", "33", "36"], ["2,18,33,36"], ["[2,", "18,", "33,", "36]"],
                                   ["[2,18,33,36]"], ["2,18", "33", "36"]])
def test_layer_ids_parse_as_run_toml_and_the_wizard_write_them(parser, given):
    base = {"train_parser": ["--verifier-name-or-path", "m", "--data-path", "d", "--save-path", "s"]}.get(
        parser.__name__, ["m"])
    if parser is stage_args.hf_server_parser:
        base += ["--hidden-states-path", "h"]
    args = parser().parse_args(base + ["--target-layer-ids", *given])
    assert args.target_layer_ids == [2, 18, 33, 36]


def test_a_bad_layer_id_names_the_flag_and_the_forms_it_takes(capsys):
    with pytest.raises(SystemExit):
        stage_args.launch_vllm_parser().parse_args(["m", "--target-layer-ids", "2,L-3"])
    err = capsys.readouterr().err
    assert "--target-layer-ids: expected whole numbers such as `2 18 33` or `2,18,33`, got 'L-3'" in err
