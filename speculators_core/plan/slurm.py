"""`render_slurm`: a run as one `sbatch` script for a Slurm cluster (`export --format slurm`).

One allocation of `cluster.serving_nodes + cluster.training_nodes` nodes (`scontrol show hostnames`
names them: serving nodes first, then training nodes; `serving_nodes = 0` puts the server on the
first training node). The script prepares the data on the first training node, checks that the
hidden-states storage is one filesystem for the serving and the training nodes (a marker file),
starts one hidden-states server per serving node with `srun` (server i on port `hidden_states.port
+ i`, so that several may share a node), waits until every one is healthy, and starts `torchrun` on
every training node with a c10d rendezvous on the first training node (`--node-rank` = the task's
`SLURM_PROCID`). The commands are the plan's own (`build_stages`): only hosts, ports, node ranks and
the interpreters become shell variables, every other argument is quoted.
"""

from __future__ import annotations

import math
import shlex

from speculators_core.config import RunConfig
from speculators_core.config.cluster import DEFAULT_RDZV_PORT, split_endpoint
from speculators_core.plan.script import _comment, _echo, _name, interpreter_vars
from speculators_core.plan.stages import Stage, build_stages

HOST = "@SPECULATORS_HOST@"
ENDPOINT = "http://@SPECULATORS_ENDPOINT@/v1"
RDZV = "@SPECULATORS_RDZV@"
NODE_RANK = "@SPECULATORS_NODE_RANK@"


def _words(st: Stage, names: dict[str, str]) -> list[str]:
    """The stage's command as bash words: `env VAR=value ...` then argv, with the placeholders
    as variable expansions and the interpreters as their variables."""
    out = []
    if st.env or st.env_from:
        out.append("env")
        out += [shlex.quote(f"{k}={v}") for k, v in st.env.items()]
        # secrets: references the job's environment resolves (srun passes it on); never the value
        out += [f'{_name(k)}="${{{_name(n)}:?set {_name(n)} in the job environment}}"' for k, n in st.env_from.items()]
    argv = st.argv
    i = 0
    while i < len(argv):
        a, prev = argv[i], argv[i - 1] if i else ""
        if a in ("--vllm-endpoint", "--endpoint") and i + 1 < len(argv) and argv[i + 1] == ENDPOINT:
            out.append('"${ENDPOINT_FLAGS[@]}"' if a == "--vllm-endpoint" else '"${REGENERATE_FLAGS[@]}"')
            i += 2
            continue
        if a in names:
            out.append(f'"${names[a]}"')
        elif a == HOST:
            out.append('"$host"')
        elif prev == "--port" and st.kind == "server":
            out.append('"$port"')
        elif a.startswith(RDZV + ":"):
            out.append('"$RDZV_HOST":' + shlex.quote(a.split(":", 1)[1]))
        elif a == NODE_RANK:
            out.append(NODE_RANK)
        else:
            out.append(shlex.quote(a))
        i += 1
    return out


def _cmd(words: list[str]) -> str:
    """The words on continued lines, a new line before a flag once a line is long enough."""
    lines: list[list[str]] = [[]]
    for w in words:
        if lines[-1] and w.startswith(("--", '"${')) and len(" ".join(lines[-1])) > 40:
            lines.append([])
        lines[-1].append(w)
    return " \\\n    ".join(" ".join(line) for line in lines)


