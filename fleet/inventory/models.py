"""Typed specs for what users commit to the fleet repo.

`clusters/<name>.yaml` -> ClusterSpec, `apps/<app>/fleet.yaml` -> AppSpec and
the root `fleet.yaml` -> FleetSettings. Unknown fields are errors: a typo in a
selector must not silently target nothing.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def is_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and bool(DNS1123_LABEL.match(value))


def check_dns1123_label(value: str) -> str:
    if not is_dns1123_label(value):
        raise ValueError(
            f"{value!r} is not a valid name: use at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def check_label_key(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _LABEL_PREFIX.match(prefix)):
        raise ValueError(f"label key {key!r} has an invalid prefix")
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        raise ValueError(f"label key {key!r} is not a valid label name")
    return key


def check_label_value(value: str) -> str:
    if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
        raise ValueError(f"label value {value!r} is not valid: at most 63 letters, digits, '-', '_' or '.'")
    return value


def parse_duration(value: object) -> int:
    """Accept seconds as an int, or a Go-style duration such as "90s", "5m" or "1h30m"."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30 or \"30s\"")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str):
        match = _DURATION.match(value.strip())
        if not value.strip() or not match:
            raise ValueError(f"{value!r} is not a duration; use seconds or a form like \"30s\", \"5m\", \"1h\"")
        hours, minutes, secs = (int(part or 0) for part in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise ValueError("expected a duration such as 30 or \"30s\"")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


Duration = Annotated[int, BeforeValidator(parse_duration)]
Name = Annotated[str, BeforeValidator(lambda v: check_dns1123_label(v) if isinstance(v, str) else v)]


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        check_label_key(key)
        check_label_value(value)
    return labels


class Strict(BaseModel):
    """Base for every spec: unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- clusters


class AwsProvider(Strict):
    """An EKS cluster, found through `eks:DescribeCluster`."""

    type: Literal["aws"]
    account: Annotated[str, Field(pattern=r"^\d{12}$", description="12-digit AWS account id")]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")]
    cluster: Annotated[str, Field(min_length=1, max_length=100, description="EKS cluster name")]
    roleArn: str | None = Field(default=None, description="role the hub assumes before calling EKS")


class GcpProvider(Strict):
    """A GKE cluster, found through the GKE REST API."""

    type: Literal["gcp"]
    project: Annotated[str, Field(pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")]
    location: Annotated[str, Field(min_length=1, description="region or zone")]
    cluster: Annotated[str, Field(min_length=1, max_length=40)]


class KubeconfigProvider(Strict):
    """A cluster reached through a kubeconfig context on the hub's machine.

    `path` is never in Git with credentials in it; it names a file the hub can
    read. Without it the hub uses its own `--kubeconfig` (or KUBECONFIG).
    """

    type: Literal["kubeconfig"]
    context: Annotated[str, Field(min_length=1)]
    path: str | None = None


Provider = Annotated[AwsProvider | GcpProvider | KubeconfigProvider, Field(discriminator="type")]


class FailoverMembership(Strict):
    group: Name
    role: Literal["primary", "standby"]
    priority: int = Field(default=100, ge=0, le=1000, description="higher is preferred")


class ClusterSpec(Strict):
    """`clusters/<name>.yaml`."""

    name: Name
    provider: Provider
    labels: Annotated[dict[str, str], BeforeValidator(lambda v: v if v is not None else {})] = Field(
        default_factory=dict
    )
    failover: FailoverMembership | None = None
    values: dict[str, Any] = Field(default_factory=dict)

    _labels = field_validator("labels")(_check_labels)

    @property
    def region(self) -> str | None:
        if isinstance(self.provider, AwsProvider):
            return self.provider.region
        if isinstance(self.provider, GcpProvider):
            return self.provider.location
        return self.labels.get("region") or self.labels.get("topology.kubernetes.io/region")


# ---------------------------------------------------------------- apps


class LabelSelectorRequirement(Strict):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values_match_operator(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class LabelSelector(Strict):
    """A Kubernetes-style label selector over cluster labels. `{}` selects every cluster."""

    matchLabels: dict[str, str] = Field(default_factory=dict)
    matchExpressions: list[LabelSelectorRequirement] = Field(default_factory=list)


class ImageOverride(Strict):
    """Like Kustomize's `images:`: matches containers whose image name is `name`."""

    name: Annotated[str, Field(min_length=1)]
    newName: str | None = None
    newTag: str | None = None
    digest: str | None = None


class ReplicaOverride(Strict):
    name: Annotated[str, Field(min_length=1, description="workload name")]
    count: Annotated[int, Field(ge=0)]


class AppTarget(Strict):
    """Which clusters get the app, and how it is customised there.

    A cluster gets the app when any target matches it; the first matching
    target's customisations apply (Rancher Fleet's rule, easy to review).
    """

    name: str | None = None
    clusterSelector: LabelSelector | None = None
    clusterName: Name | None = None
    values: dict[str, Any] = Field(default_factory=dict)
    images: list[ImageOverride] = Field(default_factory=list)
    replicas: list[ReplicaOverride] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_selector(self) -> AppTarget:
        if self.clusterSelector is None and self.clusterName is None:
            raise ValueError("a target needs clusterSelector or clusterName")
        return self


class AppSpec(Strict):
    """`apps/<app>/fleet.yaml`. `name` comes from the directory."""

    name: Name
    namespace: Name | None = None
    targets: list[AppTarget] = Field(default_factory=list)
    dependsOn: list[Name] = Field(default_factory=list)
    values: dict[str, Any] = Field(default_factory=dict)
    selfHeal: bool = True
    prune: bool = True
    failover: bool = Field(default=False, description="runs on its failover group's active cluster only")
    failoverGroup: Name | None = Field(
        default=None, description="the group whose active cluster runs this app; needed if failover is true"
    )
    path: str = Field(default=".", description="manifest directory, relative to the app directory")

    @model_validator(mode="after")
    def _failover_group(self) -> AppSpec:
        if self.failover and self.failoverGroup is None:
            raise ValueError("failover: true needs failoverGroup")
        return self


# ---------------------------------------------------------------- fleet.yaml


class SigningSettings(Strict):
    mode: Literal["off", "warn", "enforce"] = "off"
    trustedKeys: list[Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{40}$")]] = Field(
        default_factory=list, description="full fingerprints of keys allowed to sign"
    )


class PruneSettings(Strict):
    enabled: bool = True
    maxDeleteShare: float = Field(
        default=0.5, gt=0, le=1, description="share of a cluster's objects one prune may delete without --force"
    )


class InventorySettings(Strict):
    maxShrinkShare: float = Field(
        default=0.5, gt=0, le=1, description="share of clusters a revision may remove before it is held"
    )


class KubeconfigSettings(Strict):
    allowExec: bool = False
    allowAuthProvider: bool = False


class AgentSettings(Strict):
    pollInterval: Duration = 15
    driftInterval: Duration = 30
    heartbeatTimeoutIntervals: int = Field(default=3, ge=1)


class Route53Record(Strict):
    zoneId: str
    record: str
    type: Literal["CNAME", "A"] = "CNAME"
    ttl: int = Field(default=60, ge=1)
    targets: dict[Name, str] = Field(description="cluster name -> value the record takes when it is active")


class FailoverGroupSettings(Strict):
    mode: Literal["cold", "warm"] = "cold"
    policy: Literal["auto", "manual"] = "manual"
    missedHeartbeats: int = Field(default=3, ge=1)
    unhealthyReports: int = Field(default=3, ge=1)
    holdDown: Duration = Field(default=120, description="minimum seconds between two automatic moves")
    oldPrimary: Literal["scale-down", "remove"] = "scale-down"
    dns: Route53Record | None = None
    webhook: str | None = None


class FailoverSettings(Strict):
    groups: dict[Name, FailoverGroupSettings] = Field(default_factory=dict)


class VaultAuth(Strict):
    method: Literal["token", "approle"] = "token"
    tokenEnv: str = "VAULT_TOKEN"
    roleIdEnv: str = "VAULT_ROLE_ID"
    secretIdEnv: str = "VAULT_SECRET_ID"
    mount: str = "approle"


class VaultSettings(Strict):
    address: str | None = Field(default=None, description="default: VAULT_ADDR")
    auth: VaultAuth = Field(default_factory=VaultAuth)
    allowedPrefixes: list[str] = Field(
        default_factory=lambda: ["kv/clusters/{cluster}/", "kv/shared/"],
        description="path prefixes a cluster may read; {cluster} is the cluster name",
    )
    versionPollInterval: Duration = 30


class SecretScope(Strict):
    path: Annotated[str, Field(pattern=r"^secrets/[^/]+(/[^/]+)*$")]
    clusterSelector: LabelSelector


class RotationPolicy(Strict):
    ref: Annotated[str, Field(pattern=r"^vault:")]
    schedule: str = Field(description="cron expression, e.g. '0 3 * * 0'")
    generate: int = Field(default=32, ge=8, le=4096)
    destroyOld: bool = False


class SecretsSettings(Strict):
    vault: VaultSettings = Field(default_factory=VaultSettings)
    scopes: list[SecretScope] = Field(default_factory=list)
    rotation: list[RotationPolicy] = Field(default_factory=list)


class FleetSettings(Strict):
    """The root `fleet.yaml`: fleet-wide settings. Every field is optional."""

    branch: str = "main"
    pollInterval: Duration = 30
    signing: SigningSettings = Field(default_factory=SigningSettings)
    prune: PruneSettings = Field(default_factory=PruneSettings)
    inventory: InventorySettings = Field(default_factory=InventorySettings)
    kubeconfig: KubeconfigSettings = Field(default_factory=KubeconfigSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    failover: FailoverSettings = Field(default_factory=FailoverSettings)
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
