"""Where chat rows come from: the built-in HF datasets (`sharegpt`, `ultrachat`), local `.json` /
`.jsonl` files, or directories of them.

Every source is a random-access table of rows. A row is fetched as `(origin, payload)` where
`origin` names the file and line (``data.jsonl:17``) or the dataset and index, and `payload` is
either the raw JSON text of a JSONL line (parsed later, in a worker) or an already decoded object.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from speculators_core.data.errors import PrepareError
from speculators_core.paths import is_builtin, resolve_data_source

#: Built-in remote sources: name -> (HF dataset id, split). See the format spec, section 1.
HF_SOURCES = {
    "sharegpt": ("Aeala/ShareGPT_Vicuna_unfiltered", "train"),
    "ultrachat": ("HuggingFaceH4/ultrachat_200k", "train_sft"),
}
LOCAL_SUFFIXES = (".jsonl", ".json")


@dataclass
class LocalFile:
    """One JSON/JSONL file: the lines (JSONL) or decoded items (JSON array) in file order."""

    path: Path
    payloads: list[Any]  # str (a JSONL line, parsed lazily) or a decoded object
    origins: list[str]

    def __len__(self) -> int:
        return len(self.payloads)

    def fetch(self, i: int) -> tuple[str, Any]:
        return self.origins[i], self.payloads[i]


class HFSource:
    """A split of a Hugging Face dataset (memory-mapped arrow, rows decoded on fetch)."""

    def __init__(self, name: str, dataset_id: str, split: str, dataset) -> None:
        self.name, self.dataset_id, self.split, self.dataset = name, dataset_id, split, dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def fetch(self, i: int) -> tuple[str, Any]:
        return f"{self.dataset_id}[{self.split}] row {i}", self.dataset[int(i)]


class RowTable:
    """Several sources seen as one table (global row index = concatenation order)."""

    def __init__(self, sources: Sequence[LocalFile | HFSource], skipped: dict[str, str] | None = None) -> None:
        self.sources = list(sources)
        #: files and directories of `--data` directories that were not read: path -> why
        self.skipped: dict[str, str] = dict(skipped or {})
        self._starts: list[int] = []
        n = 0
        for s in self.sources:
            self._starts.append(n)
            n += len(s)
        self._len = n

    def __len__(self) -> int:
        return self._len

    def fetch(self, index: int) -> tuple[str, Any]:
        import bisect

        k = bisect.bisect_right(self._starts, index) - 1
        return self.sources[k].fetch(index - self._starts[k])


def expand_spec(spec: str, skipped: dict[str, str] | None = None) -> list[str] | tuple[str, str]:
    """A `--data` value -> the local files it names, or an (HF id, split) pair.

    `skipped` (optional) receives the entries of a data directory that are not read, with why.
    Raises PrepareError for a path that does not exist or holds no JSON/JSONL files.
    """
    if spec in HF_SOURCES:
        return HF_SOURCES[spec]
    if is_builtin(spec):
        try:
            spec = resolve_data_source(spec)
        except ValueError as exc:
            raise PrepareError(f"--data {spec}: {exc}") from None
    path = Path(os.path.expanduser(spec))
    if path.is_dir():
        files, why = scan_dir(path)
        if skipped is not None:
            skipped.update(why)
        if not files:
            listed = "".join(f"; skipped {p} ({w})" for p, w in list(why.items())[:5])
            raise PrepareError(f"--data {spec}: the directory holds no .json or .jsonl files{listed}")
        return files
    if path.is_file():
        if not is_chat_name(path.name):
            raise PrepareError(
                f"--data {spec}: unsupported file type; give a .json or .jsonl file (one conversation per line)"
            )
        return [str(path)]
    raise PrepareError(
        f"--data {spec}: no such file or directory; use sharegpt, ultrachat, builtin:demo-chat, "
        f"or a .json/.jsonl file or a directory of them"
    )


def is_chat_name(name: str) -> bool:
    """A .json/.jsonl file name, in any letter case (exports from Windows tools write .JSONL)."""
    return name.lower().endswith(LOCAL_SUFFIXES)


def scan_dir(root: Path) -> tuple[list[str], dict[str, str]]:
    """The JSON/JSONL files under a data directory (sorted), and what was not read, with why:
    hidden files and directories, other file types, and saved `datasets` directories (e.g. a
    prepared output kept next to its sources: its dataset_info.json is not chat data)."""
    files: list[str] = []
    skipped: dict[str, str] = {}
    for d, dirs, names in os.walk(root):
        here = Path(d)
        if (here / "dataset_info.json").is_file() or (here / "prepare_manifest.json").is_file():
            skipped[str(here)] = "a saved or prepared datasets directory, not chat data"
            dirs[:] = []
            continue
        for name in sorted(dirs):
            if name.startswith("."):
                skipped[str(here / name)] = "hidden directory"
        dirs[:] = sorted(n for n in dirs if not n.startswith("."))
        for name in sorted(names):
            p = here / name
            if name.startswith("."):
                skipped[str(p)] = "hidden file"
            elif not is_chat_name(name):
                skipped[str(p)] = f"not a .json/.jsonl file ({Path(name).suffix or 'no extension'})"
            elif p.is_file():
                files.append(str(p))
    return sorted(files), skipped


def read_local(path: str) -> LocalFile:
    """Read a JSONL file (lines kept as text) or a JSON file (an array of rows, or one row)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")  # a UTF-8 byte-order mark (Windows editors) is not data
    except UnicodeDecodeError as exc:
        raise PrepareError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise PrepareError(f"{p}: cannot read ({exc.strerror})") from None
    if p.name.lower().endswith(".json"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            if text.count("\n") > 1 and text.lstrip().startswith("{") and exc.msg == "Extra data":
                return _jsonl(p, text)  # a JSON-lines file named .json
            raise PrepareError(f"{p}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from None
        if isinstance(obj, list):
            return LocalFile(p, obj, [f"{p} item {i}" for i in range(len(obj))])
        if isinstance(obj, dict):
            return LocalFile(p, [obj], [str(p)])
        raise PrepareError(f"{p}: expected a JSON array of conversations or one conversation object, "
                           f"got {type(obj).__name__}")
    return _jsonl(p, text)


def _jsonl(p: Path, text: str) -> LocalFile:
    payloads: list[Any] = []
    origins: list[str] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if line.strip():
            payloads.append(line)
            origins.append(f"{p}:{lineno}")
    return LocalFile(p, payloads, origins)


def load_hf(name: str, dataset_id: str, split: str) -> HFSource:
    """Load a built-in HF dataset through `datasets` (from the local HF cache when offline)."""
    import datasets

    try:
        ds = datasets.load_dataset(dataset_id, split=split)
    except Exception as exc:  # datasets raises many types (ConnectionError, FileNotFoundError, ...)
        raise PrepareError(
            f"--data {name}: cannot load the HF dataset {dataset_id} (split {split}): "
            f"{type(exc).__name__}: {exc}. Fix: download it on a machine with internet "
            f"(`huggingface-cli download --repo-type dataset {dataset_id}`) into the HF cache, "
            f"or export the rows to a local .jsonl and pass that path"
        ) from None
    return HFSource(name, dataset_id, split, ds)


def open_sources(specs: Sequence[str]) -> RowTable:
    sources: list[LocalFile | HFSource] = []
    skipped: dict[str, str] = {}
    for spec in specs:
        target = expand_spec(spec, skipped)
        if isinstance(target, tuple):
            sources.append(load_hf(spec, *target))
        else:
            sources.extend(read_local(f) for f in target)
    return RowTable(sources, skipped)
