"""What ships with the package: the embedded demo target `builtin:tiny-qwen3` and its chat data.

`ensure_model(spec)` is the one place a stage turns a model spec into a directory, building the
demo target first when the spec names it (`spec.py` describes it, `demo.py` builds it,
`assets/demo_chat.jsonl` is the bundled data).
"""

from __future__ import annotations

from pathlib import Path

from speculators_core.paths import is_builtin, resolve_model


def is_built(model_dir: Path) -> bool:
    """The demo target in `model_dir` is complete (its build wrote the marker file last)."""
    from speculators_core.builtin.demo import MARKER

    return (Path(model_dir) / MARKER).exists()


def ensure_model(spec: str) -> Path:
    """The directory (or hub id, as a Path) of model `spec`; a `builtin:` target is built first if needed.

    ValueError for an unknown `builtin:` name. Building imports torch and transformers; an already
    built target costs one stat.
    """
    path = Path(resolve_model(spec))
    if is_builtin(spec) and not is_built(path):
        from speculators_core.builtin import demo

        demo.build(path)
    return path
