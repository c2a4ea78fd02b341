"""HTTP client for the hub's agent API.

Timeouts on every call; retries with exponential backoff and full jitter on
transport errors and 502/503/504 (bounded, so one cycle never hangs); typed
errors for 401/403/503 so the loop can react. The credential goes only into
the Authorization header and is never logged or put in an error.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from fleet.protocol import API_PREFIX, BootstrapRequest, BootstrapResponse, DesiredState, StatusReport

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_DESIRED_BYTES = 64 * 1024 * 1024


class HubError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HubUnauthorized(HubError):
    """401: the credential (or bootstrap token) is unknown, used or expired."""


class HubForbidden(HubError):
    """403: the credential belongs to another cluster."""


class HubUnavailable(HubError):
    """The hub is unreachable or cannot serve right now (5xx, e.g. Vault down)."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    base_delay: float = 0.25
    max_delay: float = 4.0

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2^attempt)]."""
        return random.uniform(0, min(self.max_delay, self.base_delay * (2**attempt)))


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
        detail = body.get("detail") if isinstance(body, dict) else None
        return str(detail if detail is not None else body)[:300]
    except ValueError:
        return response.text[:300]


class HubClient:
    def __init__(
        self,
        base_url: str,
        cluster: str,
        *,
        timeout: float = 10.0,
        verify: bool | str = True,
        retry: RetryPolicy | None = None,
        agent_version: str = "",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cluster = cluster
        self.credential: str | None = None
        self.retry = retry or RetryPolicy()
        self.requests_sent = 0
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            verify=verify,
            headers={"User-Agent": f"fleet-agent/{agent_version or 'dev'}"},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"HubClient({self._http.base_url!s}, cluster={self.cluster!r})"

    def close(self) -> None:
        self._http.close()

    def _path(self, action: str) -> str:
        return f"{API_PREFIX}/agents/{self.cluster}/{action}"

    def _auth(self) -> dict[str, str]:
        if not self.credential:
            raise HubUnauthorized("no credential yet: the agent has not bootstrapped", 401)
        return {"Authorization": f"Bearer {self.credential}"}

    def _send(self, method: str, path: str, *, retry_on_status: bool = True, **kwargs: Any) -> httpx.Response:
        last_error, last_status = "", None
        for attempt in range(max(self.retry.attempts, 1)):
            if attempt:
                self._sleep(self.retry.delay(attempt))
            self.requests_sent += 1
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as error:
                last_error, last_status = f"hub unreachable: {type(error).__name__}", None
                log.debug("hub request failed", extra={"fleet": {"path": path, "error": last_error}})
                continue
            if retry_on_status and response.status_code in _RETRY_STATUSES:
                last_error, last_status = f"hub answered {response.status_code}: {_detail(response)}", response.status_code
                continue
            return response
        raise HubUnavailable(last_error or "hub unreachable", last_status)

    def _raise_for(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status == 401:
            raise HubUnauthorized(f"{what}: unauthorized ({_detail(response)})", 401)
        if status == 403:
            raise HubForbidden(f"{what}: forbidden ({_detail(response)})", 403)
        if status >= 500 or status == 429:
            raise HubUnavailable(f"{what}: hub answered {status} ({_detail(response)})", status)
        raise HubError(f"{what}: hub answered {status} ({_detail(response)})", status)

    # ------------------------------------------------------------ endpoints

    def bootstrap(self, token: str, public_key: str, agent_version: str = "") -> BootstrapResponse:
        body = BootstrapRequest(token=token, publicKey=public_key, agentVersion=agent_version)
        # a single-use token: retry only when the request surely did not arrive
        response = self._send("POST", self._path("bootstrap"), retry_on_status=False, json=body.model_dump())
        if response.status_code != 200:
            self._raise_for(response, "bootstrap")
        result = BootstrapResponse.model_validate(response.json())
        if result.cluster != self.cluster:
            raise HubError(f"bootstrap answered for cluster {result.cluster!r}, expected {self.cluster!r}")
        return result

    def fetch_desired(self, digest: str | None) -> DesiredState | None:
        """The desired state, or None when the hub answers 304 for `digest`."""
        headers = self._auth()
        if digest:
            headers["If-None-Match"] = f'"{digest}"'
        response = self._send("GET", self._path("desired"), headers=headers)
        if response.status_code == 304:
            return None
        if response.status_code != 200:
            self._raise_for(response, "desired state")
        if len(response.content) > MAX_DESIRED_BYTES:
            raise HubError(f"desired state is {len(response.content)} bytes; the limit is {MAX_DESIRED_BYTES}")
        return DesiredState.model_validate_json(response.content)

    def post_status(self, report: StatusReport) -> None:
        response = self._send(
            "POST",
            self._path("status"),
            headers={**self._auth(), "Content-Type": "application/json"},
            content=report.model_dump_json(),
        )
        if response.status_code not in (200, 202, 204):
            self._raise_for(response, "status report")
