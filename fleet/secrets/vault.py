"""Vault (or OpenBao) KV v2 through hvac, with token renewal and value-free errors.

The token is renewed when two thirds of its TTL have passed, checked on every
call and by `maintain()` (the scheduler calls it so an idle hub does not let
its token lapse). An AppRole login whose token can no longer be extended
(max TTL reached, or not renewable) logs in again. Errors never carry Vault's
response bodies: a message names the reference and what went wrong.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import hvac
import hvac.exceptions
import requests

from fleet.inventory.models import VaultAuth
from fleet.secrets.errors import SecretError, VaultRefError, VaultUnavailable
from fleet.secrets.refs import VaultRef

log = logging.getLogger(__name__)

T = TypeVar("T")

RENEW_AFTER_FRACTION = 2 / 3
CAS_ATTEMPTS = 5


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    # KV v2 stores JSON: a number or object becomes its JSON text, as `vault kv get -field` prints it.
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


class VaultClient:
    """A KV v2 client for the hub: thread-safe token handling, `VaultUnavailable` for outages."""

    def __init__(
        self,
        address: str,
        auth: VaultAuth,
        *,
        timeout: float = 5.0,
        env: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.address = address.rstrip("/")
        self._auth = auth
        self._env = env
        self._clock = clock
        self._lock = threading.RLock()
        verify: bool | str = env.get("VAULT_CACERT") or True
        self._client = hvac.Client(url=self.address, timeout=timeout, verify=verify)
        self._logged_in = False
        self._renew_at: float | None = None
        self._expires_at: float | None = None
        self._login_ttl = 0
        self._renewable = False

    def __repr__(self) -> str:
        return f"VaultClient(address={self.address!r}, method={self._auth.method!r})"

    # ------------------------------------------------------------ token lifecycle

    def _schedule(self, ttl: int, renewable: bool) -> None:
        now = self._clock()
        self._renewable = renewable
        if ttl <= 0:  # root or periodic-less non-expiring token
            self._renew_at = self._expires_at = None
        else:
            self._expires_at = now + ttl
            self._renew_at = now + ttl * RENEW_AFTER_FRACTION

    def _env_value(self, name: str, what: str) -> str:
        value = self._env.get(name)
        if not value:
            raise VaultUnavailable(f"no Vault {what}: set the {name} environment variable")
        return value

    def _login(self) -> None:
        if self._auth.method == "approle":
            role_id = self._env_value(self._auth.roleIdEnv, "AppRole role id")
            secret_id = self._env_value(self._auth.secretIdEnv, "AppRole secret id")
            with self._errors("AppRole login", relogin=False):
                response = self._client.auth.approle.login(role_id, secret_id, mount_point=self._auth.mount)
            auth = response["auth"]
            self._client.token = auth["client_token"]
            ttl, renewable = int(auth.get("lease_duration") or 0), bool(auth.get("renewable"))
            log.info("logged in to Vault with AppRole (token ttl %ss)", ttl)
        else:
            self._client.token = self._env_value(self._auth.tokenEnv, "token")
            with self._errors("token lookup", relogin=False):
                data = self._client.auth.token.lookup_self()["data"]
            ttl, renewable = int(data.get("ttl") or 0), bool(data.get("renewable"))
        self._login_ttl = ttl
        self._logged_in = True
        self._schedule(ttl, renewable)

    def _renew(self) -> None:
        new_ttl = 0
        if self._renewable:
            try:
                with self._errors("token renewal", relogin=False):
                    auth = self._client.auth.token.renew_self()["auth"]
                new_ttl = int(auth.get("lease_duration") or 0)
                self._schedule(new_ttl, bool(auth.get("renewable")))
            except VaultUnavailable as exc:
                # The token may still be valid: keep using it, and try again on the next call.
                log.warning("Vault token renewal failed: %s", exc)
        short = new_ttl < max(1, self._login_ttl // 2)  # renewal capped: the max TTL is near
        if self._auth.method == "approle" and short:
            self._logged_in = False
            self._login()
        elif new_ttl:
            log.debug("renewed Vault token (ttl %ss)", new_ttl)
            if short:
                log.warning("the Vault token is near its max TTL (%ss left); replace it", new_ttl)
        elif not self._renewable:
            log.warning("the Vault token is not renewable; it expires and must be replaced")
            self._renew_at = None

    def _ensure_token(self) -> None:
        with self._lock:
            if not self._logged_in:
                self._login()
            elif self._renew_at is not None and self._clock() >= self._renew_at:
                self._renew()

    def maintain(self) -> None:
        """Renew (or re-login) if the token is due; the scheduler calls this periodically."""
        self._ensure_token()

    def token_expires_in(self) -> float | None:
        """Seconds until the current token expires (None: never, or not logged in)."""
        with self._lock:
            return None if self._expires_at is None else self._expires_at - self._clock()

    # ------------------------------------------------------------ error mapping

    @contextmanager
    def _errors(self, what: str, *, relogin: bool = True) -> Iterator[None]:
        # Every branch raises `from None`: hvac exceptions may hold response text.
        try:
            yield
        except hvac.exceptions.InvalidPath:
            raise VaultRefError(f"{what}: not found in Vault (missing, deleted or destroyed)") from None
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
            if relogin:
                self._logged_in = False  # a revoked or expired token: log in afresh next call
            raise VaultUnavailable(f"{what}: Vault denied access (permission denied or token expired)") from None
        except hvac.exceptions.VaultDown:
            raise VaultUnavailable(f"{what}: Vault at {self.address} is sealed") from None
        except (requests.ConnectionError, requests.Timeout):
            raise VaultUnavailable(f"{what}: Vault at {self.address} is unreachable") from None
        except hvac.exceptions.InvalidRequest:
            raise VaultRefError(f"{what}: Vault rejected the request") from None
        except hvac.exceptions.VaultError as exc:
            raise VaultUnavailable(f"{what}: Vault error ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise VaultUnavailable(f"{what}: request to Vault failed ({type(exc).__name__})") from None

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        self._ensure_token()
        try:
            with self._errors(what):
                return operation()
        except VaultUnavailable:
            if self._auth.method != "approle" or self._logged_in:
                raise
        # AppRole token rejected (expired while the process slept): one fresh login, one retry.
        log.warning("Vault rejected the AppRole token before its renewal was due; logging in again")
        self._ensure_token()
        with self._errors(what):
            return operation()

    # ------------------------------------------------------------ KV v2

    def read(self, ref: VaultRef) -> tuple[bytes, int]:
        """The referenced value and the version it came from."""
        kv = self._client.secrets.kv.v2
        response = self._call(
            str(ref),
            lambda: kv.read_secret_version(
                path=ref.path, version=ref.version, mount_point=ref.mount, raise_on_deleted_version=True
            ),
        )
        body = response.get("data") or {}
        data, metadata = body.get("data") or {}, body.get("metadata") or {}
        version = int(metadata.get("version") or 0)
        if ref.key not in data:
            raise VaultRefError(f"{ref}: no key {ref.key!r} at {ref.location} (version {version})")
        return _as_bytes(data[ref.key]), version

    def current_version(self, mount: str, path: str) -> int:
        """The path's current version from its metadata; reads no value."""
        kv = self._client.secrets.kv.v2
        response = self._call(
            f"vault:{mount}/{path}", lambda: kv.read_secret_metadata(path=path, mount_point=mount)
        )
        version = int((response.get("data") or {}).get("current_version") or 0)
        if version <= 0:
            raise VaultRefError(f"vault:{mount}/{path}: has no versions")
        return version

    def _data_at(self, mount: str, path: str) -> tuple[dict[str, Any], int]:
        """Current data and version for a check-and-set write ({} and 0 for a new path)."""
        kv = self._client.secrets.kv.v2
        try:
            version = self.current_version(mount, path)
        except VaultRefError:
            return {}, 0
        try:
            response = self._call(
                f"vault:{mount}/{path}",
                lambda: kv.read_secret_version(
                    path=path, version=version, mount_point=mount, raise_on_deleted_version=True
                ),
            )
        except VaultRefError:  # current version deleted or destroyed: nothing to keep
            return {}, version
        return dict((response.get("data") or {}).get("data") or {}), version

    def write(self, mount: str, path: str, data: Mapping[str, str]) -> int:
        """Write keys as a new version, keeping the path's other keys; returns the new version."""
        kv = self._client.secrets.kv.v2
        where = f"vault:{mount}/{path}"
        for _ in range(CAS_ATTEMPTS):
            current, version = self._data_at(mount, path)
            merged = {**current, **data}

            def put(merged: dict[str, Any] = merged, version: int = version) -> Any:
                try:
                    return kv.create_or_update_secret(path=path, secret=merged, cas=version, mount_point=mount)
                except hvac.exceptions.InvalidRequest as exc:
                    # Vault's message is about the request, never its data; only CAS races are retried.
                    if "check-and-set" in str(exc):
                        return None
                    raise

            response = self._call(where, put)
            if response is not None:
                return int(response["data"]["version"])
        raise SecretError(f"{where}: write kept conflicting with concurrent writers")

    def destroy_versions(self, mount: str, path: str, versions: Sequence[int]) -> None:
        """Permanently destroy the given versions' data (metadata stays)."""
        if not versions:
            return
        kv = self._client.secrets.kv.v2
        self._call(
            f"vault:{mount}/{path}",
            lambda: kv.destroy_secret_versions(path=path, versions=list(versions), mount_point=mount),
        )

    def health(self) -> str:
        """"ok", "sealed" or "unreachable"; needs no token."""
        try:
            response = self._client.sys.read_health_status(method="GET")
        except (requests.RequestException, hvac.exceptions.VaultError):
            return "unreachable"
        if isinstance(response, dict):
            return "sealed" if response.get("sealed") else "ok"
        status = getattr(response, "status_code", 0)
        if status in (200, 429, 472, 473):  # active, standby, DR secondary, performance standby
            return "ok"
        if status in (501, 503):  # not initialised, sealed
            return "sealed"
        return "unreachable"
