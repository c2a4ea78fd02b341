"""Resource types the simulated API server knows, and the discovery documents built from them.

Built-in types are fixed data; CustomResourceDefinitions add types per cluster at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUBRESOURCE_VERBS = ["get", "patch", "update"]


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # "status", "scale"
    has_generation: bool = False
    verbs: tuple[str, ...] = tuple(ALL_VERBS)
    # Where replicas live for the scale subresource (CRDs may choose their own paths).
    scale_spec_path: str = ".spec.replicas"
    scale_status_path: str = ".status.replicas"
    scale_selector_path: str = ""
    # CRD-backed types carry their version's schema and printer columns.
    custom: bool = False
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    printer_columns: tuple[dict[str, Any], ...] = field(default=(), compare=False, hash=False)
    preferred: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> str:
        """Objects of one group/plural share storage across served versions."""
        return f"{self.group}/{self.plural}"

    @property
    def group_resource(self) -> str:
        """`deployments.apps` style name used in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


def _rt(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    sub: tuple[str, ...] = (),
    generation: bool = False,
    verbs: tuple[str, ...] = tuple(ALL_VERBS),
    preferred: bool = True,
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        short_names=short,
        categories=categories,
        subresources=sub,
        has_generation=generation,
        verbs=verbs,
        preferred=preferred,
    )


ALL = ("all",)
STATUS = ("status",)
SCALE_STATUS = ("scale", "status")
NO_DELETECOLLECTION = tuple(v for v in ALL_VERBS if v != "deletecollection")

BUILTIN_TYPES: tuple[ResourceType, ...] = (
    # core/v1
    _rt("", "v1", "Namespace", "namespaces", False, ("ns",), sub=STATUS, verbs=NO_DELETECOLLECTION),
    _rt("", "v1", "Node", "nodes", False, ("no",), sub=STATUS),
    _rt("", "v1", "ConfigMap", "configmaps", short=("cm",)),
    _rt("", "v1", "Secret", "secrets"),
    _rt("", "v1", "Service", "services", short=("svc",), categories=ALL, sub=STATUS, verbs=NO_DELETECOLLECTION),
    _rt("", "v1", "ServiceAccount", "serviceaccounts", short=("sa",)),
    _rt("", "v1", "Pod", "pods", short=("po",), categories=ALL, sub=STATUS),
    _rt("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",), sub=STATUS),
    _rt("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",), sub=STATUS),
    _rt("", "v1", "Endpoints", "endpoints", short=("ep",)),
    _rt("", "v1", "Event", "events", short=("ev",)),
    _rt("", "v1", "LimitRange", "limitranges", short=("limits",)),
    _rt("", "v1", "ResourceQuota", "resourcequotas", short=("quota",), sub=STATUS),
    # apps/v1
    _rt("apps", "v1", "Deployment", "deployments", short=("deploy",), categories=ALL, sub=SCALE_STATUS, generation=True),
    _rt("apps", "v1", "ReplicaSet", "replicasets", short=("rs",), categories=ALL, sub=SCALE_STATUS, generation=True),
    _rt("apps", "v1", "StatefulSet", "statefulsets", short=("sts",), categories=ALL, sub=SCALE_STATUS, generation=True),
    _rt("apps", "v1", "DaemonSet", "daemonsets", short=("ds",), categories=ALL, sub=STATUS, generation=True),
    _rt("apps", "v1", "ControllerRevision", "controllerrevisions"),
    # batch/v1
    _rt("batch", "v1", "Job", "jobs", categories=ALL, sub=STATUS, generation=True),
    _rt("batch", "v1", "CronJob", "cronjobs", short=("cj",), categories=ALL, sub=STATUS, generation=True),
    # autoscaling
    _rt("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=("hpa",), categories=ALL, sub=STATUS),
    _rt(
        "autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
        short=("hpa",), categories=ALL, sub=STATUS, preferred=False,
    ),
    # networking.k8s.io/v1
    _rt("networking.k8s.io", "v1", "Ingress", "ingresses", short=("ing",), sub=STATUS, generation=True),
    _rt("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    _rt("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short=("netpol",), generation=True),
    # policy/v1
    _rt("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",), sub=STATUS, generation=True),
    # rbac.authorization.k8s.io/v1
    _rt("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _rt("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _rt("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _rt("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    # storage / scheduling / coordination / discovery
    _rt("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",)),
    _rt("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",)),
    _rt("coordination.k8s.io", "v1", "Lease", "leases"),
    _rt("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    _rt("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", False),
    _rt("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", False),
    # apiextensions.k8s.io/v1
    _rt(
        "apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
        False, ("crd", "crds"), categories=("api-extensions",), sub=STATUS, generation=True,
    ),
)  # fmt: skip

