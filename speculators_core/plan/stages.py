"""ONE pure function from a run configuration to the ordered stages of a run.

`build_stages` is used both to launch a run (the supervisor) and to export it as a bash script
(`render_script`), so what the app runs and what a user can run by hand never differ. It reads no
files and starts nothing: the target's facts come in as a `TargetInfo`, the environment as a dict.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Mapping, Optional

from speculators_core.config import MODE_FLAGS, ConfigError, RunConfig, resolved_layer_ids
from speculators_core.config.safety import env_reference
from speculators_core.paths import is_builtin, resolve_data_source, resolve_model
from speculators_core.plan import flags as stage_args
from speculators_core.plan.flags import extra_flags as _extra_flags, num as _num
from speculators_core.serving.engines import ServerRequest, get_engine

if TYPE_CHECKING:
    from speculators_core.target import TargetInfo

#: Skip rules a stage may carry (`Stage.skip_if`); the supervisor's `stage_done` evaluates them.
SKIP_RULES = ("model_built", "prepared", "evaluated")


@dataclass
class Stage:
    name: Literal["assets", "regenerate", "prepare", "server", "wait", "generate", "train", "evaluate"]
    argv: list[str]
    #: Variables added to the inherited environment (e.g. CUDA_VISIBLE_DEVICES).
    env: dict[str, str] = field(default_factory=dict)
    #: Variables whose value is read from the run's environment when the stage starts: {VAR: NAME}
    #: sets VAR to $NAME (secrets such as VLLM_API_KEY: only the NAME is ever written down). A NAME
    #: that is unset fails the stage (`runs.children.stage_environ`).
    env_from: dict[str, str] = field(default_factory=dict)
    cwd: Optional[str] = None
    #: "task" runs to completion; "server" runs in the background while tasks that need it run.
    kind: Literal["task", "server"] = "task"
    needs_server: bool = False
    health_url: Optional[str] = None
    log: str = ""
    description: str = ""
    #: When the stage need not run: "model_built" (the demo target's marker exists), "prepared"
    #: (the prepared dataset matches its inputs), None = always run.
    skip_if: Optional[str] = None
    #: The server's hidden-states directory, absolute (plan/storage.py); "" for other stages.
    storage_dir: str = ""
    #: evaluate with every_epoch: the supervisor measures each epoch's checkpoint as soon as it is
    #: complete, while training runs (runs/epoch_eval.py), with this environment added to `env`
    #: (the CPU share of plan.stages.cpu_threads); None = measure after training only.
    during_training_env: Optional[dict[str, str]] = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Stage":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

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
        env = " ".join([f"{k}={shlex.quote(v)}" for k, v in self.env.items()]
                       + [f'{k}="${{{n}}}"' for k, n in self.env_from.items()])
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


def cgroup_cpu_limit(text: str) -> Optional[int]:
    """The CPUs a cgroup v2 `cpu.max` ("max 100000", "200000 100000") allows, rounded up; None = no limit
    (or a text that is not a quota)."""
    parts = text.split()
    try:
        quota, period = (int(parts[0]), int(parts[1]) if len(parts) > 1 else 100000)
    except (IndexError, ValueError):
        return None
    if quota <= 0 or period <= 0:
        return None
    return max(1, -(-quota // period))


def usable_cores() -> int:
    """The cores this process may run on: its affinity (taskset, cpuset), capped by a cgroup v2 CPU
    quota (`docker --cpus=2` on a 32-core host is 2, not 32)."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cores = max(1, os.cpu_count() or 1)
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as f:
            limit = cgroup_cpu_limit(f.read())
    except (OSError, ValueError):
        limit = None
    return min(cores, limit) if limit else cores


