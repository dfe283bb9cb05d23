"""`render_script`: a plan's stages as a runnable bash script (what `export` prints and `run.sh` holds)."""

from __future__ import annotations

import math
import re
import shlex
import sys

from speculators_core.config import RunConfig
from speculators_core.config.safety import ENV_NAME
from speculators_core.plan.stages import Stage


def _comment(text: str) -> str:
    """`text` safe inside a `#` comment: control characters (a newline would end the comment and
    start a command) are written as escapes."""
    return re.sub(r"[\x00-\x1f\x7f\u0085\u2028\u2029]", lambda m: f"\\x{ord(m.group()):02x}", text)


def _echo(message: str) -> str:
    """An echo of `message` with every character quoted (a path or host never runs as code)."""
    return "echo " + shlex.quote(message)


def _env_words(st: Stage, cfg: RunConfig) -> list[str]:
    """`VAR=value` words of a command line: literal values quoted, secrets as `${NAME:?...}`
    references that bash resolves when the script runs (the value is never in the script)."""
    words = []
    for k, v in st.env.items():
        words.append(f"{_name(k)}={shlex.quote(v)}")
    for k, n in st.env_from.items():
        what = "to the API key" if n == cfg.hidden_states.api_key_env else "in the environment"
        words.append(f'{_name(k)}="${{{_name(n)}:?set {n} {what}}}"')
    return words


def _name(key: str) -> str:
    if not ENV_NAME.fullmatch(key):
        raise ValueError(f"hidden_states.env: {key!r} is not an environment variable name; use letters, "
                         f"digits and '_', not starting with a digit")
    return key


def interpreter_vars(stages: list[Stage]) -> dict[str, str]:
    """{interpreter path: shell variable} for the programs the stages start: PYTHON (this
    interpreter), TORCHRUN, SERVER_PYTHON (the server's venv, when another)."""
    import os

    out = {sys.executable: "PYTHON"}
    for st in stages:
        first = st.argv[0] if st.argv else ""
        if os.path.basename(first) == "torchrun":
            out.setdefault(first, "TORCHRUN")
        elif st.kind == "server" and first:
            out.setdefault(first, "SERVER_PYTHON")
        if st.kind == "server" and "--python" in st.argv[:-1]:
            out.setdefault(st.argv[st.argv.index("--python") + 1], "SERVER_PYTHON")
    return out


def _interpreter_lines(names: dict[str, str]) -> list[str]:
    def dq(text: str) -> str:
        return "".join("\\" + ch if ch in '"$`\\' else ch for ch in text)

    return ["# Interpreters: edit them here, or set them in the environment, for another machine.",
            *[f'{var}="${{{var}:-{dq(path)}}}"' for path, var in names.items()], ""]


def render_script(stages: list[Stage], cfg: RunConfig, source: str = "") -> str:
    """A runnable bash script equivalent to the stages: every argument quoted with shlex, the
    interpreters as variables at the top."""
    server = next((s for s in stages if s.kind == "server"), None)
    names = interpreter_vars(stages)
    lines = [
        "#!/usr/bin/env bash",
        _comment(f"# EAGLE-3 drafter training pipeline for {cfg.model.target}, exported by speculators-tui"
                 + (f" from {source}" if source else "") + "."),
        "# Every stage is a plain CLI; run this script from the directory the relative paths refer to.",
        "set -euo pipefail",
        "",
        *_interpreter_lines(names),
    ]
    server_started = False
    # As the supervisor does: the server stays up until the last stage that needs it (regenerate and
    # train share one start, with prepare in between).
    last_needing = max((i for i, s in enumerate(stages) if s.needs_server), default=-1)
    for i, st in enumerate(stages):
        if st.kind == "server":
            continue
        if st.needs_server and not server_started and server is not None:
            lines += _server_block(server, cfg, names)
            server_started = True
        if not st.needs_server and server_started and i > last_needing:
            lines += ["# The server is not needed any more.", "stop_server", ""]
            server_started = False
        lines += [_comment(f"# {st.name}: {st.description}"), _multiline(st, cfg, names), ""]
    if server_started:
        lines += ["stop_server"]
    lines += [_echo(f"Done. Serve the best drafter with: vllm serve "
                    f"{shlex.quote(cfg.training.checkpoint_dir.rstrip('/') + '/checkpoint_best')}")]
    return "\n".join(lines) + "\n"


def _multiline(st: Stage, cfg: RunConfig, names: dict[str, str] | None = None) -> str:
    env = _env_words(st, cfg)
    names = names or {}
    parts = [f'"${names[a]}"' if a in names else shlex.quote(a) for a in st.argv]
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


def _server_block(server: Stage, cfg: RunConfig, names: dict[str, str]) -> list[str]:
    health = server.health_url or ""
    start_timeout = cfg.hidden_states.start_timeout
    timeout = int(start_timeout) if math.isfinite(start_timeout) else 900  # validate reports NaN/inf
    return [
        _comment(f"# server: {server.description}"),
        f"mkdir -p -- {shlex.quote(server.storage_dir or cfg.storage_dir)}",
        _multiline(server, cfg, names) + " &",
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
        _echo(f"Waiting for the hidden-states server at {health} ..."),
        " ".join(['"$PYTHON"', "-m", "speculators_core.wait_health", shlex.quote(health),
                  "--timeout", str(timeout), "--pid", '"$SERVER_PID"']),
        "",
    ]
