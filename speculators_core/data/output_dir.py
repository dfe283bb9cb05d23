"""The prepared dataset's own files in `<output>`, and replacing them without touching anything else.

`<data.output>` is often shared: checkpoints, the hidden-states cache (`<data.output>/hidden_states`)
and the server's scratch (`<data.output>/hs_scratch`) live there by default. A preparation owns only
the files a prepared dataset consists of (`OWN_FILES`, the `data-XXXXX-of-YYYYY.arrow` shards); an
`--overwrite` replaces those and nothing else.

Replacing:
- a new output (nothing there yet) is assembled in a temp sibling and renamed into place;
- an existing output (a directory, or a symlink to one, or a mount point) is never moved: the new
  files are assembled in a temp directory inside it (`.prepare-tmp-<pid>-*`, so on its own
  filesystem whatever `out`'s path looks like) and moved in one by one: a marker first (its rename
  also proves the others can work, before anything old is removed), then the manifest goes (from
  then on the output is not a complete preparation, so nothing trusts it), the new files move in,
  the manifest last, then the marker goes. A kill in between leaves the marker, and the next run
  finishes the job without asking for `--overwrite`. Entries others create in `out` meanwhile (a
  server's hs_scratch/) are never touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

from speculators_core.data.errors import PrepareError
from speculators_core.data.manifest import MANIFEST, fingerprint, is_complete, read_manifest
from speculators_core.procs import pid_alive

#: marker of a replacement in progress (its existence is what counts)
MARKER = ".prepare-replacing"
#: temp directories inside an existing output: `<TMP_PREFIX><pid>-<random>`
TMP_PREFIX = ".prepare-tmp-"
OWN_FILES = ("state.json", "dataset_info.json", "token_freq.pt", MANIFEST)
_SHARD = re.compile(r"data-\d{5}-of-\d{5}\.arrow")
#: Directories a run's own server creates in `<data.output>` before the first preparation (a run with
#: the regenerate stage starts its server before prepare): not someone else's data.
RUN_SCRATCH = ("hs_scratch",)


def is_own(name: str) -> bool:
    return name in OWN_FILES or name == MARKER or name.startswith(TMP_PREFIX) or bool(_SHARD.fullmatch(name))


def foreign_entries(out: Path) -> list[str]:
    """Names in `out` that are not the dataset's own files (directories end with '/')."""
    return sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir() if not is_own(p.name))


def _describe(names: list[str], limit: int = 8) -> str:
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" and {more} more" if more > 0 else "")


def remove_dead_writers_temps(out: Path) -> None:
    """Temp directories of killed writers of `out` (`.<name>.tmp-<pid>-*` beside it,
    `.prepare-tmp-<pid>-*` inside it) are removed; a live writer's are left alone."""
    temps = [(p, f".{out.name}.tmp-") for p in sorted(out.parent.glob(f".{out.name}.tmp-*"))]
    if out.is_dir():
        temps += [(p, TMP_PREFIX) for p in sorted(out.glob(TMP_PREFIX + "*"))]
    for p, prefix in temps:
        pid = p.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)) and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)


def recover(out: Path) -> None:
    """What killed writers of `out` left: their temp directories are removed; old outputs a
    whole-directory swap renamed aside (`.<name>.old-<pid>`) are put back when the new output never
    arrived, removed when it did."""
    remove_dead_writers_temps(out)
    prefix = f".{out.name}.old-"
    for p in sorted(out.parent.glob(prefix + "*")):
        pid = p.name[len(prefix):]
        if not pid.isdigit() or pid_alive(int(pid)) or not p.is_dir():
            continue
        if not out.exists() and not out.is_symlink():
            os.replace(p, out)
        else:
            shutil.rmtree(p, ignore_errors=True)


def check_output(opts: Any, inputs: dict[str, Any], log: Callable[[str], None]) -> bool:
    """True when `opts.output` already holds exactly this preparation. Raises when writing the
    dataset there would replace something it should not (another preparation without
    `--overwrite`, a directory holding no dataset, a file)."""
    out = Path(opts.output)
    if out.parent.is_dir():
        recover(out)
    if not out.exists():
        return False
    if not out.is_dir():
        raise PrepareError(f"--output {out}: is a file, not a directory; choose another --output")
    manifest = read_manifest(out)
    if manifest and is_complete(out, manifest) and manifest.get("fingerprint") == fingerprint(inputs):
        (out / MARKER).unlink(missing_ok=True)  # killed after the manifest went in: it had finished
        return True
    entries = list(out.iterdir())
    foreign = foreign_entries(out)
    kept = f" (kept, untouched: {_describe(foreign)})" if foreign else ""
    if (out / MARKER).exists():
        log(f"{out}: finishing an interrupted replacement of the dataset files{kept}")
        return False
    if opts.overwrite:
        log(f"--overwrite: replacing the dataset files in {out}{kept}")
        return False
    if manifest is None:
        if not entries or all(p.is_dir() and p.name in RUN_SCRATCH for p in entries):
            return False
        raise PrepareError(
            f"--output {out}: holds {_describe(foreign or sorted(p.name for p in entries))} but not a dataset "
            f"prepared by this tool; choose another --output, or pass --overwrite to write the dataset's "
            f"files there (only {', '.join(OWN_FILES)} and data-*.arrow; everything else is kept)"
        )
    old = manifest.get("inputs", {})
    diffs = [k for k in ("tokenizer", "data", "options") if old.get(k) != inputs.get(k)]
    raise PrepareError(
        f"--output {out}: already holds a dataset prepared from other inputs "
        f"(different {', '.join(diffs) or 'format'}); pass --overwrite to replace it (only the dataset's "
        f"own files are replaced{'; ' + kept.strip(' ()') if foreign else ''}), or choose another --output"
    )


def replace_own_files(tmp: Path, out: Path) -> None:
    """Move the complete dataset in `tmp` into `out` file by file, replacing the old dataset's own
    files and nothing else (see the module docstring for the order)."""
    new = sorted(p.name for p in tmp.iterdir())
    with open(tmp / MARKER, "w", encoding="utf-8") as fh:
        json.dump({"pid": os.getpid(), "files": new}, fh)
    os.replace(tmp / MARKER, out / MARKER)  # a rename that cannot work (EXDEV) fails here, nothing removed yet
    (out / MANIFEST).unlink(missing_ok=True)
    for name in new:
        if name != MANIFEST:
            os.replace(tmp / name, out / name)
    for p in out.iterdir():  # the old dataset's files the new one has not (another shard count)
        if is_own(p.name) and p.name not in new and p.name not in (MARKER, MANIFEST) and p.is_file():
            p.unlink()
    os.replace(tmp / MANIFEST, out / MANIFEST)
    (out / MARKER).unlink()
    tmp.rmdir()
