"""Thin wrapper over the official client's DynamicClient.

Everything the agent does to a cluster goes through here: resolve a kind,
server-side apply as `fleet-agent`, get, delete, list by label. Responses are
read as plain JSON dicts (no ResourceInstance wrapping, which is slow for big
lists). Errors become KubeError / KubeUnreachable carrying the API's own
message, never the request body.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
from kubernetes.dynamic.resource import Resource

from fleet.protocol import FIELD_MANAGER, LABEL_CLUSTER, LABEL_MANAGED_BY, MANAGED_BY_VALUE, object_key

log = logging.getLogger(__name__)

_UNREACHABLE_STATUSES = frozenset({502, 503, 504})


class KubeError(Exception):
    """The API answered with an error (or the kind is unknown)."""

    def __init__(self, message: str, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class KubeUnreachable(KubeError):
    """The API server could not be reached or is unavailable."""


class UnknownKind(KubeError):
    pass


def _api_error(error: DynamicApiError) -> KubeError:
    status = getattr(error, "status", None)
    reason = str(getattr(error, "reason", "") or "")
    message = reason
    body = getattr(error, "body", None)
    if body:
        try:
            parsed = json.loads(body)
            message = str(parsed.get("message") or message)
            reason = str(parsed.get("reason") or reason)
        except (ValueError, AttributeError):
            pass
    if status in _UNREACHABLE_STATUSES:
        return KubeUnreachable(f"API unavailable ({status}): {message}"[:500], status, reason)
    return KubeError(message[:1000], status, reason)


class Kube:
    """One cluster's API, safe to share between the apply worker threads."""

    def __init__(self, api_client: k8s_client.ApiClient, *, request_timeout: float = 15.0) -> None:
        self.api_client = api_client
        self.request_timeout = request_timeout
        self._dynamic: DynamicClient | None = None
        self._resources: dict[tuple[str, str], Resource] = {}
        self._lock = threading.RLock()
        # discovery cache private to this instance: the library default is one
        # file per host in /tmp, shared (and stale) across processes. Not created
        # here; the library ignores a cache it cannot write (read-only root FS).
        self._cache_file = os.path.join(
            tempfile.gettempdir(), f"fleet-agent-discovery-{os.getpid()}-{secrets.token_hex(6)}.json"
        )

    # ------------------------------------------------------------ construction

    @classmethod
    def from_kubeconfig(
        cls, path: str | None = None, context: str | None = None, *, pool_size: int = 16, request_timeout: float = 15.0
    ) -> Kube:
        configuration = k8s_client.Configuration()
        k8s_config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
        return cls(_api_client(configuration, pool_size), request_timeout=request_timeout)

    @classmethod
    def in_cluster(cls, *, pool_size: int = 16, request_timeout: float = 15.0) -> Kube:
        configuration = k8s_client.Configuration()
        k8s_config.load_incluster_config(client_configuration=configuration)
        return cls(_api_client(configuration, pool_size), request_timeout=request_timeout)

    def close(self) -> None:
        self.api_client.close()
        with contextlib.suppress(OSError):
            os.unlink(self._cache_file)

    # ------------------------------------------------------------ discovery

    @property
    def dynamic(self) -> DynamicClient:
        with self._lock:
            if self._dynamic is None:
                try:
                    self._dynamic = DynamicClient(self.api_client, cache_file=self._cache_file)
                except DynamicApiError as error:
                    raise _api_error(error) from None
                except (urllib3.exceptions.HTTPError, OSError) as error:
                    raise KubeUnreachable(f"API server unreachable: {type(error).__name__}") from None
            return self._dynamic

    def resource(self, api_version: str, kind: str) -> Resource:
        """Resolve apiVersion/kind; the discoverer refreshes once on a miss (e.g. a new CRD)."""
        with self._lock:
            cached = self._resources.get((api_version, kind))
            if cached is not None:
                return cached
            dynamic = self.dynamic
            try:
                resource = dynamic.resources.get(api_version=api_version, kind=kind)
                self._resources[(api_version, kind)] = resource
                return resource
            except ResourceNotFoundError:
                raise UnknownKind(f"the cluster does not serve {kind} in {api_version}", 404, "NotFound") from None
            except DynamicApiError as error:
                raise _api_error(error) from None
            except (urllib3.exceptions.HTTPError, OSError) as error:
                raise KubeUnreachable(f"API server unreachable: {type(error).__name__}") from None

    # ------------------------------------------------------------ verbs

    def _call(self, method: str, resource: Resource, **kwargs: Any) -> dict[str, Any]:
        try:
            response = getattr(self.dynamic, method)(
                resource, serialize=False, _request_timeout=self.request_timeout, **kwargs
            )
        except DynamicApiError as error:
            raise _api_error(error) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KubeUnreachable(f"API server unreachable: {type(error).__name__}") from None
        data = response.data
        return dict(json.loads(data)) if data else {}

    def apply(self, obj: dict[str, Any], *, force: bool = True, field_manager: str = FIELD_MANAGER) -> dict[str, Any]:
        """Server-side apply; returns the object as the server stored it."""
        resource = self.resource(str(obj.get("apiVersion")), str(obj.get("kind")))
        namespace = (obj.get("metadata") or {}).get("namespace") if resource.namespaced else None
        return self._call(
            "server_side_apply",
            resource,
            body=obj,
            namespace=namespace,
            field_manager=field_manager,
            force_conflicts=force,
        )

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        resource = self.resource(api_version, kind)
        try:
            return self._call("get", resource, name=name, namespace=namespace if resource.namespaced else None)
        except KubeError as error:
            if error.status == 404 and not isinstance(error, UnknownKind):
                return None
            raise

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete with background propagation; False when it was already gone."""
        resource = self.resource(api_version, kind)
        try:
            self._call(
                "delete",
                resource,
                name=name,
                namespace=namespace if resource.namespaced else None,
                propagation_policy="Background",
            )
        except KubeError as error:
            if error.status == 404:
                return False
            raise
        return True

    def list_objects(
        self, api_version: str, kind: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Every object of a kind across namespaces, with apiVersion/kind filled in on each item."""
        resource = self.resource(api_version, kind)
        result = self._call("get", resource, label_selector=label_selector)
        items = result.get("items") or []
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return list(items)

    def list_owned(self, cluster: str, kinds: Iterable[tuple[str, str]]) -> dict[str, dict[str, Any]]:
        """Objects carrying fleet's ownership labels for `cluster`, over the given (apiVersion, kind)s.

        Kinds the cluster no longer serves (a deleted CRD) are skipped: nothing of them is left.
        """
        selector = f"{LABEL_MANAGED_BY}={MANAGED_BY_VALUE},{LABEL_CLUSTER}={cluster}"
        owned: dict[str, dict[str, Any]] = {}
        for api_version, kind in sorted(set(kinds)):
            try:
                items = self.list_objects(api_version, kind, selector)
            except UnknownKind:
                continue
            for item in items:
                owned[object_key(item)] = item
        return owned

    def list_nodes(self) -> list[dict[str, Any]]:
        return self.list_objects("v1", "Node")