def cpu_threads(cores: int, train_procs: int, train_on_cpu: bool, server_on_cpu: bool,
                concurrent: bool) -> CpuThreads:
    """Thread counts that do not fight over the CPU.

    Two torch processes that each start one OpenMP thread per core spin against each other (on 2
    cores, ten times slower than one thread each). When the server and the trainer run on the CPU at
    the same time (`concurrent`: the trainer asks the server while it trains), the cores are split
    evenly between the server and the training processes; a process alone on the CPU gets all of it.
    GPU training processes get a share of the cores (up to 8) when the server is not on the CPU.
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
    # GPU training alone on the CPU: torchrun's default of 1 thread would starve the data path
    # (collate, pinned copies, cache reads); a share of the cores each, up to 8
    return CpuThreads(server=None, train=max(1, min(8, cores // procs)))


def _server_extra_args(hs, needs_vllm: bool) -> list[str]:
    """hidden_states.extra_args, and for vLLM `--dtype` from hidden_states.dtype (vLLM's own names),
    unless auto or extra_args already sets it."""
    extra = list(hs.extra_args)
    if needs_vllm and hs.dtype != "auto" and not any(a == "--dtype" or a.startswith("--dtype=") for a in extra):
        from speculators_core.precision import TORCH_NAMES, normalise

        try:
            extra = ["--dtype", TORCH_NAMES[normalise(hs.dtype)]] + extra
        except (ValueError, KeyError):  # an unknown dtype is validate()'s error, not the planner's
            pass
    return extra


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


def server_endpoints(cfg: RunConfig) -> list[str]:
    """The hidden-states servers training and generation use: `cluster.server_endpoints` (servers
    started elsewhere, e.g. one per serving node), else the run's own server."""
    return list(cfg.cluster.server_endpoints) or [endpoint_url(cfg)]


def health_url(endpoint: str) -> str:
    """http://HOST:PORT/v1 -> http://HOST:PORT/health."""
    u = endpoint.rstrip("/")
    return (u[:-3] if u.endswith("/v1") else u) + "/health"


def train_launcher(cfg: RunConfig, nproc: int, py: str) -> list[str]:
    """How training is started on this node: plain python (one process on one node), torchrun
    --standalone (several processes on one node), or torchrun over `cluster.training_nodes` nodes
    with a c10d rendezvous at `cluster.rdzv_endpoint` as node `cluster.node_rank`."""
    c = cfg.cluster
    module = ["-m", "speculators_core.train"]
    if c.training_nodes > 1:
        from speculators_core.config.cluster import split_endpoint

        if not c.rdzv_endpoint:
            raise ConfigError(f"cluster.rdzv_endpoint: {c.training_nodes} training nodes need a rendezvous "
                              f"endpoint (HOST:PORT of the first training node), or export with --format slurm")
        host, port = split_endpoint(c.rdzv_endpoint)
        host = f"[{host}]" if ":" in host else host
        return [_tool("torchrun"), "--nnodes", str(c.training_nodes), "--node-rank", str(c.node_rank),
                "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{host}:{port}", "--rdzv-id", cfg.run.name,
                "--nproc_per_node", str(nproc), *module]
    if nproc > 1:
        return [_tool("torchrun"), "--standalone", "--nproc_per_node", str(nproc), *module]
    return [py, *module]


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
    # every_epoch on CPU training: each epoch is measured while training runs, on a training
    # process's share of the cores (one more process in the split)
    cpu_epoch_eval = cfg.evaluation.enabled and cfg.evaluation.every_epoch and not t.gpus
    threads = cpu_threads(usable_cores() if cores is None else cores, nproc + cpu_epoch_eval, train_on_cpu=not t.gpus,
                          server_on_cpu=not hs.gpus, concurrent=t.mode != "offline")
    omp = environ.get("OMP_NUM_THREADS")  # the user's own setting wins

    def thread_env(n: Optional[int]) -> dict[str, str]:
        return {"OMP_NUM_THREADS": omp or str(n)} if n is not None else {}

    # Node ranks > 0 of a multi-node training leave the shared preparation to node 0 (the rendezvous
    # waits for it) and use its data from the shared directory.
    first_node = cfg.cluster.training_nodes <= 1 or cfg.cluster.node_rank == 0
    if is_builtin(m.target) and first_node:
        stages.append(Stage(
            "assets", [py, "-m", "speculators_core.demo", "--model-dir", model],
            description=f"build the embedded demo target {m.target} (offline, once)", log="prepare.log",
            skip_if="model_built",
        ))

    key_from = {hs.api_key_env: hs.api_key_env} if hs.api_key_env else {}  # must be set when a stage starts
    external = list(cfg.cluster.server_endpoints)
    if cfg.cluster.serving_nodes > 0 and not external:
        raise ConfigError(f"cluster.server_endpoints: {cfg.cluster.serving_nodes} serving node(s) but no server URLs: "
                          f"this machine's commands cannot start servers on other nodes; export with --format "
                          f"slurm (it starts one per serving node), or list the servers you started "
                          f"(http://HOST:PORT/v1)")
    if external:  # servers started elsewhere (one per serving node): wait until every one is healthy
        import math

        timeout = _num(hs.start_timeout) if math.isfinite(hs.start_timeout) else "900"
        stages.append(Stage("wait", [py, "-m", "speculators_core.wait_health",
                                     *[health_url(u) for u in external], "--timeout", timeout],
                            env={"CUDA_VISIBLE_DEVICES": ""}, log="server.log",
                            description=f"wait for {len(external)} hidden-states server(s) started elsewhere"))

    # 0. Regenerate the answers with the target (data.regenerate): node 0 only, like prepare.
    if d.regenerate and first_node:
        from speculators_core.plan.regenerate_stage import regenerate_stage

        stages.append(regenerate_stage(cfg, external or [endpoint_url(cfg)], run_dir, key_from,
                                       own_server=not external))

    # 1. Prepare.
    argv = [py, "-m", "speculators_core.prepare", "--model", model]
    for src in ([cfg.regenerated_data] if d.regenerate else d.sources):
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
    if first_node:
        stages.append(Stage("prepare", argv, env={"CUDA_VISIBLE_DEVICES": ""}, log="prepare.log",
                            description="tokenise chat data, build loss masks and token_freq.pt", skip_if="prepared"))

    # 2. Hidden-states server.
    from speculators_core.plan.storage import planned_storage_dir

    storage = planned_storage_dir(cfg, target, run_dir)
    server_env: dict[str, str] = {"CUDA_VISIBLE_DEVICES": _visible(hs.gpus, environ), **thread_env(threads.server)}
    engine = get_engine(hs.engine)
    request = dict(
        python=hs.python or py, model=model, layer_ids=list(layer_ids), storage_dir=storage,
        host=hs.host, port=hs.port, gpus=list(hs.gpus), device=hs.device, dtype=hs.dtype,
        data_parallel_size=hs.data_parallel_size, tensor_parallel_size=hs.tensor_parallel_size,
        gpu_memory_utilization=hs.gpu_memory_utilization, max_model_len=hs.max_model_len,
        connector=hs.connector, extra_args=_server_extra_args(hs, engine.needs_vllm),
        trust_remote_code=m.trust_remote_code, environ=environ, api_key_env=hs.api_key_env)
    launch = engine.launch(ServerRequest(**request))
    argv, desc = list(launch.argv), launch.description
    server_env.update(launch.env)
    server_from: dict[str, str] = {}
    for key, value in hs.env.items():  # secrets are references: resolved when the server starts
        ref = env_reference(key, value)
        if ref is None:
            server_env[key] = value
        else:
            server_env.pop(key, None)
            server_from[key] = ref
    if hs.api_key_env:
        if engine.needs_vllm:  # vllm serve reads its key from VLLM_API_KEY, never from argv
            server_from["VLLM_API_KEY"] = hs.api_key_env
        else:
            server_from.update(key_from)  # HfEngine.launch passed --api-key-env NAME
    if not external:
        stages.append(Stage("server", argv, env=server_env, env_from=server_from, kind="server", log="server.log",
                            health_url=endpoint_url(cfg).rsplit("/v1", 1)[0] + "/health", description=desc,
                            storage_dir=storage))

    on_missing, on_generate = MODE_FLAGS[t.mode]
    client_flags = {
        "--hidden-states-storage": storage,
        "--max-in-flight": t.max_in_flight,
        "--max-files-on-disk": t.max_files_on_disk,
        "--api-key-env": hs.api_key_env or None,
    }

    # 2b. Offline: fill the cache first, then training needs no server.
    if t.mode == "offline":
        argv = [py, "-m", "speculators_core.generate", "--data-path", d.output,
                "--hidden-states-path", cfg.hidden_states_cache]
        for url in server_endpoints(cfg):
            argv += ["--vllm-endpoint", url]
        argv += _extra_flags(stage_args.generate_parser, client_flags)
        stages.append(Stage("generate", argv, env={"CUDA_VISIBLE_DEVICES": ""}, env_from=dict(key_from),
                            needs_server=not external,
                            log="generate.log", description="pre-generate hidden states into the cache"))

    # 3. Train.
    launcher = train_launcher(cfg, nproc, py)
    argv = launcher + [
        "--verifier-name-or-path", model,
        "--data-path", d.output,
    ]
    if t.mode != "offline":
        for url in server_endpoints(cfg):
            argv += ["--vllm-endpoint", url]
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
        "--select-best-by": cfg.evaluation.select_best_by,
    }
    if t.mode != "offline":
        extra.update(client_flags)
    if not t.gpus:
        extra["--device"] = "cpu"
    argv += _extra_flags(stage_args.train_parser, extra)
    train_env = {"CUDA_VISIBLE_DEVICES": _visible(t.gpus, environ), **thread_env(threads.train)}
    stages.append(Stage("train", argv, env=train_env, env_from=dict(key_from) if t.mode != "offline" else {},
                        needs_server=t.mode != "offline" and not external, log="train.log",
                        description=f"train the EAGLE-3 drafter ({nproc} process{'es' if nproc > 1 else ''}"
                                    + (f" on each of {cfg.cluster.training_nodes} nodes, this is node "
                                       f"{cfg.cluster.node_rank}" if cfg.cluster.training_nodes > 1 else "") + ", "
                                    f"{'GPU ' + ','.join(map(str, t.gpus)) if t.gpus else 'CPU'}, {t.mode})"))

    # 4. Evaluate (after training, on the training GPUs or the CPU): once, on node 0 (rank 0 wrote
    # the checkpoints).
    from speculators_core.plan.evaluate_stage import evaluate_stage

    ev = evaluate_stage(cfg, run_dir, _visible(t.gpus, environ), omp or str(usable_cores() if cores is None else cores),
                        during_omp=omp or str(threads.train or 1))
    if ev is not None and first_node:
        stages.append(ev)
    gpu_env(stages, cfg, environ)
    return stages


def gpu_env(stages: list[Stage], cfg: RunConfig, environ: Mapping[str, str]) -> None:
    """Every stage numbers GPUs as NVML does (by PCI bus; CUDA's default is fastest first), so the GPU
    panel, the split and the processes agree; torch stages on GPUs get the expandable-segments
    allocator (less fragmentation with the TTT steps' growing tensors). The user's own values win."""
    for st in stages:
        if "CUDA_DEVICE_ORDER" not in environ:
            st.env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        torch_on_gpu = (st.name == "train" and cfg.training.gpus) or \
            (st.name == "server" and cfg.hidden_states.engine == "hf" and cfg.hidden_states.gpus)
        if torch_on_gpu and "PYTORCH_CUDA_ALLOC_CONF" not in environ:
            st.env.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
