"""Built-in presets (shipped in the package) and user presets (in the XDG config dir)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from speculators_core.config.schema import RunConfig
from speculators_core.config.toml_io import load, save
from speculators_core.paths import BUILTIN_PRESETS_DIR, user_presets_dir


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path
    builtin: bool

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
    """User presets first (they shadow built-ins of the same name), then built-ins, each sorted."""
    found: dict[str, Preset] = {}
    udir = user_presets_dir()
    if udir.is_dir():
        for p in sorted(udir.glob("*.toml")):
            found[p.stem] = Preset(p.stem, p, builtin=False)
    for p in sorted(BUILTIN_PRESETS_DIR.glob("*.toml")):
        found.setdefault(p.stem, Preset(p.stem, p, builtin=True))
    return list(found.values())


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
    known = ", ".join(pr.name for pr in list_presets())
    raise FileNotFoundError(f"no preset or config file {name_or_path!r}; known presets: {known}")


def save_user_preset(cfg: RunConfig, name: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"{name!r} is not a usable preset name")
    return save(cfg, user_presets_dir() / f"{name}.toml")
