"""Start a vLLM server that extracts hidden states for EAGLE-3 training.

    python -m speculators_core.launch_vllm MODEL [--target-layer-ids 2 18 33 36] \
        [--hidden-states-path DIR] [--connector auto|stock|cpu] [--python VLLM_PY] [--dry-run] -- <vLLM args>

Resolves and validates the layer ids from the target's config (unique, ascending, 0 < id <= L, last
= L; default [2, L//2, L-3, L]), builds the vLLM command (speculative config `extract_hidden_states`,
KV-transfer config with the hidden-states connector, `--host 127.0.0.1` unless given), prints it,
and execs it with the vLLM python (--python, else $SPECULATORS_VLLM_PYTHON, else this interpreter).
Without a GPU the CPU-capable connector (speculators_core.vllm_plugins) is chosen, and the server's
PYTHONPATH gets the directory that contains `speculators_core` so another venv can import it.
The command line and that policy are `speculators_core.serving.vllm`'s, shared with planned runs
(which also pass the config's --gpu-memory-utilization, and --enforce-eager on the CPU; this
launcher passes the vLLM arguments after `--` through untouched).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from typing import Mapping, Optional

from speculators_core.plan import flags as stage_args
from speculators_core.errors import ExitCode
from speculators_core.serving.vllm import CPU_KVCACHE_SPACE, choose_connector, has_gpu, plugin_pythonpath, vllm_serve_argv

DEFAULT_PORT = 8000


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(our args, vLLM args): everything after the first `--` goes to vLLM."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def _flag_value(args: list[str], flag: str) -> Optional[str]:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def build(argv: list[str], environ: Mapping[str, str] = os.environ) -> tuple[list[str], dict[str, str], str]:
    """(vLLM argv, environment additions, storage dir) for a launcher command line. SystemExit on bad input."""
    ours, vllm_args = split_argv(argv)
    parser = stage_args.launch_vllm_parser()
    args = parser.parse_args(ours)
    from speculators_core.hidden_states.layers import LayerIdError, resolve_layer_ids
    from speculators_core.paths import resolve_model

    model = resolve_model(args.model)
    if not args.dry_run:
        from speculators_core.builtin import ensure_model

        ensure_model(args.model)
    try:
        layer_ids, _ = resolve_layer_ids(args.model, args.target_layer_ids)
    except LayerIdError as e:
        parser.error(str(e))
    python = args.python or environ.get("SPECULATORS_VLLM_PYTHON") or sys.executable
    if os.sep not in python:
        python = shutil.which(python) or python
    if not args.dry_run and not (os.path.isfile(python) and os.access(python, os.X_OK)):
        parser.error(f"--python {python}: not an executable; point it at the python of the venv that has vLLM "
                     f"(e.g. ~/.cache/speculators-tui/vllm-venv/bin/python, made by .ci/install_vllm.sh)")
    gpu = has_gpu(environ)
    connector = choose_connector(args.connector, gpu)
    storage = os.path.abspath(os.path.expanduser(args.hidden_states_path))
    port_text = _flag_value(vllm_args, "--port")
    port = int(port_text) if port_text and port_text.isdigit() else DEFAULT_PORT
    argv_out = vllm_serve_argv(python, model, layer_ids, storage, connector, "127.0.0.1", port, vllm_args,
                               trust_remote_code=args.trust_remote_code)
    env: dict[str, str] = {}
    if connector == "cpu":
        env["PYTHONPATH"] = plugin_pythonpath(environ)
    if not gpu and "VLLM_CPU_KVCACHE_SPACE" not in environ:
        env["VLLM_CPU_KVCACHE_SPACE"] = CPU_KVCACHE_SPACE
    return argv_out, env, storage


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cmd, env_add, storage_dir = build(argv)
    ours, _ = split_argv(argv)
    dry = "--dry-run" in ours
    shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in env_add.items())
    print(f"launch_vllm: {shown + ' ' if shown else ''}{shlex.join(cmd)}", flush=True)
    if dry:
        return ExitCode.OK
    from speculators_core.paths import UnsafeDirectory, ensure_private_dir

    try:
        ensure_private_dir(storage_dir)  # ours, 0700: never another user's directory
    except UnsafeDirectory as e:
        print(f"launch_vllm: --hidden-states-path {e}", file=sys.stderr)
        return ExitCode.USAGE
    except OSError as e:
        print(f"launch_vllm: --hidden-states-path {storage_dir}: cannot create it ({e})", file=sys.stderr)
        return ExitCode.USAGE
    env = dict(os.environ)
    env.update(env_add)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, env)  # replaces this process: signals reach vLLM directly
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
