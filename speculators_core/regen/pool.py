"""The servers regeneration talks to: least in-flight first, a failing endpoint rested with backoff.

`chat(body)` sends one `/v1/chat/completions` request to the endpoint with the fewest requests in
flight among those not resting, retrying connection errors, timeouts, 429 and 5xx with backoff (on
another endpoint when there is one) up to `retries` attempts; a 4xx is the request's own fault and
is not retried (`Rejected`).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from speculators_core.regen.rows import RegenerateError

BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 10.0


class Rejected(Exception):
    """The server refused the request itself (4xx): retrying cannot help (e.g. the prompt is too long)."""


class Failed(Exception):
    """Every attempt failed (connection errors, timeouts, 5xx)."""


@dataclass
class Endpoint:
    url: str
    in_flight: int = 0
    failures: int = 0
    resting_until: float = 0.0
    requests: int = 0
    last_error: str = ""


def normalize(url: str) -> str:
    u = url.strip().rstrip("/")
    if not u.startswith(("http://", "https://")):
        raise RegenerateError(f"--endpoint {url!r}: not an http(s) URL", fix="give e.g. http://127.0.0.1:8000/v1")
    return u if u.endswith("/v1") else u + "/v1"


class Pool:
    def __init__(self, urls: Sequence[str], retries: int = 5, timeout: float = 600.0,
                 api_key: Optional[str] = None) -> None:
        self.endpoints = [Endpoint(normalize(u)) for u in urls]
        self.retries = max(1, retries)
        self.timeout = timeout
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model: Optional[str] = None
        self._http = None
        self._changed: Optional[asyncio.Condition] = None

    async def __aenter__(self) -> "Pool":
        import httpx

        self._http = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout, connect=10.0),
                                       limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
                                       headers=self.headers)
        return self

    async def __aexit__(self, *exc) -> None:
        await self._http.aclose()

    async def discover(self) -> str:
        """Ask every endpoint for its model; the served model id. An endpoint that does not answer is
        left resting; none answering, or two serving different models, is an error naming the URLs."""
        import httpx

        models: dict[str, str] = {}
        errors: dict[str, str] = {}
        for ep in self.endpoints:
            try:
                r = await self._http.get(ep.url + "/models", timeout=15.0)
                if r.status_code == 401:
                    raise RegenerateError(f"--endpoint {ep.url}: 401 Unauthorized: the server requires an API key",
                                          fix="pass --api-key-env NAME with the variable holding the server's key")
                r.raise_for_status()
                data = r.json().get("data") or []
                models[ep.url] = str(data[0]["id"])
            except RegenerateError:
                raise
            except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as e:
                errors[ep.url] = f"{type(e).__name__}: {str(e)[:200]}"
                ep.resting_until = time.monotonic() + BACKOFF_MAX_S
                ep.last_error = errors[ep.url]
        if not models:
            listed = "; ".join(f"{u}: {w}" for u, w in errors.items())
            raise RegenerateError(
                f"--endpoint: no server answered GET /v1/models ({listed})",
                fix="start the target's server first (`vllm serve TARGET`, or `python -m speculators_core.hf_server "
                    "TARGET --hidden-states-path DIR`) and check the host and port of --endpoint")
        if len(set(models.values())) > 1:
            listed = ", ".join(f"{u} serves {m}" for u, m in models.items())
            raise RegenerateError(f"--endpoint: the servers serve different models ({listed})",
                                  fix="give endpoints of one target only")
        self.model = next(iter(models.values()))
        return self.model

    def _pick(self) -> Optional[Endpoint]:
        now = time.monotonic()
        up = [e for e in self.endpoints if e.resting_until <= now]
        if not up:
            return None
        return min(up, key=lambda e: (e.in_flight, e.failures, e.requests))

    async def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        last = ""
        for attempt in range(self.retries):
            ep = self._pick()
            while ep is None:  # every endpoint is resting: wait for the first to come back
                await asyncio.sleep(max(0.05, min(e.resting_until for e in self.endpoints) - time.monotonic()))
                ep = self._pick()
            ep.in_flight += 1
            ep.requests += 1
            try:
                r = await self._http.post(ep.url + "/chat/completions", json={"model": self.model, **body})
            except httpx.HTTPError as e:
                last = f"{ep.url}: {type(e).__name__}: {str(e)[:200]}"
                self._rest(ep, last)
                await asyncio.sleep(self._backoff(attempt))
                continue
            finally:
                ep.in_flight -= 1
            if r.status_code == 200:
                ep.failures = 0
                try:
                    return r.json()
                except ValueError:
                    last = f"{ep.url}: the answer is not JSON"
                    continue
            text = _error_text(r)
            if r.status_code == 429 or r.status_code >= 500:
                last = f"{ep.url}: HTTP {r.status_code}: {text}"
                self._rest(ep, last)
                await asyncio.sleep(self._backoff(attempt))
                continue
            raise Rejected(f"HTTP {r.status_code}: {text}")
        raise Failed(f"{self.retries} attempts failed; last: {last}")

    def _rest(self, ep: Endpoint, why: str) -> None:
        ep.failures += 1
        ep.last_error = why
        ep.resting_until = time.monotonic() + self._backoff(ep.failures - 1)

    @staticmethod
    def _backoff(n: int) -> float:
        return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** n) * (0.5 + random.random() / 2)


def _error_text(r) -> str:
    try:
        err = r.json().get("error")
        msg = err.get("message") if isinstance(err, dict) else err
        return str(msg or r.text)[:400]
    except Exception:  # noqa: BLE001 - any body
        return r.text[:400]