def render_slurm(cfg: RunConfig, target=None, source: str = "", environ=None) -> str:
    c, hs, t = cfg.cluster, cfg.hidden_states, cfg.training
    plan_cfg = cfg.copy()
    plan_cfg.hidden_states.host = HOST
    plan_cfg.cluster.server_endpoints = [ENDPOINT]
    plan_cfg.cluster.node_rank = 0
    rdzv_port = DEFAULT_RDZV_PORT
    if c.rdzv_endpoint:
        rdzv_port = split_endpoint(c.rdzv_endpoint)[1]
    plan_cfg.cluster.rdzv_endpoint = f"{RDZV}:{rdzv_port}"
    stages = build_stages(plan_cfg, target, environ=environ or {})
    own = cfg.copy()  # the server's command: one server, as on one machine, with host/port variables
    own.hidden_states.host = HOST
    own.cluster.server_endpoints = []
    own.cluster.training_nodes, own.cluster.serving_nodes, own.cluster.node_rank = 1, 0, 0
    server = next(s for s in build_stages(own, target, environ=environ or {}) if s.kind == "server")
    if c.training_nodes > 1:
        train = next(s for s in stages if s.name == "train")
        train.argv[train.argv.index("--node-rank") + 1] = NODE_RANK
    names = interpreter_vars(stages + [server])
    serving = max(0, c.serving_nodes)
    nodes = serving + max(1, c.training_nodes)
    gpus = c.gpus_per_node if c.gpus_per_node > 0 else max([*hs.gpus, *t.gpus], default=-1) + 1  # per node
    timeout = int(hs.start_timeout) if math.isfinite(hs.start_timeout) else 900
    lines = [
        "#!/usr/bin/env bash",
        _comment(f"#SBATCH --job-name={cfg.run.name}"),
        f"#SBATCH --nodes={nodes}",
        "#SBATCH --ntasks-per-node=1",
        *([f"#SBATCH --gpus-per-node={gpus}"] if gpus else []),
        _comment(f"#SBATCH --output={cfg.run.name}-%j.out"),
        _comment(f"# EAGLE-3 drafter training for {cfg.model.target} on {nodes} node(s) "
                 f"({serving} serving, {max(1, c.training_nodes)} training), exported by speculators-tui"
                 + (f" from {source}" if source else "") + "."),
        "# Submit with: sbatch THIS_FILE. Relative paths are resolved from the submission directory, which",
        "# must be on the shared filesystem (as must the data, hidden-states and checkpoint directories).",
        "set -euo pipefail",
        "",
        "# Interpreters on the compute nodes: edit here or set them in the environment before sbatch.",
        *[f'{var}="${{{var}:-{_dq(path)}}}"' for path, var in names.items()],
        "",
        f"SERVING_NODES={serving}",
        f"TRAINING_NODES={max(1, c.training_nodes)}",
        f"HS_PORT={int(hs.port)}",
        'mapfile -t HOSTS < <(scontrol show hostnames "$SLURM_JOB_NODELIST")',
        'if [ "${#HOSTS[@]}" -lt $((SERVING_NODES + TRAINING_NODES)) ]; then',
        '  echo "error: this job has ${#HOSTS[@]} node(s); it needs $((SERVING_NODES + TRAINING_NODES))" >&2',
        "  exit 1",
        "fi",
        'TRAIN_HOSTS=("${HOSTS[@]:SERVING_NODES:TRAINING_NODES}")',
        'if [ "$SERVING_NODES" -gt 0 ]; then SERVER_HOSTS=("${HOSTS[@]:0:SERVING_NODES}"); '
        'else SERVER_HOSTS=("${TRAIN_HOSTS[0]}"); fi',
        'RDZV_HOST="${RDZV_HOST:-${TRAIN_HOSTS[0]}}"',
        'TRAIN_NODELIST="$(IFS=,; echo "${TRAIN_HOSTS[*]}")"',
        'ENDPOINT_FLAGS=()',
        'REGENERATE_FLAGS=()',
        'for i in "${!SERVER_HOSTS[@]}"; do',
        '  ENDPOINT_FLAGS+=(--vllm-endpoint "http://${SERVER_HOSTS[$i]}:$((HS_PORT + i))/v1")',
        '  REGENERATE_FLAGS+=(--endpoint "http://${SERVER_HOSTS[$i]}:$((HS_PORT + i))/v1")',
        "done",
        _echo("serving nodes: ") + ' "${SERVER_HOSTS[*]}"; ' + _echo("training nodes: ") + ' "${TRAIN_HOSTS[*]}"',
        "",
    ]
    on_first = 'srun --nodes=1 --ntasks=1 --overlap -w "${TRAIN_HOSTS[0]}"'
    servers_up = False
    checked = False
    # Stages that talk to the servers: regenerate (on the run's servers), generate, online training.
    uses = [st.name == "generate" or (st.name == "train" and t.mode != "offline")
            or (st.name == "regenerate" and ENDPOINT in st.argv) for st in stages]
    for n, st in enumerate(stages):
        if st.name == "wait":
            continue
        if uses[n]:
            if not servers_up:
                if not checked and (serving or c.training_nodes > 1):
                    lines += _shared_fs_check(cfg)
                    checked = True
                lines += _servers(server, names, timeout)
                servers_up = True
        elif servers_up and not any(uses[n:]):
            lines += ["# The servers are not needed any more.", "stop_servers", ""]
            servers_up = False
        lines.append(_comment(f"# {st.name}: {st.description}"))
        if st.name == "train" and c.training_nodes > 1:
            lines += [
                "TRAIN_ARGV=(" + " ".join(_words(st, names)) + ")",
                "printf -v TRAIN_CMD '%q ' \"${TRAIN_ARGV[@]}\"",
                f'TRAIN_CMD="${{TRAIN_CMD/{NODE_RANK}/\\"\\$SLURM_PROCID\\"}}"  # each node\'s rank',
                'srun --nodes="$TRAINING_NODES" --ntasks-per-node=1 --overlap -w "$TRAIN_NODELIST" '
                'bash -c "exec $TRAIN_CMD"',
                "",
            ]
        else:
            lines += [on_first + " \\\n    " + _cmd(_words(st, names)), ""]
    if servers_up:
        lines.append("stop_servers")
    lines.append(_echo(f"Done. Serve the best drafter with: vllm serve "
                       f"{shlex.quote(t.checkpoint_dir.rstrip('/') + '/checkpoint_best')}"))
    return "\n".join(lines) + "\n"


