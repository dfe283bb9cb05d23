"""Hidden-states client: fetch a sample's target hidden states from a vLLM / `hf` extraction server.

API (docs/interfaces.md, "Hidden-states client"): HiddenStates, HiddenStatesError, ServerUnavailable,
AuthenticationFailed (HTTP 401/403: set the key variable),
cache_path, load_cached, HiddenStatesClient (asyncio), SyncHiddenStatesClient (futures).
torch and httpx are imported lazily, when a client is used.
"""

from speculators_core.hidden_states.client import HiddenStatesClient, normalize_endpoint
from speculators_core.hidden_states.errors import (
    AuthenticationFailed,
    HiddenStatesError,
    ServerUnavailable,
    UnsafePath,
)
from speculators_core.hidden_states.files import HiddenStates, cache_path, load_cached, load_file_checked
from speculators_core.hidden_states.sync_client import SyncHiddenStatesClient

__all__ = [
    "AuthenticationFailed", "HiddenStates", "HiddenStatesError", "ServerUnavailable", "UnsafePath", "cache_path", "load_cached",
    "load_file_checked", "HiddenStatesClient", "SyncHiddenStatesClient", "normalize_endpoint",
]
