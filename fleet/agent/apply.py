"""Apply a desired state's objects in waves with server-side apply.

CRDs go first and are waited on until Established, so the custom resources
after them resolve; each wave is applied with bounded concurrency. One
object's error does not stop the others, but it marks the apply failed (and
so blocks prune). When the API server becomes unreachable the remaining waves
are not attempted.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fleet.agent.health import object_health
from fleet.agent.kube import Kube, KubeError, KubeUnreachable
from fleet.agent.ordering import CRD_KIND, apply_waves
from fleet.protocol import FIELD_MANAGER, LABEL_CLUSTER, LABEL_MANAGED_BY, MANAGED_BY_VALUE, object_key

log = logging.getLogger(__name__)

Redactor = Callable[[str], str]


@dataclass
class ObjectResult:
    key: str
    api_version: str
    live: dict[str, Any] | None = None
    error: str | None = None
    unreachable: bool = False


@dataclass
class ApplyResult:
    results: dict[str, ObjectResult] = field(default_factory=dict)
    unreachable: bool = False

    @property
    def errors(self) -> list[str]:
        return [f"{r.key}: {r.error}" for r in self.results.values() if r.error]

    @property
    def succeeded(self) -> bool:
        return not self.unreachable and all(r.error is None for r in self.results.values())

    @property
    def applied(self) -> dict[str, str]:
        """key -> apiVersion of every object the server accepted."""
        return {r.key: r.api_version for r in self.results.values() if r.error is None}


def with_ownership(obj: dict[str, Any], cluster: str) -> dict[str, Any]:
    """A copy carrying fleet's ownership labels for this cluster, which prune relies on."""
    owned = copy.deepcopy(obj)
    metadata = owned.setdefault("metadata", {})
    labels = metadata.get("labels")
    if not isinstance(labels, dict):
        labels = {}
        metadata["labels"] = labels
    labels[LABEL_MANAGED_BY] = MANAGED_BY_VALUE
    labels[LABEL_CLUSTER] = cluster
    return owned


def _error_text(obj: dict[str, Any], error: Exception, redact: Redactor) -> str:
    if obj.get("kind") == "Secret" and isinstance(error, KubeError):
        # the API may echo submitted values in validation messages: keep only the reason
        return f"rejected ({error.status} {error.reason or 'error'})"
    return redact(str(error))[:500]


class Applier:
    def __init__(
        self,
        kube: Kube,
        *,
        concurrency: int = 8,
        crd_timeout: float = 30.0,
        field_manager: str = FIELD_MANAGER,
    ) -> None:
        self.kube = kube
        self.field_manager = field_manager
        self.crd_timeout = crd_timeout
        self._pool = ThreadPoolExecutor(max_workers=max(concurrency, 1), thread_name_prefix="fleet-apply")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _apply_one(self, obj: dict[str, Any], redact: Redactor) -> ObjectResult:
        key = object_key(obj)
        result = ObjectResult(key=key, api_version=str(obj.get("apiVersion", "")))
        if not (obj.get("metadata") or {}).get("name") or not obj.get("kind") or not obj.get("apiVersion"):
            result.error = "invalid object: apiVersion, kind and metadata.name are required"
            return result
        try:
            result.live = self.kube.apply(obj, force=True, field_manager=self.field_manager)
        except KubeUnreachable as error:
            result.error = f"not applied: {error}"
            result.unreachable = True
        except KubeError as error:
            result.error = _error_text(obj, error, redact)
        return result

    def _wait_established(self, results: list[ObjectResult]) -> None:
        deadline = time.monotonic() + self.crd_timeout
        pending = {r.key: r for r in results if r.error is None and object_health(r.live).status != "Healthy"}
        while pending:
            for key, result in list(pending.items()):
                name = key.rsplit("/", 1)[-1]
                live = self.kube.get(result.api_version, CRD_KIND, None, name)
                if live is not None:
                    result.live = live
                if object_health(live).status == "Healthy":
                    del pending[key]
            if not pending:
                break
            if time.monotonic() > deadline:
                for result in pending.values():
                    result.error = f"CRD not established within {self.crd_timeout:.0f}s"
                break
            time.sleep(0.05)

    def apply(self, objects: Sequence[dict[str, Any]], redact: Redactor = str) -> ApplyResult:
        """Apply every object, wave by wave; never raises for API errors."""
        outcome = ApplyResult()
        waves = apply_waves(objects)
        for index, wave in enumerate(waves):
            results = list(self._pool.map(lambda obj: self._apply_one(obj, redact), wave))
            outcome.unreachable = any(r.unreachable for r in results)
            if not outcome.unreachable and wave[0].get("kind") == CRD_KIND:
                try:
                    self._wait_established(results)
                except KubeUnreachable:
                    outcome.unreachable = True
            for result in results:
                outcome.results[result.key] = result
            if outcome.unreachable:
                message = "not applied: the API server became unreachable"
                for obj in (o for later in waves[index + 1 :] for o in later):
                    key = object_key(obj)
                    outcome.results[key] = ObjectResult(key, str(obj.get("apiVersion", "")), error=message)
                break
        return outcome
