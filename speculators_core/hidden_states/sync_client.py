"""The trainer's view of the client: an asyncio event loop in a daemon thread, futures out."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Optional, Sequence

from speculators_core.hidden_states.client import HiddenStatesClient
from speculators_core.hidden_states.files import HiddenStates


class SyncHiddenStatesClient:
    def __init__(self, *args, **kwargs) -> None:
        """Same arguments as HiddenStatesClient."""
        self._client = HiddenStatesClient(*args, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="hidden-states-client", daemon=True)
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    @property
    def client(self) -> HiddenStatesClient:
        return self._client

    def submit(self, row_id, input_ids: Sequence[int], cache_dir: Optional[str] = None
               ) -> "concurrent.futures.Future[HiddenStates]":
        if self._closed:
            raise RuntimeError("SyncHiddenStatesClient is closed")
        return asyncio.run_coroutine_threadsafe(self._client.fetch(row_id, list(input_ids), cache_dir), self._loop)

    def fetch(self, row_id, input_ids: Sequence[int], cache_dir: Optional[str] = None) -> HiddenStates:
        return self.submit(row_id, input_ids, cache_dir).result()

    def stats(self, reset: bool = True) -> dict:
        return self._client.stats(reset)

    def endpoint_status(self) -> list[tuple[str, bool, str]]:
        return self._client.endpoint_status()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def _shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._client.aclose()

        try:
            asyncio.run_coroutine_threadsafe(_shutdown(), self._loop).result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()

    def __enter__(self) -> "SyncHiddenStatesClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
