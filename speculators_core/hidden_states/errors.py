"""Errors of the hidden-states client."""

from __future__ import annotations

from speculators_core.errors import SpeculatorsError


class HiddenStatesError(SpeculatorsError, RuntimeError):
    """A sample whose hidden states cannot be obtained (bad ids, NaN, too long, refused path...)."""


class ServerUnavailable(HiddenStatesError):
    """Every hidden-states server has been unreachable for longer than the grace period."""


class UnsafePath(HiddenStatesError):
    """The server returned a path outside the configured storage directory (nothing was touched)."""


class AuthenticationFailed(HiddenStatesError):
    """The server refused the API key (HTTP 401/403): not retried; the fix is the key variable."""
