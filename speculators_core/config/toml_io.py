"""A `RunConfig` to and from TOML: unknown keys and wrong types raise `ConfigError` naming the key,
the file and the line."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
import types
from pathlib import Path
from typing import Any, Literal, Optional, Union, get_args, get_origin

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

import tomli_w

from speculators_core.config.schema import SECTIONS, ConfigError, RunConfig, _hints, section_class


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return _type_name(args[0]) if len(args) == 1 else " or ".join(_type_name(a) for a in args)
    if origin is list:
        item = get_args(tp)[0]
        return "a list of " + {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}.get(
            item, _type_name(item))
    if origin is dict:
        return "a table of strings"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return `value` as type `tp`, or raise ConfigError naming `key`."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{key}: {value!r} is not allowed; use {_type_name(tp)}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
        (item_tp,) = get_args(tp)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__}")
        return {str(k): _coerce(v, str, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: {value!r} is not a finite number; use an ordinary number, e.g. the default")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover


def from_dict(data: dict[str, Any]) -> RunConfig:
    """Build a RunConfig from a (TOML) dict; unknown sections/keys and wrong types raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError("configuration must be a table")
    kwargs: dict[str, Any] = {}
    for sec_name, sec_value in data.items():
        if sec_name not in SECTIONS:
            raise ConfigError(
                f"[{sec_name}]: unknown section; the sections are " + ", ".join(f"[{s}]" for s in SECTIONS)
            )
        if not isinstance(sec_value, dict):
            raise ConfigError(f"{sec_name}: expected a [{sec_name}] table, got {sec_value!r}")
        cls = section_class(sec_name)
        hints = _hints(cls)
        values: dict[str, Any] = {}
        for key, value in sec_value.items():
            if key not in hints:
                close = _closest(key, list(hints))
                hint = f"; did you mean {close!r}?" if close else f"; known keys: {', '.join(hints)}"
                raise ConfigError(f"{sec_name}.{key}: unknown key{hint}")
            values[key] = _coerce(value, hints[key], f"{sec_name}.{key}")
        kwargs[sec_name] = cls(**values)
    return RunConfig(**kwargs)


def _closest(key: str, options: list[str]) -> Optional[str]:
    import difflib

    found = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
    return found[0] if found else None


def to_dict(cfg: RunConfig, include_defaults: bool = False) -> dict[str, Any]:
    """The TOML-ready dict of `cfg`. Values equal to their defaults are left out unless asked for."""
    out: dict[str, Any] = {}
    for sec in dataclasses.fields(cfg):
        obj = getattr(cfg, sec.name)
        default = type(obj)()
        table: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if not include_defaults and value == getattr(default, f.name):
                continue
            if value is None:  # TOML has no null: absent means None
                continue
            table[f.name] = value
        if table or include_defaults:
            out[sec.name] = table
    return out


def loads(text: str, source: str = "<string>") -> RunConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        cfg = from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{locate(source, text, str(exc).split(':', 1)[0])}: {exc}") from None
    cfg._origin = (source, text)  # validate() names file:line of each problem's key
    return cfg


def locate(source: str, text: str, dotted: str) -> str:
    """`source:line` of a dotted key (or of its section when the key is not in the file), else `source`."""
    line = _find_line(text, dotted)
    if line is None and "." in dotted:
        line = _find_line(text, dotted.split(".", 1)[0])
    return f"{source}:{line}" if line else source


def load(path: Union[str, os.PathLike]) -> RunConfig:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the configuration: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{p}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}); "
                          f"TOML files must be UTF-8: save the file as UTF-8") from None
    return loads(text, _display(p))


def _display(p: Path) -> str:
    """How messages name a config file: a built-in preset by its path in the package (the same on
    every machine), any other file as given."""
    from speculators_core.paths import PACKAGE_DIR

    try:
        return str(p.resolve().relative_to(PACKAGE_DIR.parent))
    except ValueError:
        return str(p)


def dumps(cfg: RunConfig, include_defaults: bool = False) -> str:
    return tomli_w.dumps(to_dict(cfg, include_defaults=include_defaults))


def save(cfg: RunConfig, path: Union[str, os.PathLike], include_defaults: bool = False) -> Path:
    """Write `cfg` as TOML atomically (temp file + rename)."""
    from speculators_core.fsutil import atomic_write_text

    return atomic_write_text(Path(path), dumps(cfg, include_defaults=include_defaults))


def _find_line(text: str, dotted: str) -> Optional[int]:
    """Line number (1-based) of `section.key` in TOML text, or of `[section]` for a section error."""
    dotted = re.sub(r"\[\d+\]$", "", dotted.strip()).strip("[]")
    parts = dotted.split(".")
    section, key = parts[0], (parts[1] if len(parts) > 1 else None)
    current = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        m = re.match(r"^\[([^\[\]]+)\]", line)
        if m:
            current = m.group(1).strip()
            if (key is None and current == section) or (key is not None and current == f"{section}.{key}"):
                return lineno
            continue
        m = re.match(r"^([A-Za-z0-9_\-\.\"]+)\s*=", line)
        if not m or key is None:
            continue
        name = m.group(1).strip('"')
        if current == section and name == key:
            return lineno
        if current is None and name == f"{section}.{key}":
            return lineno
    return None