class _ThrottledRefresh:
    """The kubeconfig loader's token-refresh hook runs before every request and re-reads the
    proxy environment each time (a large share of a request's client CPU). It refreshes tokens
    minutes before they expire, so running it every few seconds is as safe."""

    def __init__(self, hook: Callable[[Any], None], every: float) -> None:
        self.hook = hook
        self.every = every
        self._last = -every
        self._lock = threading.Lock()

    def __call__(self, configuration: Any) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.every:
                return
            self._last = now
            self.hook(configuration)
            installed = getattr(configuration, "refresh_api_key_hook", None)
            if installed is not self and installed is not None:
                # the loader re-installs a fresh hook on each refresh: keep throttling that one
                self.hook = installed
                configuration.refresh_api_key_hook = self


def _api_client(configuration: k8s_client.Configuration, pool_size: int) -> k8s_client.ApiClient:
    configuration.connection_pool_maxsize = max(pool_size, 4)
    # fail fast: the agent's own loop retries, with backoff, on the next cycle
    configuration.retries = 1
    hook = getattr(configuration, "refresh_api_key_hook", None)
    if hook is not None:
        setattr(configuration, "refresh_api_key_hook", _ThrottledRefresh(hook, 10.0))  # noqa: B010
    return k8s_client.ApiClient(configuration)