# Group order in discovery, like a real server (core first, then by priority).
GROUP_ORDER = [
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
]


def version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version ordering: GA > beta > alpha, higher numbers first (as a sort key)."""
    import re

    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0)
    major = int(match.group(1))
    stage = {"alpha": 2, "beta": 1, None: 0}[match.group(2)]
    minor = int(match.group(3) or 0)
    return (stage, -major, -minor)


class Registry:
    """All resource types one cluster serves: built-ins plus established CRDs."""

    def __init__(self) -> None:
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._custom: dict[str, list[ResourceType]] = {}  # CRD name -> its types
        self._cache: dict[str, Any] = {}
        for resource_type in BUILTIN_TYPES:
            self._by_path[(resource_type.group, resource_type.version, resource_type.plural)] = resource_type

    # lookups -------------------------------------------------------------
    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        # list(): other threads (tests) may look up while the loop registers a CRD
        for resource_type in list(self._by_path.values()):
            if resource_type.group == group and resource_type.version == version and resource_type.kind == kind:
                return resource_type
        return None

    def types(self) -> Iterator[ResourceType]:
        return iter(list(self._by_path.values()))

    # CRDs ----------------------------------------------------------------
    def register_custom(self, crd_name: str, types: Iterable[ResourceType]) -> None:
        self.unregister_custom(crd_name)
        new_types = list(types)
        self._custom[crd_name] = new_types
        for resource_type in new_types:
            self._by_path[(resource_type.group, resource_type.version, resource_type.plural)] = resource_type
        self._cache.clear()

    def unregister_custom(self, crd_name: str) -> list[ResourceType]:
        old = self._custom.pop(crd_name, [])
        for resource_type in old:
            self._by_path.pop((resource_type.group, resource_type.version, resource_type.plural), None)
        if old:
            self._cache.clear()
        return old

    def reset_custom(self) -> None:
        for crd_name in list(self._custom):
            self.unregister_custom(crd_name)
        self._cache.clear()

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        """A value derived from the served types, rebuilt after CRDs change."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    # discovery -----------------------------------------------------------
    def _groups(self) -> dict[str, list[str]]:
        """group -> versions, preferred first."""
        groups: dict[str, set[str]] = {}
        for resource_type in self._by_path.values():
            groups.setdefault(resource_type.group, set()).add(resource_type.version)
        ordered: dict[str, list[str]] = {}
        known = [g for g in GROUP_ORDER if g in groups]
        extra = sorted(g for g in groups if g not in GROUP_ORDER)
        for group in known + extra:
            ordered[group] = sorted(groups[group], key=version_priority)
        return ordered

    def api_versions(self) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
        }

    def api_group_list(self) -> dict[str, Any]:
        cached = self._cache.get("groups")
        if cached is not None:
            return cached
        groups = []
        for group, versions in self._groups().items():
            if not group:
                continue
            entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
            groups.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
        result = {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        self._cache["groups"] = result
        return result

    def api_group(self, group: str) -> dict[str, Any] | None:
        for entry in self.api_group_list()["groups"]:
            if entry["name"] == group:
                return {"kind": "APIGroup", "apiVersion": "v1", **entry}
        return None

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        types = [t for t in self._by_path.values() if t.group == group and t.version == version]
        if not types:
            return None
        resources: list[dict[str, Any]] = []
        for resource_type in types:
            entry: dict[str, Any] = {
                "name": resource_type.plural,
                "singularName": resource_type.singular,
                "namespaced": resource_type.namespaced,
                "kind": resource_type.kind,
                "verbs": list(resource_type.verbs),
            }
            if resource_type.short_names:
                entry["shortNames"] = list(resource_type.short_names)
            if resource_type.categories:
                entry["categories"] = list(resource_type.categories)
            resources.append(entry)
            for sub in resource_type.subresources:
                sub_entry: dict[str, Any] = {
                    "name": f"{resource_type.plural}/{sub}",
                    "singularName": "",
                    "namespaced": resource_type.namespaced,
                    "kind": resource_type.kind,
                    "verbs": list(SUBRESOURCE_VERBS),
                }
                if sub == "scale":
                    sub_entry.update(kind="Scale", group="autoscaling", version="v1")
                resources.append(sub_entry)
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def aggregated(self, core: bool) -> dict[str, Any]:
        """apidiscovery.k8s.io/v2 APIGroupDiscoveryList for /api (core) or /apis (all groups)."""
        key = "agg-core" if core else "agg-apis"
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        items = []
        for group, versions in self._groups().items():
            if core != (group == ""):
                continue
            version_entries = []
            for version in versions:
                resources = []
                for resource_type in self._by_path.values():
                    if resource_type.group != group or resource_type.version != version:
                        continue
                    resource: dict[str, Any] = {
                        "resource": resource_type.plural,
                        "responseKind": {"group": group, "version": version, "kind": resource_type.kind},
                        "scope": "Namespaced" if resource_type.namespaced else "Cluster",
                        "singularResource": resource_type.singular,
                        "verbs": list(resource_type.verbs),
                    }
                    if resource_type.short_names:
                        resource["shortNames"] = list(resource_type.short_names)
                    if resource_type.categories:
                        resource["categories"] = list(resource_type.categories)
                    subs = []
                    for sub in resource_type.subresources:
                        kind = (
                            {"group": "autoscaling", "version": "v1", "kind": "Scale"}
                            if sub == "scale"
                            else {"group": group, "version": version, "kind": resource_type.kind}
                        )
                        subs.append({"subresource": sub, "responseKind": kind, "verbs": list(SUBRESOURCE_VERBS)})
                    if subs:
                        resource["subresources"] = subs
                    resources.append(resource)
                version_entries.append({"version": version, "resources": resources, "freshness": "Current"})
            metadata: dict[str, Any] = {"creationTimestamp": None}
            if group:
                metadata["name"] = group
            items.append({"metadata": metadata, "versions": version_entries})
        result = {
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": items,
        }
        self._cache[key] = result
        return result

    def group_versions(self) -> list[tuple[str, str]]:
        return [(g, v) for g, versions in self._groups().items() for v in versions]


def types_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource types a CustomResourceDefinition serves (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    plural = names.get("plural", "")
    kind = names.get("kind", "")
    singular = names.get("singular") or kind.lower()
    namespaced = spec.get("scope", "Namespaced") == "Namespaced"
    versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
    versions.sort(key=lambda v: version_priority(str(v.get("name", ""))))
    result = []
    for index, version in enumerate(versions):
        subresources = version.get("subresources") or {}
        subs = tuple(name for name in ("scale", "status") if name in subresources)
        scale = subresources.get("scale") or {}
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        result.append(
            ResourceType(
                group=group,
                version=str(version.get("name")),
                kind=kind,
                plural=plural,
                singular=singular,
                namespaced=namespaced,
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=subs,
                has_generation=True,
                scale_spec_path=scale.get("specReplicasPath", ".spec.replicas"),
                scale_status_path=scale.get("statusReplicasPath", ".status.replicas"),
                scale_selector_path=scale.get("labelSelectorPath", ""),
                custom=True,
                schema=schema,
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
                preferred=index == 0,
            )
        )
    return result
