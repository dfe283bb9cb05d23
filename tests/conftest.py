"""Shared fixtures: the tiny target model (built offline), isolated user dirs, free ports."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

# A suite started as a background job of a non-interactive shell (`cmd &`, nohup) inherits an
# *ignored* SIGINT, which exec passes on to every child: Python then installs no KeyboardInterrupt
# handler there, and the Ctrl-C tests could never interrupt anything. The default handler is reset
# to the default action by exec, so every child again reacts to Ctrl-C as it would in a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

pytest_plugins = ["tests.vllm_fixtures", "tests.onpolicy_fixtures"]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _isolated_user_dirs(tmp_path_factory):
    """Keep tests away from the user's config; share one built demo model across the session."""
    home = tmp_path_factory.mktemp("spec-home")
    os.environ["SPECULATORS_TUI_CONFIG"] = str(home / "config")
    # The run index (runs/index.py) goes to a temp XDG data dir, never the real home's; no bell or
    # desktop notification from a test (runs/alerts.py).
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    os.environ["SPECULATORS_TUI_NOTIFY"] = "off"
    # The demo model cache may be reused between local runs (it is deterministic) to save time.
    os.environ.setdefault("SPECULATORS_TUI_CACHE", str(REPO / ".pytest_cache" / "spec-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    yield


@pytest.fixture(scope="session")
def tiny_target() -> Path:
    """Directory of the built `builtin:tiny-qwen3` target (random Qwen3, BPE tokenizer, ChatML)."""
    from speculators_core.builtin import ensure_model

    return ensure_model("builtin:tiny-qwen3")


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (tests.vllm_fixtures.free_port; imported lazily so that pytest
    loads that plugin module itself and rewrites its asserts)."""
    from tests.vllm_fixtures import free_port as _free_port

    return _free_port()


@pytest.fixture
def port() -> int:
    return free_port()


PYTHON = sys.executable


@pytest.fixture(scope="session")
def demo_prepared(tiny_target, tmp_path_factory) -> Path:
    """The bundled demo chat data prepared for the tiny target (seq_length 1024): a `datasets`
    directory with input_ids/loss_mask/seq_len, token_freq.pt and prepare_manifest.json."""
    from speculators_core.paths import resolve_data_source
    from speculators_core.prepare import PrepareOptions, prepare_dataset

    out = tmp_path_factory.mktemp("demo-prepared") / "data"
    prepare_dataset(PrepareOptions(model=str(tiny_target), data=[resolve_data_source("builtin:demo-chat")],
                                   output=str(out), seq_length=1024, num_workers=1))
    return out
