"""What every provider hands the hub: how to reach a cluster and who it is.

`ClusterAccess` carries a short-lived credential and lives in memory only: it
is never written to the store and its repr hides the secret parts.
`ClusterIdentity` is safe to persist; the hub compares successive identities
to notice a cluster being swapped under an existing name.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import kubernetes.client
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from fleet.errors import FleetError
from fleet.inventory.models import ClusterSpec, KubeconfigSettings

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ProviderError(FleetError):
    """A cluster could not be reached or described. Never carries credentials."""

    def __init__(self, cluster: str, provider: str, problem: str) -> None:
        self.cluster = cluster
        self.provider = provider
        self.problem = problem
        super().__init__(f"cluster {cluster!r} ({provider}): {problem}")


def ca_fingerprint(ca_pem: bytes | None) -> str | None:
    """"sha256:<hex>" of the first CA certificate's DER encoding.

    Bytes that are not a certificate (PEM or DER) are hashed as they are, so a
    change is still noticed; TLS will refuse them when the access is used.
    """
    if not ca_pem:
        return None
    der: bytes
    try:
        der = x509.load_pem_x509_certificates(ca_pem)[0].public_bytes(Encoding.DER)
    except ValueError:
        try:
            der = x509.load_der_x509_certificate(ca_pem).public_bytes(Encoding.DER)
        except ValueError:
            der = ca_pem
    return "sha256:" + hashlib.sha256(der).hexdigest()


class _AccessApiClient(kubernetes.client.ApiClient):
    """An ApiClient that removes its private certificate directory when closed."""

    _cleanup: Callable[[], None] | None = None

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._cleanup is not None:
                self._cleanup()


@dataclass(frozen=True)
class ClusterAccess:
    """Endpoint, trust and a short-lived credential for one cluster. In memory only."""

    endpoint: str
    ca_pem: bytes | None = field(repr=False)
    token: str | None = field(default=None, repr=False)
    client_cert_pem: bytes | None = field(default=None, repr=False)
    client_key_pem: bytes | None = field(default=None, repr=False)
    insecure_skip_tls_verify: bool = False
    expires_at: datetime | None = None
    tls_server_name: str | None = None

    def __repr__(self) -> str:
        auth = []
        if self.token:
            auth.append("token")
        if self.client_cert_pem:
            auth.append("client-certificate")
        return (
            f"ClusterAccess(endpoint={self.endpoint!r}, ca={ca_fingerprint(self.ca_pem)!r}, "
            f"auth={'+'.join(auth) or 'none'}, insecure_skip_tls_verify={self.insecure_skip_tls_verify}, "
            f"expires_at={self.expires_at.isoformat() if self.expires_at else None!r})"
        )

    __str__ = __repr__

    def kubernetes_client(self, *, retries: int | None = None) -> kubernetes.client.ApiClient:
        """A client for this cluster. Close it (or use it as a context manager) when done.

        `retries` overrides urllib3's default retry count (None keeps it).

        The CA is passed in memory; a client certificate and key have to be
        files for Python's ssl module, so they go in a private 0700 directory
        that is removed when the client is closed or collected.
        """
        configuration = kubernetes.client.Configuration()
        configuration.host = self.endpoint
        configuration.verify_ssl = not self.insecure_skip_tls_verify
        if retries is not None:
            configuration.retries = retries
        if self.ca_pem and not self.insecure_skip_tls_verify:
            configuration.ca_cert_data = self.ca_pem.decode("ascii", errors="replace")
        if self.tls_server_name:
            configuration.tls_server_name = self.tls_server_name
        if self.token:
            configuration.api_key = {"BearerToken": self.token}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
        cert_dir: str | None = None
        if self.client_cert_pem and self.client_key_pem:
            cert_dir = tempfile.mkdtemp(prefix="fleet-access-")
            configuration.cert_file = _write_private(Path(cert_dir) / "client.crt", self.client_cert_pem)
            configuration.key_file = _write_private(Path(cert_dir) / "client.key", self.client_key_pem)
        client = _AccessApiClient(configuration)
        if cert_dir is not None:
            client._cleanup = weakref.finalize(client, shutil.rmtree, cert_dir, ignore_errors=True)
        return client

    def kubeconfig(self, name: str) -> dict[str, Any]:
        """A one-context kubeconfig; whoever writes it to disk makes the file 0600."""
        cluster: dict[str, Any] = {"server": self.endpoint}
        if self.insecure_skip_tls_verify:
            cluster["insecure-skip-tls-verify"] = True
        elif self.ca_pem:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_pem).decode("ascii")
        if self.tls_server_name:
            cluster["tls-server-name"] = self.tls_server_name
        user: dict[str, Any] = {}
        if self.token:
            user["token"] = self.token
        if self.client_cert_pem and self.client_key_pem:
            user["client-certificate-data"] = base64.b64encode(self.client_cert_pem).decode("ascii")
            user["client-key-data"] = base64.b64encode(self.client_key_pem).decode("ascii")
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
            "preferences": {},
        }


def _write_private(path: Path, content: bytes) -> str:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    return str(path)


@dataclass(frozen=True)
class ClusterIdentity:
    """Who a cluster is, as its provider describes it. Safe to store."""

    provider_id: str
    endpoint: str
    ca_fingerprint: str | None
    kubernetes_version: str | None


def identity_changes(old: ClusterIdentity | None, new: ClusterIdentity) -> list[str]:
    """Human-readable differences between two identities of the same cluster name.

    A first registration (no old identity) is not a change. An unknown new
    version (API unreachable) is not reported as a change either.
    """
    if old is None:
        return []
    changes: list[str] = []
    if old.provider_id != new.provider_id:
        changes.append(
            f"provider id changed from {old.provider_id} to {new.provider_id}: this is a different cluster"
        )
    if old.endpoint != new.endpoint:
        changes.append(f"endpoint changed from {old.endpoint} to {new.endpoint}")
    if old.ca_fingerprint != new.ca_fingerprint:
        changes.append(
            f"CA certificate changed from {old.ca_fingerprint or 'none (system trust)'} "
            f"to {new.ca_fingerprint or 'none (system trust)'}"
        )
    if new.kubernetes_version is not None and old.kubernetes_version != new.kubernetes_version:
        changes.append(
            f"Kubernetes version changed from {old.kubernetes_version or 'unknown'} to {new.kubernetes_version}"
        )
    return changes


class Provider(Protocol):
    def access(self, spec: ClusterSpec) -> ClusterAccess:
        """Endpoint, CA and credential; cached per cluster and refreshed before expiry."""
        ...

    def identity(self, spec: ClusterSpec) -> ClusterIdentity:
        """Describe the cluster through its provider's API."""
        ...


