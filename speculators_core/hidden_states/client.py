"""The asynchronous hidden-states client (asyncio + httpx).

One `fetch` = one `POST /v1/completions` with the sample's token ids (max_tokens 1,
return_token_ids), then the file the server names in `kv_transfer_params.hidden_states_path`:
path checked against the storage directory, `.lock` waited on, loaded and checked, then deleted
(online) or moved into the cache as `hs_<row>.safetensors` (hybrid/offline).

Bounded: at most `max_in_flight` HTTP requests and `max_files_on_disk` server files at once.
Robust: connection errors, timeouts and 5xx are retried with backoff on the least busy endpoint
that is up; a sample whose file the server never wrote (a server killed after it answered) is asked
for again; a request fails with `ServerUnavailable` once every endpoint has been unreachable for
longer than `grace_period` seconds.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

from speculators_core.hidden_states.errors import AuthenticationFailed, HiddenStatesError, ServerUnavailable, UnsafePath
from speculators_core.hidden_states.files import (
    HiddenStates,
    WriterGone,
    cache_path,
    load_bytes_checked,
    move_server_file,
    open_storage_dir,
    read_server_file,
    remove_server_file,
    safe_server_path,
    wait_for_file,
)

#: Backoff between retries of one endpoint: BASE * 2**failures seconds, capped, with jitter.
BACKOFF_BASE_S = 0.25
BACKOFF_MAX_S = 5.0
#: 5xx answers from a server that is up: retried this many times, then the sample fails.
MAX_SERVER_ERRORS = 5
#: Times a sample is asked for again when the server answered but its writer then died without
#: writing the file (a server killed between the answer and the write): the next try goes to the
#: least busy endpoint, which is another one once the dead server refuses connections.
MAX_WRITER_LOSSES = 2


class ApiKeyError(ValueError):
    """An API key variable that is unset, empty, or whose value has surrounding whitespace."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(f"{message}. Fix: {fix}")
        self.message, self.fix = message, fix


def api_key_problem(name: str, value: Optional[str]) -> Optional[tuple[str, str]]:
    """(what is wrong, fix) for the key variable `name` holding `value` (None = unset), or None when it
    is usable. A key is used exactly as set, by the clients, the hf server and vLLM alike: one with
    surrounding whitespace (a CRLF .env file leaves "\r") would be refused everywhere with 401."""
    if value is None:
        return (f"the environment variable {name} (the API key) is not set",
                f"export {name}=<the hidden-states server's API key>")
    if not value:
        return (f"the environment variable {name} (the API key) is empty",
                f"export {name}=<the hidden-states server's API key>")
    if value != value.strip():
        return (f"the environment variable {name} (the API key) has leading or trailing whitespace "
                f"(a CRLF .env file leaves a \\r)",
                f'export {name}="$(printf %s "${name}" | tr -d \'[:space:]\')", or fix the file it comes from')
    return None


def read_api_key(name: str, environ=None) -> str:
    """The API key in the environment variable `name`, exactly as set; ApiKeyError (naming the variable
    and the fix, never the value) when it is unset, empty or has surrounding whitespace."""
    env = os.environ if environ is None else environ
    value = env.get(name)
    problem = api_key_problem(name, value)
    if problem:
        raise ApiKeyError(*problem)
    return value


def key_for_flag(name: Optional[str], usage_error) -> Optional[str]:
    """`--api-key-env NAME` of a stage CLI: the key (None without the flag); a bad variable raises
    `usage_error(message, fix=...)`, the stage's own exit-2 error."""
    if not name:
        return None
    try:
        return read_api_key(name)  # the same rules as the servers: used exactly as set
    except ApiKeyError as e:
        raise usage_error(f"--api-key-env {name}: {e.message}", fix=f"{e.fix}, or drop --api-key-env") from None


def normalize_endpoint(url: str) -> str:
    """`http://host:port`, `.../v1` or `.../v1/` -> `http://host:port/v1`."""
    u = url.strip().rstrip("/")
    if not u.startswith(("http://", "https://")):
        raise ValueError(f"hidden-states endpoint {url!r}: expected a URL like http://127.0.0.1:8000/v1")
    if not u.endswith("/v1"):
        u += "/v1"
    return u


@dataclass
class _Endpoint:
    url: str
    in_flight: int = 0
    model: Optional[str] = None
    failures: int = 0
    down_since: Optional[float] = None
    retry_at: float = 0.0
    last_error: str = ""


