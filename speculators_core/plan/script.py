"""`render_script`: a plan's stages as a runnable bash script (what `export` prints and `run.sh` holds)."""

from __future__ import annotations

import shlex
import sys

from speculators_core.config import RunConfig
from speculators_core.plan.stages import Stage


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
