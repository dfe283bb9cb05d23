"""Edit one dotted field of a RunConfig from text, the way a form does (no textual imports).

`parse_text` turns what a user typed into the field's Python value or raises ValueError with a
message fit to show next to the field; `format_value` is its inverse; `apply_values` sets dotted
keys through the engine's own coercion (`config.from_dict`) so types are checked one way only.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from typing import Any, Literal, Optional, Union, get_args, get_origin

from speculators_core import ConfigError, Problem, RunConfig, config_from_dict, config_to_dict

_HINTS: dict[type, dict[str, Any]] = {}


def field_type(dotted: str) -> Any:
    section, key = dotted.split(".", 1)
    cls = {f.name: f.type for f in dataclasses.fields(RunConfig)}[section]
    if isinstance(cls, str):
        cls = typing.get_type_hints(RunConfig)[section]
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls][key]


def get_value(cfg: RunConfig, dotted: str) -> Any:
    section, key = dotted.split(".", 1)
    return getattr(getattr(cfg, section), key)


def set_value(cfg: RunConfig, dotted: str, value: Any) -> None:
    section, key = dotted.split(".", 1)
    setattr(getattr(cfg, section), key, value)


def _optional(tp: Any) -> tuple[Any, bool]:
    if get_origin(tp) is Union and type(None) in get_args(tp):
        inner = [a for a in get_args(tp) if a is not type(None)]
        return inner[0], True
    return tp, False


def choices(dotted: str) -> Optional[tuple[str, ...]]:
    tp, _ = _optional(field_type(dotted))
    if get_origin(tp) is Literal:
        return tuple(get_args(tp))
    return None


def _scalar(text: str, tp: Any) -> Any:
    if tp is int:
        try:
            return int(text.replace("_", ""))
        except ValueError:
            raise ValueError(f"expected a whole number, got {text!r}") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number (e.g. 3e-4), got {text!r}") from None
    if tp is bool:
        low = text.lower()
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if get_origin(tp) is Literal:
        opts = get_args(tp)
        if text not in opts:
            raise ValueError(f"expected one of {', '.join(opts)}, got {text!r}")
        return text
    return text


_RANGE = re.compile(r"^(-?\d+)\s*-\s*(-?\d+)$")


def parse_int_list(text: str) -> list[int]:
    """Whole numbers as people write them: `0,1,2,3`, `0 1 2 3`, `[0, 1, 2, 3]` (TOML/Python list
    brackets) and ranges `0-3` (both ends included), mixed freely (`[0-2, 5]`)."""
    body = text.strip()
    if body[:1] in "[(" and body[-1:] in "])":
        body = body[1:-1]
    elif body[:1] in "[(" or body[-1:] in "])":
        raise ValueError(f"unbalanced brackets in {text.strip()!r}; write e.g. [0, 1, 2, 3] or 0-3")
    out: list[int] = []
    for part in [p.strip() for p in body.replace(";", ",").split(",") if p.strip()]:
        # "0 - 3" is one range; "0 1 2" are three numbers.
        pieces = [part] if _RANGE.match(part) else part.split()
        for piece in pieces:
            m = _RANGE.match(piece)
            if m:
                lo, hi = int(m.group(1)), int(m.group(2))
                if hi < lo:
                    raise ValueError(f"the range {piece!r} runs backwards; write {hi}-{lo}")
                if hi - lo > 4096:
                    raise ValueError(f"the range {piece!r} is too long")
                out.extend(range(lo, hi + 1))
            else:
                try:
                    out.append(int(piece.replace("_", "")))
                except ValueError:
                    raise ValueError(f"expected whole numbers like 0, 1, 2 or a range like 0-3, got {piece!r}") from None
    return out


def parse_text(dotted: str, text: str) -> Any:
    """The value of `dotted` for the typed `text`; ValueError says what is expected."""
    tp, optional = _optional(field_type(dotted))
    text = text.strip()
    if optional and text == "":
        return None
    origin = get_origin(tp)
    if origin is list:
        (item,) = get_args(tp)
        if item is int:
            return parse_int_list(text)
        parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
        return [_scalar(p, item) for p in parts]
    if origin is dict:
        out: dict[str, str] = {}
        for part in [p.strip() for p in text.split(",") if p.strip()]:
            if "=" not in part:
                raise ValueError(f"expected KEY=VALUE pairs separated by commas, got {part!r}")
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
        return out
    if tp is str:
        return text
    if text == "":
        raise ValueError("required")
    return _scalar(text, tp)


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def apply_values(cfg: RunConfig, values: dict[str, Any]) -> RunConfig:
    """A copy of `cfg` with dotted keys set (e.g. a bottleneck warning's `fix_config`).

    Unknown keys or wrong types raise ConfigError naming the key, exactly as a TOML file would.
    """
    data = config_to_dict(cfg, include_defaults=True)
    for dotted, value in values.items():
        if "." not in dotted:
            raise ConfigError(f"{dotted}: expected a dotted key like 'training.gpus'")
        section, key = dotted.split(".", 1)
        data.setdefault(section, {})[key] = value
    return config_from_dict(data)


def problems_for(problems: list[Problem], dotted: str) -> list[Problem]:
    """Problems whose field is `dotted` or one of its items (`data.sources[1]`)."""
    return [p for p in problems if p.field == dotted or p.field.startswith(dotted + "[")]


#: Defaults derived from another field: (derived key, source key, how it is derived from it).
DERIVED = (("training.checkpoint_dir", "data.output", lambda out: os.path.join(out, "checkpoints")),)


def follow_derived(cfg: RunConfig, dotted: str, old_value: Any) -> list[str]:
    """After `dotted` changed from `old_value`: update the fields derived from it that still hold
    the value derived from the old one (the user has not set them); the keys updated."""
    changed = []
    for derived, source, rule in DERIVED:
        if source != dotted or not isinstance(old_value, str):
            continue
        current = get_value(cfg, derived)
        if isinstance(current, str) and os.path.normpath(current) == os.path.normpath(rule(old_value)):
            new = rule(get_value(cfg, source))
            if new != current:
                set_value(cfg, derived, new)
                changed.append(derived)
    return changed