@dataclass
class ProviderConfig:
    """Hub-level settings for reaching clusters; never read from Git."""

    default_kubeconfig: Path | None = None
    kubeconfig_base_dir: Path | None = None
    allow_exec: bool = False
    allow_auth_provider: bool = False
    aws_endpoint_url: str | None = None
    gke_api_url: str = "https://container.googleapis.com"
    gcp_credentials_file: Path | None = None
    request_timeout: float = 10.0

    @classmethod
    def from_env(
        cls,
        kubeconfig_settings: KubeconfigSettings | None = None,
        environ: dict[str, str] | None = None,
        **overrides: Any,
    ) -> ProviderConfig:
        """Settings from fleet.yaml's `kubeconfig:` block plus FLEET_* environment overrides."""
        env = dict(os.environ if environ is None else environ)
        settings = kubeconfig_settings or KubeconfigSettings()
        values: dict[str, Any] = {
            "allow_exec": settings.allowExec,
            "allow_auth_provider": settings.allowAuthProvider,
        }
        if env.get("FLEET_GKE_API_URL"):
            values["gke_api_url"] = env["FLEET_GKE_API_URL"]
        if env.get("FLEET_AWS_ENDPOINT_URL"):
            values["aws_endpoint_url"] = env["FLEET_AWS_ENDPOINT_URL"]
        if env.get("FLEET_GCP_CREDENTIALS_FILE"):
            values["gcp_credentials_file"] = Path(env["FLEET_GCP_CREDENTIALS_FILE"])
        values.update(overrides)
        return cls(**values)
