"""The loss-mask view: a prepared row's tokens with the trained ones (loss_mask = 1) marked.

`speculators-tui data show DATA_DIR [--row N]` prints it (highlighted on a terminal, between
`⟦` and `⟧` otherwise) with the share of trained tokens; the app's data screen shows the same
`RowView`. The prepared dataset is read with pyarrow alone (the `datasets` directory's Arrow
stream shards, in state.json's order) and the tokens are decoded with the `tokenizers` library
from the tokenizer recorded in prepare_manifest.json: neither torch nor transformers is imported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from speculators_core.errors import SpeculatorsError

OPEN, CLOSE = "⟦", "⟧"


class MaskViewError(SpeculatorsError, ValueError):
    pass


@dataclass
class RowView:
    row: int
    rows: int
    input_ids: list[int]
    loss_mask: list[int]
    #: (text, trained) per token, decoded one by one
    tokens: list[tuple[str, bool]]
    tokenizer: str
    #: consecutive tokens of the same kind decoded together (characters split across tokens stay whole)
    spans: Optional[list[tuple[str, bool]]] = None

    @property
    def trained(self) -> int:
        return sum(1 for m in self.loss_mask if m)

    @property
    def share(self) -> float:
        return self.trained / len(self.loss_mask) if self.loss_mask else 0.0

    def segments(self) -> list[tuple[str, bool]]:
        """Consecutive tokens of the same kind joined: (text, trained)."""
        if self.spans is not None:
            return self.spans
        out: list[tuple[str, bool]] = []
        for text, trained in self.tokens:
            if out and out[-1][1] == trained:
                out[-1] = (out[-1][0] + text, trained)
            else:
                out.append((text, trained))
        return out

    def summary(self) -> str:
        return (f"row {self.row} of {self.rows}: {len(self.input_ids)} tokens, {self.trained} trained "
                f"({100 * self.share:.1f}%)")

    def plain(self) -> str:
        """The row's text with each trained span between ⟦ and ⟧ (for logs, pipes, tests)."""
        return "".join(f"{OPEN}{t}{CLOSE}" if trained else t for t, trained in self.segments())


def _shards(data_dir: Path) -> list[Path]:
    try:
        state = json.loads((data_dir / "state.json").read_text(encoding="utf-8"))
        files = [data_dir / f["filename"] for f in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError):
        files = sorted(data_dir.glob("data-*.arrow"))
    if not files:
        raise MaskViewError(f"{data_dir}: no prepared dataset here (no state.json listing data-*.arrow files)",
                            fix="give the data.output directory of a prepared run "
                                "(python -m speculators_core.prepare writes it)")
    return files


def read_row(data_dir: Path, row: int) -> tuple[list[int], list[int], int]:
    """(input_ids, loss_mask, number of rows) of row `row` (0-based; negative counts from the end)."""
    import pyarrow as pa

    tables = []
    for f in _shards(Path(data_dir)):
        try:
            with pa.memory_map(str(f)) as src:
                tables.append(pa.ipc.open_stream(src).read_all())
        except (OSError, pa.ArrowInvalid) as exc:
            raise MaskViewError(f"{f}: not a readable Arrow file ({exc})",
                                fix="prepare the data again (python -m speculators_core.prepare)") from None
    total = sum(t.num_rows for t in tables)
    if total == 0:
        raise MaskViewError(f"{data_dir}: the prepared dataset has no rows", fix="check data.sources and prepare again")
    if not -total <= row < total:
        raise MaskViewError(f"--row {row}: the dataset has {total} rows (0..{total - 1})",
                            fix=f"give a row between 0 and {total - 1}")
    row %= total
    for t in tables:
        if row < t.num_rows:
            names = t.column_names
            if "input_ids" not in names or "loss_mask" not in names:
                raise MaskViewError(f"{data_dir}: rows have no input_ids/loss_mask columns (columns: {names})",
                                    fix="give a directory written by speculators_core.prepare")
            ids = t.column("input_ids")[row].as_py()
            mask = t.column("loss_mask")[row].as_py()
            return [int(x) for x in ids], [int(x) for x in mask], total
        row -= t.num_rows
    raise AssertionError("unreachable")  # pragma: no cover


def tokenizer_for(data_dir: Path, model: Optional[str] = None):
    """(tokenizers.Tokenizer, where) from `model` or the model recorded in prepare_manifest.json."""
    from tokenizers import Tokenizer

    from speculators_core.data.manifest import read_manifest, tokenizer_dir

    if model is None:
        manifest = read_manifest(data_dir) or {}
        model = (manifest.get("inputs") or {}).get("model")
    if not model:
        raise MaskViewError(f"{data_dir}: prepare_manifest.json names no model, so the tokens cannot be decoded",
                            fix="pass --model with the target (a directory or a cached hub id)")
    d = tokenizer_dir(str(model))
    if d is None or not (d / "tokenizer.json").is_file():
        raise MaskViewError(f"the tokenizer of {model} is not on this machine (no tokenizer.json)",
                            fix="pass --model with a local directory holding the target's tokenizer.json")
    return Tokenizer.from_file(str(d / "tokenizer.json")), str(model)


def row_view(data_dir: Path, row: int = 0, model: Optional[str] = None) -> RowView:
    data_dir = Path(data_dir)
    ids, mask, total = read_row(data_dir, row)
    tok, where = tokenizer_for(data_dir, model)
    if len(mask) != len(ids):
        raise MaskViewError(f"row {row}: {len(ids)} input_ids but {len(mask)} loss_mask values",
                            fix="the dataset is damaged: prepare it again")
    texts = [tok.decode([i], skip_special_tokens=False) for i in ids]
    spans: list[tuple[str, bool]] = []
    start = 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or bool(mask[i]) != bool(mask[start]):
            spans.append((tok.decode(ids[start:i], skip_special_tokens=False), bool(mask[start])))
            start = i
    return RowView(row=row % total, rows=total, input_ids=ids, loss_mask=mask,
                   tokens=[(t, bool(m)) for t, m in zip(texts, mask)], tokenizer=where, spans=spans)
