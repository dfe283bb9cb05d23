"""Check that a directory is one filesystem for every node: a marker written on one node, read on another.

    python -m speculators_core.shared_fs write DIR TOKEN    # on a serving node
    python -m speculators_core.shared_fs check DIR TOKEN    # on each training node (exit 1 if unseen)
    python -m speculators_core.shared_fs remove DIR TOKEN

Hidden states travel from the server's node to the trainer's through files in the storage directory
(`hidden_states.storage_dir`), so a multi-node run checks this before training: a node-local
directory of the same name would otherwise fail every sample. `check` waits up to --timeout seconds
(NFS attribute caches may lag a few seconds). Standard library only.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

PREFIX = ".speculators-shared-fs-"


def marker(directory: str, token: str) -> Path:
    safe = "".join(c for c in token if c.isalnum() or c in "-_.")
    if not safe:
        raise ValueError(f"token {token!r}: use letters, digits, '-', '_' or '.'")
    return Path(directory) / f"{PREFIX}{safe}"


def write(directory: str, token: str) -> Path:
    Path(directory).mkdir(parents=True, exist_ok=True)
    path = marker(directory, token)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(f"{socket.gethostname()} {token}\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def check(directory: str, token: str, timeout: float = 30.0) -> tuple[bool, str]:
    """(seen, text): whether this node sees the marker (and which host wrote it)."""
    path = marker(directory, token)
    deadline = time.monotonic() + timeout
    while True:
        try:
            text = path.read_text(encoding="utf-8").strip()
            if text.endswith(token):
                return True, text.split(" ", 1)[0]
        except OSError:
            pass
        if time.monotonic() >= deadline:
            return False, ""
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m speculators_core.shared_fs", description=__doc__.splitlines()[0])
    p.add_argument("action", choices=("write", "check", "remove"))
    p.add_argument("directory")
    p.add_argument("token")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds `check` waits for the marker")
    a = p.parse_args(argv)
    host = socket.gethostname()
    try:
        if a.action == "write":
            print(f"[shared-fs] {host}: wrote {write(a.directory, a.token)}", flush=True)
        elif a.action == "remove":
            marker(a.directory, a.token).unlink(missing_ok=True)
        else:
            seen, writer = check(a.directory, a.token, a.timeout)
            if not seen:
                print(f"error: {a.directory} is not shared with the serving node: {host} does not see the marker "
                      f"{marker(a.directory, a.token).name} written there (waited {a.timeout:.0f} s). "
                      f"Fix: put hidden_states.storage_dir (and data.output, training.checkpoint_dir) on a "
                      f"filesystem every node mounts, inside cluster.shared_dir", file=sys.stderr)
                return 1
            print(f"[shared-fs] {host} sees the marker written by {writer}: {a.directory} is shared", flush=True)
    except (OSError, ValueError) as exc:
        print(f"error: {a.directory}: {exc}. Fix: use a writable directory on the shared filesystem",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
