"""Atomic file and directory writes: a reader never sees half a file, a crash never loses the old one."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, NamedTuple


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any, sort_keys: bool = True) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n")


def replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Move a completely written `tmp_dir` to `final_dir`, replacing an existing one.

    The old directory is renamed aside first and removed only after the new one is in place, so a
    kill at any point leaves either the old or the new directory complete under some name.
    """
    tmp_dir, final_dir = Path(tmp_dir), Path(final_dir)
    old = None
    if final_dir.exists() or final_dir.is_symlink():
        old = final_dir.with_name(f".{final_dir.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final_dir, old)
    os.replace(tmp_dir, final_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON line (readers tail these files).

    The line goes out in ONE `os.write` on an `O_APPEND` descriptor, so concurrent appenders never
    interleave and a record is never split across calls. If the file does not end in a newline (a
    line torn by a crash or a full disk), the record starts with one: the torn line stays a line of
    its own that readers skip and count, instead of swallowing this record too.
    """
    data = (json.dumps(record, separators=(",", ":"), default=_json_default) + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        os.write(fd, data)
    finally:
        os.close(fd)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class JsonlRead(NamedTuple):
    records: list
    offset: int   # where the next read starts
    skipped: int  # complete lines that were not a JSON object (torn by a crash, a full disk)


def read_jsonl_counted(path: Path, start: int = 0) -> JsonlRead:
    """Complete JSON lines of `path` from byte offset `start`, and how many lines were unreadable.

    A trailing partial line (a writer mid-append) is left for the next call and not counted.
    """
    records: list[dict] = []
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read()
    except FileNotFoundError:
        return JsonlRead(records, start, 0)
    end = data.rfind(b"\n")
    if end < 0:
        return JsonlRead(records, start, 0)
    skipped = 0
    for raw in data[: end + 1].splitlines():
        raw = raw.strip()
        if not raw:
            continue
        try:
            rec = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            rec = None
        if isinstance(rec, dict):
            records.append(rec)
        else:
            skipped += 1
    return JsonlRead(records, start + end + 1, skipped)


def read_jsonl(path: Path, start: int = 0) -> tuple[list[dict], int]:
    """Complete JSON lines of `path` from byte offset `start`; returns (records, next offset).

    Unreadable lines are skipped; `read_jsonl_counted` also says how many.
    """
    got = read_jsonl_counted(path, start)
    return got.records, got.offset
