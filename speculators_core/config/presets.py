"""Built-in presets (shipped in the package) and user presets (in the XDG config dir).

A user preset named like a built-in shadows it for `find_preset` (so `run NAME` runs the user's
file); both stay listed, the user's marked `shadows`. Only user presets can be renamed or deleted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from speculators_core.config.schema import RunConfig
from speculators_core.config.toml_io import load, save
from speculators_core.paths import BUILTIN_PRESETS_DIR, user_presets_dir


class PresetError(ValueError):
    """A preset operation that is refused (a built-in, a bad or taken name); the message says why."""


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path
    builtin: bool

    @property
    def shadows(self) -> bool:
        """A user preset named like a built-in: `find_preset(name)` finds this one, not the built-in."""
        return not self.builtin and (BUILTIN_PRESETS_DIR / f"{self.name}.toml").exists()

    def _require_user(self, verb: str) -> None:
        if self.builtin:
            raise PresetError(f"{self.name!r} is a built-in preset (shipped with speculators-tui): it cannot be "
                              f"{verb}; save a copy under another name and change that")
        if self.path.resolve().parent != user_presets_dir().resolve():
            raise PresetError(f"{self.path} is not a user preset (those live in {user_presets_dir()})")

    def delete(self) -> None:
        self._require_user("deleted")
        self.path.unlink()

    def rename_problem(self, new_name: str) -> Optional[str]:
        """Why this preset cannot be renamed to `new_name` (for a form to show), or None."""
        try:
            self._require_user("renamed")
            check_new_name(new_name)
        except PresetError as exc:
            return str(exc)
        return None

    def rename(self, new_name: str) -> "Preset":
        self._require_user("renamed")
        check_new_name(new_name)
        target = user_presets_dir() / f"{new_name}.toml"
        self.path.rename(target)
        return Preset(new_name, target, builtin=False)

    def load(self) -> RunConfig:
        return load(self.path)

    def description(self) -> str:
        """The preset's first comment line."""
        try:
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.startswith("#"):
                    return line.lstrip("# ").strip()
                if line.strip():
                    break
        except OSError:
            pass
        return ""


def list_presets() -> list[Preset]:
    """User presets first (one named like a built-in shadows it: `Preset.shadows`), then every
    built-in, each sorted: a shadowed built-in stays listed."""
    found: list[Preset] = []
    udir = user_presets_dir()
    if udir.is_dir():
        found += [Preset(p.stem, p, builtin=False) for p in sorted(udir.glob("*.toml"))]
    found += [Preset(p.stem, p, builtin=True) for p in sorted(BUILTIN_PRESETS_DIR.glob("*.toml"))]
    return found


def check_name(name: str) -> None:
    """Raise PresetError unless `name` can be a preset file's name."""
    if (not name or "/" in name or name.startswith(".")
            or not name.replace("-", "").replace("_", "").replace(".", "").isalnum()):
        raise PresetError(f"{name!r} is not a usable preset name: use letters, digits, '-', '_' and '.'")


def check_new_name(name: str) -> None:
    """A name for a new user preset: usable, no built-in's and no other user preset's."""
    check_name(name)
    if (BUILTIN_PRESETS_DIR / f"{name}.toml").exists():
        raise PresetError(f"{name!r} is a built-in preset's name: a user preset of that name would shadow it "
                          f"(`run {name}` would run yours); pick another name")
    if (user_presets_dir() / f"{name}.toml").exists():
        raise PresetError(f"you already have a preset named {name!r}")


def find_preset(name_or_path: str) -> Preset:
    """A preset by name, or a TOML file path. Raises FileNotFoundError naming the known presets."""
    p = Path(os.path.expanduser(name_or_path))
    if p.suffix == ".toml" and p.exists():
        return Preset(p.stem, p, builtin=p.resolve().parent == BUILTIN_PRESETS_DIR)
    if p.is_dir() and (p / "run.toml").exists():  # a run directory
        return Preset(p.name, p / "run.toml", builtin=False)
    name = p.stem if p.suffix == ".toml" else name_or_path
    for preset in list_presets():
        if preset.name == name:
            return preset
    known = ", ".join(dict.fromkeys(pr.name for pr in list_presets()))
    raise FileNotFoundError(f"no preset or config file {name_or_path!r}; known presets: {known}")


def save_user_preset(cfg: RunConfig, name: str) -> Path:
    """Write a user preset (replacing one of that name). A built-in's name makes it shadow the built-in:
    callers that ask the user first check `check_new_name`/`Preset.shadows`."""
    if not name or "/" in name or name.startswith("."):
        raise PresetError(f"{name!r} is not a usable preset name")
    return save(cfg, user_presets_dir() / f"{name}.toml")