def _dq(text: str) -> str:
    """`text` inside double quotes."""
    return "".join("\\" + ch if ch in '"$`\\' else ch for ch in text)


def _shared_fs_check(cfg: RunConfig) -> list[str]:
    d = shlex.quote(cfg.storage_dir)
    return [
        "# The hidden-states storage must be one filesystem for the serving and the training nodes:",
        "# a marker written on a serving node must be seen by every training node.",
        'FS_TOKEN="slurm-${SLURM_JOB_ID:-0}-$$"',
        f'srun --nodes=1 --ntasks=1 --overlap -w "${{SERVER_HOSTS[0]}}" "$PYTHON" -m speculators_core.shared_fs '
        f'write {d} "$FS_TOKEN"',
        f'srun --nodes="$TRAINING_NODES" --ntasks-per-node=1 --overlap -w "$TRAIN_NODELIST" "$PYTHON" '
        f'-m speculators_core.shared_fs check {d} "$FS_TOKEN"',
        f'"$PYTHON" -m speculators_core.shared_fs remove {d} "$FS_TOKEN"',
        "",
    ]


def _servers(server: Stage, names: dict[str, str], timeout: int) -> list[str]:
    return [
        _comment(f"# servers: {server.description}, one per serving node"),
        "SERVER_PIDS=()",
        "stop_servers() {",
        '  for pid in "${SERVER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done',
        '  for pid in "${SERVER_PIDS[@]}"; do',
        '    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done',
        '    kill -KILL "$pid" 2>/dev/null || true',
        "  done",
        "  SERVER_PIDS=()",
        "}",
        "trap stop_servers EXIT INT TERM",
        'for i in "${!SERVER_HOSTS[@]}"; do',
        '  host="${SERVER_HOSTS[$i]}"; port=$((HS_PORT + i))',
        '  srun --nodes=1 --ntasks=1 --overlap -w "$host" \\\n    ' + _cmd(_words(server, names)) + " &",
        "  SERVER_PIDS+=($!)",
        "done",
        'for i in "${!SERVER_HOSTS[@]}"; do',
        '  echo "Waiting for the hidden-states server on ${SERVER_HOSTS[$i]}:$((HS_PORT + i)) ..."',
        f'  "$PYTHON" -m speculators_core.wait_health "http://${{SERVER_HOSTS[$i]}}:$((HS_PORT + i))/health" '
        f'--timeout {timeout} --pid "${{SERVER_PIDS[$i]}}"',
        "done",
        "",
    ]
