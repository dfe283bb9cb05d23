"""speculators-tui: the Textual app (a thin client of speculators_core)."""

__version__ = "0.1.0"
