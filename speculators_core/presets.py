"""Old path of `speculators_core.config.presets` (kept while run-side modules still import it)."""

from speculators_core.config.presets import Preset, find_preset, list_presets, save_user_preset  # noqa: F401