class HiddenStatesClient:
    def __init__(
        self,
        endpoints: Union[Sequence[str], str],
        storage_dir: str,
        max_in_flight: int = 8,
        max_files_on_disk: int = 16,
        request_timeout: float = 600.0,
        grace_period: float = 300.0,
        *,
        model: Optional[str] = None,
        num_layers: Optional[int] = None,
        hidden_size: Optional[int] = None,
        dtype: Optional[str] = None,
        api_key: Optional[str] = None,
    ) -> None:
        """endpoints: server URLs (`http://host:port/v1`); storage_dir: the directory the servers write to.

        Optional checks: num_layers / hidden_size / dtype of every file; model: the served model id
        (default: asked once per endpoint with GET /v1/models). api_key: sent as
        `Authorization: Bearer <key>` (servers started with --api-key-env / VLLM_API_KEY).
        """
        if isinstance(endpoints, str):
            endpoints = [endpoints]
        if not endpoints:
            raise ValueError("HiddenStatesClient: at least one endpoint is needed (--vllm-endpoint)")
        if not storage_dir:
            raise ValueError("HiddenStatesClient: storage_dir is required (--hidden-states-storage): the "
                             "directory the server writes to; returned paths outside it are refused")
        if max_in_flight < 1 or max_files_on_disk < 1:
            raise ValueError(f"max_in_flight ({max_in_flight}) and max_files_on_disk ({max_files_on_disk}) must be >= 1")
        self.endpoints = [_Endpoint(normalize_endpoint(u), model=model) for u in endpoints]
        self.storage_dir = os.path.realpath(storage_dir)
        self.max_in_flight = max_in_flight
        self.max_files_on_disk = max_files_on_disk
        self.request_timeout = float(request_timeout)
        self.grace_period = float(grace_period)
        self.num_layers, self.hidden_size, self.dtype = num_layers, hidden_size, dtype
        if api_key and api_key != api_key.strip():
            raise ValueError("the API key has leading or trailing whitespace: the server compares it as it is "
                             "and would refuse every request (a CRLF .env file leaves a \\r); strip it where it is set")
        self._api_key = api_key or None
        self._http = None
        self._dir_fd: Optional[int] = None
        self._request_slots: Optional[asyncio.Semaphore] = None
        self._file_slots: Optional[asyncio.Semaphore] = None
        self._stats_lock = threading.Lock()
        self._in_flight = 0
        self._reset_stats()
        self._totals = {"requests": 0, "bytes": 0, "errors": 0}

    # ------------------------------------------------------------------ stats
    def _reset_stats(self) -> None:
        self._n = 0
        self._bytes = 0
        self._latency = 0.0
        self._queue_wait = 0.0
        self._errors = 0

    def _record(self, nbytes: int, latency: float, queue_wait: float) -> None:
        with self._stats_lock:
            self._n += 1
            self._bytes += nbytes
            self._latency += latency
            self._queue_wait += queue_wait
            self._totals["requests"] += 1
            self._totals["bytes"] += nbytes

    def _record_error(self) -> None:
        with self._stats_lock:
            self._errors += 1
            self._totals["errors"] += 1

    def stats(self, reset: bool = True) -> dict:
        """Since the last reset: {"hs_requests", "hs_mb" (1e6 bytes), "hs_latency_s" (mean),
        "hs_queue_wait_s" (mean), "hs_errors", "hs_in_flight" (now)}."""
        with self._stats_lock:
            n = self._n
            out = {
                "hs_requests": n,
                "hs_mb": self._bytes / 1e6,
                "hs_latency_s": self._latency / n if n else 0.0,
                "hs_queue_wait_s": self._queue_wait / n if n else 0.0,
                "hs_errors": self._errors,
                "hs_in_flight": self._in_flight,
            }
            if reset:
                self._reset_stats()
        return out

    def endpoint_status(self) -> list[tuple[str, bool, str]]:
        """(url, up, last error) of each endpoint: up = its last request reached it (a server that
        answered with an error is up); down = unreachable since its last failure."""
        return [(ep.url, ep.down_since is None, ep.last_error) for ep in self.endpoints]

    def totals(self) -> dict:
        """Since creation: {"requests", "bytes", "errors"}."""
        with self._stats_lock:
            return dict(self._totals)

    # ------------------------------------------------------------ plumbing
    def _ensure_started(self) -> None:
        if self._http is None:
            import httpx

            limits = httpx.Limits(max_connections=self.max_in_flight * 2 + 4,
                                  max_keepalive_connections=self.max_in_flight * 2 + 4)
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else None
            self._http = httpx.AsyncClient(limits=limits, headers=headers,
                                           timeout=httpx.Timeout(self.request_timeout, connect=10.0))
            self._request_slots = asyncio.Semaphore(self.max_in_flight)
            self._file_slots = asyncio.Semaphore(self.max_files_on_disk)

    def _storage_fd(self) -> int:
        """The storage directory's descriptor (opened once): server files are reached only through it."""
        if self._dir_fd is None:
            self._dir_fd = open_storage_dir(self.storage_dir)
        return self._dir_fd

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

    async def __aenter__(self) -> "HiddenStatesClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    def _mark_down(self, ep: _Endpoint, err: str) -> None:
        now = time.monotonic()
        if ep.down_since is None:
            ep.down_since = now
        ep.failures += 1
        delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * (2 ** (ep.failures - 1)))
        ep.retry_at = now + delay * (0.75 + 0.5 * random.random())
        ep.last_error = err

    @staticmethod
    def _mark_up(ep: _Endpoint) -> None:
        ep.failures = 0
        ep.down_since = None
        ep.retry_at = 0.0

    def _unavailable(self) -> Optional[ServerUnavailable]:
        now = time.monotonic()
        if all(ep.down_since is not None and now - ep.down_since > self.grace_period for ep in self.endpoints):
            detail = "; ".join(f"{ep.url}: {ep.last_error}" for ep in self.endpoints)
            return ServerUnavailable(
                f"hidden-states server unreachable for more than {self.grace_period:.0f} s (grace period): {detail}. "
                f"Fix: check the server log and that it is running; raise --server-grace-period to wait longer"
            )
        return None

    async def _pick(self) -> _Endpoint:
        """The least busy endpoint that is not backing off (waits for one; may raise ServerUnavailable)."""
        while True:
            err = self._unavailable()
            if err is not None:
                raise err
            now = time.monotonic()
            ready = [ep for ep in self.endpoints if ep.retry_at <= now]
            if ready:
                least = min(ep.in_flight for ep in ready)
                return random.choice([ep for ep in ready if ep.in_flight == least])
            await asyncio.sleep(min(ep.retry_at for ep in self.endpoints) - now + 0.001)

    async def _model_id(self, ep: _Endpoint) -> str:
        if ep.model is None:
            r = await self._http.get(ep.url + "/models", timeout=30.0)
            self._check_auth(ep, r)
            if r.status_code >= 500:
                raise _Retryable(f"GET /v1/models: HTTP {r.status_code}")
            if r.status_code != 200:
                raise HiddenStatesError(f"{ep.url}/models: HTTP {r.status_code}: {_error_text(r)} (is this a vLLM or "
                                        f"hf_server endpoint? expected http://HOST:PORT/v1)")
            try:
                data = r.json().get("data") or []
                if not data:
                    raise HiddenStatesError(f"{ep.url}/models lists no model")
                ep.model = str(data[0]["id"])
            except (ValueError, AttributeError, KeyError, TypeError) as e:
                raise HiddenStatesError(f"{ep.url}/models: unexpected answer ({e}): {r.text[:200]}") from e
        return ep.model

    async def _request(self, ids: list[int]) -> tuple[str, _Endpoint, Optional[list]]:
        """POST the sample until some endpoint answers; returns the server's (unchecked) path."""
        import httpx

        server_errors = 0
        while True:
            ep = await self._pick()
            ep.in_flight += 1
            try:
                model = await self._model_id(ep)
                body = {"model": model, "prompt": ids, "max_tokens": 1, "return_token_ids": True}
                r = await self._http.post(ep.url + "/completions", json=body)
            except (httpx.TransportError, _Retryable) as e:
                self._mark_down(ep, f"{type(e).__name__}: {e}")
                continue
            finally:
                ep.in_flight -= 1
            self._check_auth(ep, r)
            if r.status_code >= 500:
                server_errors += 1
                self._mark_down(ep, f"HTTP {r.status_code}: {r.text[:200]}")
                ep.down_since = None  # it answered: it is up, only busy or failing this request
                if server_errors >= MAX_SERVER_ERRORS:
                    raise HiddenStatesError(
                        f"{ep.url}/completions: HTTP {r.status_code} {MAX_SERVER_ERRORS} times: {_error_text(r)}"
                    )
                continue
            self._mark_up(ep)
            if r.status_code != 200:
                raise HiddenStatesError(f"{ep.url}/completions refused the sample ({len(ids)} tokens): "
                                        f"HTTP {r.status_code}: {_error_text(r)}")
            try:
                out = r.json()
                choice = out["choices"][0]
                returned_ids = choice.get("prompt_token_ids")
                path = (out.get("kv_transfer_params") or choice.get("kv_transfer_params") or {}).get("hidden_states_path")
            except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
                raise HiddenStatesError(f"{ep.url}/completions: unexpected response ({e}): {r.text[:300]}") from e
            if path is None:
                raise HiddenStatesError(
                    f"{ep.url}/completions: no kv_transfer_params.hidden_states_path in the response; is the "
                    f"server started with hidden-states extraction (launch_vllm / hf_server)?"
                )
            return path, ep, returned_ids

    def _check_auth(self, ep: _Endpoint, r) -> None:
        """A 401/403 is a configuration error: never retried, names the fix."""
        if r.status_code not in (401, 403):
            return
        said = "no API key was sent" if self._api_key is None else "the API key sent was refused"
        raise AuthenticationFailed(
            f"{ep.url}: HTTP {r.status_code} ({_error_text(r)}): the hidden-states server requires an API key and "
            f"{said}. Fix: set the environment variable named by hidden_states.api_key_env (--api-key-env NAME) "
            f"to the server's key, the same variable the server was started with"
        )

    async def fetch(self, row_id, input_ids: Sequence[int], cache_dir: Optional[str] = None) -> HiddenStates:
        """Hidden states of one sample. cache_dir None: read then delete the server's file; else move
        it to cache_path(cache_dir, row_id). Raises HiddenStatesError / ServerUnavailable."""
        try:
            ids = [int(x) for x in input_ids]
        except (TypeError, ValueError) as e:
            self._record_error()
            raise HiddenStatesError(f"row {row_id}: input_ids must be integers ({e})") from e
        if not ids:
            self._record_error()
            raise HiddenStatesError(f"row {row_id}: empty input_ids")
        self._ensure_started()
        try:
            self._storage_fd()
        except HiddenStatesError:
            self._record_error()
            raise
        t_queued = time.monotonic()
        try:
            async with self._file_slots:
                for attempt in range(MAX_WRITER_LOSSES + 1):
                    async with self._request_slots:
                        if attempt == 0:
                            t_start = time.monotonic()  # the wait for a request slot is queueing
                        with self._stats_lock:
                            self._in_flight += 1
                        try:
                            returned, _, returned_ids = await self._request(ids)
                        finally:
                            with self._stats_lock:
                                self._in_flight -= 1
                    # The sample's own ids must come back (before touching any file).
                    path = safe_server_path(returned, self.storage_dir)
                    if returned_ids is not None and list(returned_ids) != ids:
                        await self._discard(path)
                        raise HiddenStatesError(
                            f"row {row_id}: the server tokenised the prompt differently ({len(returned_ids)} ids "
                            f"back, {len(ids)} sent); rejected"
                        )
                    try:
                        hs, nbytes = await self._take_file(path, ids, cache_dir, row_id)
                        break
                    except WriterGone as e:
                        if attempt == MAX_WRITER_LOSSES:
                            raise HiddenStatesError(f"row {row_id}: {e} ({attempt + 1} times)") from e
        except HiddenStatesError:
            self._record_error()
            raise
        now = time.monotonic()
        self._record(nbytes, now - t_start, t_start - t_queued)
        return hs

    async def _discard(self, path: Path) -> None:
        # Wait briefly for the writer so the file is not written after we delete it.
        fd = self._storage_fd()
        try:
            await wait_for_file(fd, path.name, min(self.request_timeout, 60.0))
        except HiddenStatesError:
            pass
        remove_server_file(fd, path.name)

    async def _take_file(self, path: Path, ids: list[int], cache_dir: Optional[str], row_id) -> tuple[HiddenStates, int]:
        """Wait for, read, check and delete (or cache) the server's file, only ever through the storage
        directory's descriptor and without following links: a server cannot redirect us outside it."""
        fd, name = self._storage_fd(), path.name
        remove = True
        try:
            await wait_for_file(fd, name, self.request_timeout)
            data, st = await asyncio.to_thread(read_server_file, fd, name)
            hs = await asyncio.to_thread(load_bytes_checked, data, path, ids, self.num_layers, self.hidden_size,
                                         self.dtype)
            if cache_dir is not None:
                await asyncio.to_thread(move_server_file, fd, name, st, data, cache_path(cache_dir, row_id))
        except UnsafePath:
            remove = False  # a link, FIFO, device or directory: refused and left as it is
            raise
        finally:
            if remove:
                remove_server_file(fd, name)
        return hs, len(data)


class _Retryable(Exception):
    pass


def _error_text(r) -> str:
    try:
        body = r.json()
        if isinstance(body, dict):
            err = body.get("error") or body.get("detail") or body.get("message") or body
            if isinstance(err, dict):
                err = err.get("message") or err
            return str(err)[:500]
    except ValueError:
        pass
    return r.text[:500]
