"""The one error type of stage 1: its message names the file/line/field and says how to fix it."""

from __future__ import annotations

from speculators_core.errors import SpeculatorsError


class PrepareError(SpeculatorsError, RuntimeError):
    """Bad input or configuration for data preparation (the message is meant for the user)."""
