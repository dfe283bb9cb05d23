"""The regenerated output: one JSON line per conversation, appended and flushed as each finishes.

Each row carries its source (`source`: file:line, the resume key), the source's `id`, the
`messages` with the new answers, the exact token ids (`input_ids`, `loss_mask`), and `regenerate`:
the settings it was made with. `--resume` keeps the rows already written and skips their sources;
rows made with other settings (another model, temperature, max tokens, ...) are refused, naming
the setting, instead of mixing two datasets in one file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from speculators_core.regen.rows import RegenerateError

#: The settings that make rows comparable (a resumed output must have been written with the same).
SETTING_KEYS = ("model", "max_tokens", "temperature", "top_p", "seed", "turns", "chat_template_kwargs")


def repair_tail(path: Path) -> int:
    """Cut a last line torn by a kill mid-write (rows are written in one append each, so only the tail
    can be torn); the number of bytes removed."""
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        fh.seek(max(0, size - 1))
        if fh.read(1) == b"\n":
            return 0
        # find the last newline
        block, end = 65536, size
        while end > 0:
            start = max(0, end - block)
            fh.seek(start)
            chunk = fh.read(end - start)
            k = chunk.rfind(b"\n")
            if k >= 0:
                keep = start + k + 1
                break
            end = start
        else:
            keep = 0
        fh.truncate(keep)
        return size - keep


def read_done(path: Path, settings: dict[str, Any]) -> set[str]:
    """The sources already regenerated in `path` with these `settings`; RegenerateError for a line that
    is not a row of this stage, or a row made with other settings."""
    done: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise RegenerateError(f"{path}:{lineno}: not a JSON line ({e.msg}); this output is damaged",
                                      fix="delete that line, or start over with --overwrite") from None
            if not isinstance(row, dict) or not isinstance(row.get("source"), str) or "regenerate" not in row:
                raise RegenerateError(f"{path}:{lineno}: not a row written by regenerate (no 'source'/'regenerate' "
                                      f"keys); --output names another file",
                                      fix="give a new --output path (or --overwrite to replace this file)")
            theirs = row["regenerate"] if isinstance(row["regenerate"], dict) else {}
            diff = [k for k in SETTING_KEYS if theirs.get(k) != settings.get(k)]
            if diff:
                pairs = ", ".join(f"{k}: {theirs.get(k)!r} in the file, {settings.get(k)!r} now" for k in diff)
                raise RegenerateError(
                    f"{path}:{lineno}: --resume of an output written with other settings ({pairs})",
                    fix="run with the settings the file was written with, give a new --output, or start over "
                        "with --overwrite")
            done.add(row["source"])
    return done


def open_output(path: Path, resume: bool, overwrite: bool, settings: dict[str, Any]) -> set[str]:
    """Make `path` ready to append to; the sources already done (resume)."""
    if path.is_dir():
        raise RegenerateError(f"--output {path}: is a directory", fix="give a .jsonl file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RegenerateError(f"--output {path}: cannot create its directory ({e.strerror})") from None
    if not path.exists() or path.stat().st_size == 0 or overwrite:
        if overwrite and path.exists():
            path.unlink()
        path.touch()
        return set()
    if not resume:
        raise RegenerateError(f"--output {path}: already exists and holds rows",
                              fix="pass --resume to continue it, --overwrite to start over, or another --output")
    repair_tail(path)
    return read_done(path, settings)


def append_row(path: Path, row: dict) -> None:
    """One row, in one write on an O_APPEND descriptor, flushed to the OS (a kill loses nothing written)."""
    data = (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)
