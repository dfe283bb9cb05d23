"""The evaluate tests share the session's on-policy drafter and vLLM server (tests/onpolicy_fixtures.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The hf engine's many tiny forwards run fastest on one thread (and do not fight the other
    processes of a loaded test machine); restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
