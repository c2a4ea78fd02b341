"""ClusterAccess, ClusterIdentity and the access cache: no network needed."""

from __future__ import annotations

import stat
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization

from fleet.errors import FleetError
from fleet.inventory.models import KubeconfigSettings
from fleet.providers import ClusterAccess, ClusterIdentity, ProviderConfig, ProviderError, identity_changes
from fleet.providers.base import ca_fingerprint
from fleet.providers.cache import AccessCache
from tests.providers.conftest import FakeClock
from tests.providers.tls_api import Pki

SECRET_TOKEN = "eyJhbGciOi-very-secret"


_BASE = ClusterIdentity(
    provider_id="arn:aws:eks:us-east-1:123456789012:cluster/prod",
    endpoint="https://a.eks.amazonaws.com",
    ca_fingerprint="sha256:aa",
    kubernetes_version="1.31",
)
_UNSET = "unset"


def identity(provider_id: str = _BASE.provider_id, endpoint: str = _BASE.endpoint,
             ca_fingerprint: str | None = _UNSET, kubernetes_version: str | None = _UNSET) -> ClusterIdentity:
    return ClusterIdentity(
        provider_id=provider_id,
        endpoint=endpoint,
        ca_fingerprint=_BASE.ca_fingerprint if ca_fingerprint == _UNSET else ca_fingerprint,
        kubernetes_version=_BASE.kubernetes_version if kubernetes_version == _UNSET else kubernetes_version,
    )


def test_identity_changes() -> None:
    assert identity_changes(None, identity()) == []
    assert identity_changes(identity(), identity()) == []
    assert identity_changes(identity(), identity(endpoint="https://b")) == [
        "endpoint changed from https://a.eks.amazonaws.com to https://b"
    ]
    assert identity_changes(identity(), identity(kubernetes_version="1.32")) == [
        "Kubernetes version changed from 1.31 to 1.32"
    ]
    # An unreachable API (unknown version) is not a version change.
    assert identity_changes(identity(), identity(kubernetes_version=None)) == []
    assert identity_changes(identity(kubernetes_version=None), identity()) == [
        "Kubernetes version changed from unknown to 1.31"
    ]
    assert identity_changes(identity(), identity(ca_fingerprint=None)) == [
        "CA certificate changed from sha256:aa to none (system trust)"
    ]
    swapped = identity_changes(identity(), identity(provider_id="arn:aws:eks:us-east-1:123456789012:cluster/other"))
    assert len(swapped) == 1 and "different cluster" in swapped[0] and swapped[0].endswith(
        "cluster/other: this is a different cluster"
    )


def test_ca_fingerprint_is_sha256_of_the_der() -> None:
    ca = Pki.create("fingerprint-ca")
    expected = "sha256:" + ca.cert.fingerprint(hashes.SHA256()).hex()
    assert ca_fingerprint(ca.pem) == expected
    assert ca_fingerprint(ca.cert.public_bytes(serialization.Encoding.DER)) == expected
    other = Pki.create("another-ca")
    assert ca_fingerprint(ca.pem + other.pem) == expected  # a bundle: the first certificate
    assert ca_fingerprint(None) is None
    assert ca_fingerprint(b"not a certificate") != ca_fingerprint(b"not a certificate either")


def test_access_repr_hides_credentials() -> None:
    access = ClusterAccess(endpoint="https://x", ca_pem=b"ca", token=SECRET_TOKEN,
                           client_cert_pem=b"CERT", client_key_pem=b"-----BEGIN PRIVATE KEY-----secret")
    for text in (repr(access), str(access), f"{access}", repr([access])):
        assert SECRET_TOKEN not in text and "secret" not in text.replace("ClusterAccess", "")
        assert "https://x" in text


def test_kubeconfig_dict() -> None:
    access = ClusterAccess(endpoint="https://x:6443", ca_pem=b"CA-PEM", token=SECRET_TOKEN)
    config = access.kubeconfig("prod")
    assert config["current-context"] == "prod"
    assert config["contexts"] == [{"name": "prod", "context": {"cluster": "prod", "user": "prod"}}]
    assert config["clusters"][0]["cluster"] == {"server": "https://x:6443", "certificate-authority-data": "Q0EtUEVN"}
    assert config["users"][0]["user"] == {"token": SECRET_TOKEN}

    insecure = ClusterAccess(endpoint="https://x", ca_pem=None, insecure_skip_tls_verify=True,
                             client_cert_pem=b"C", client_key_pem=b"K").kubeconfig("dev")
    assert insecure["clusters"][0]["cluster"] == {"server": "https://x", "insecure-skip-tls-verify": True}
    assert insecure["users"][0]["user"] == {"client-certificate-data": "Qw==", "client-key-data": "Sw=="}


def test_kubernetes_client_keeps_key_files_private_and_removes_them() -> None:
    access = ClusterAccess(endpoint="https://x", ca_pem=b"CA", token=SECRET_TOKEN,
                           client_cert_pem=b"CERT", client_key_pem=b"KEY")
    client = access.kubernetes_client()
    key_file = Path(client.configuration.key_file)
    assert key_file.read_bytes() == b"KEY"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert client.configuration.ca_cert_data == "CA"
    assert client.configuration.api_key == {"BearerToken": SECRET_TOKEN}
    client.close()
    assert not key_file.parent.exists()

    # Without client certificates nothing touches the disk.
    plain = ClusterAccess(endpoint="https://x", ca_pem=b"CA", token=SECRET_TOKEN).kubernetes_client()
    assert plain.configuration.cert_file is None and plain.configuration.key_file is None
    plain.close()


def test_provider_error_names_cluster_and_provider() -> None:
    error = ProviderError("prod", "aws", "EKS cluster 'x' was not found")
    assert isinstance(error, FleetError)
    assert str(error) == "cluster 'prod' (aws): EKS cluster 'x' was not found"


def test_provider_config_from_env() -> None:
    config = ProviderConfig.from_env(
        KubeconfigSettings(allowExec=True),
        environ={"FLEET_GKE_API_URL": "http://127.0.0.1:9", "FLEET_GCP_CREDENTIALS_FILE": "/etc/sa.json"},
        request_timeout=3.0,
    )
    assert config.allow_exec and not config.allow_auth_provider
    assert config.gke_api_url == "http://127.0.0.1:9"
    assert config.gcp_credentials_file == Path("/etc/sa.json")
    assert config.request_timeout == 3.0
    assert ProviderConfig.from_env(environ={}).gke_api_url == "https://container.googleapis.com"


# ---------------------------------------------------------------- cache


def access_for(token: str) -> ClusterAccess:
    return ClusterAccess(endpoint="https://x", ca_pem=None, token=token)


def test_cache_refreshes_when_due_or_when_the_spec_changes(clock: FakeClock) -> None:
    cache = AccessCache(clock)
    fetched: list[str] = []

    def fetch(label: str) -> tuple[ClusterAccess, datetime]:
        fetched.append(label)
        return access_for(label), clock.now + timedelta(minutes=5)

    first = cache.get("prod", "v1", lambda: fetch("a"))
    assert cache.get("prod", "v1", lambda: fetch("b")) is first
    clock.advance(minutes=5)
    assert cache.get("prod", "v1", lambda: fetch("c")).token == "c"
    assert cache.get("prod", "v2", lambda: fetch("d")).token == "d"
    cache.invalidate("prod")
    assert cache.get("prod", "v2", lambda: fetch("e")).token == "e"
    assert fetched == ["a", "c", "d", "e"]


def test_cache_fetches_once_for_concurrent_callers(clock: FakeClock) -> None:
    cache = AccessCache(clock)
    calls = 0
    calls_lock = threading.Lock()
    started = threading.Barrier(8)

    def slow_fetch() -> tuple[ClusterAccess, datetime]:
        nonlocal calls
        with calls_lock:
            calls += 1
        time.sleep(0.2)
        return access_for("shared"), clock.now + timedelta(minutes=5)

    results: list[ClusterAccess] = []

    def caller() -> None:
        started.wait()
        results.append(cache.get("prod", "v1", slow_fetch))

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert calls == 1
    assert len(results) == 8 and all(result is results[0] for result in results)


def test_cache_error_is_not_cached(clock: FakeClock) -> None:
    cache = AccessCache(clock)

    def failing() -> tuple[ClusterAccess, datetime]:
        raise ProviderError("prod", "aws", "boom")

    with pytest.raises(ProviderError):
        cache.get("prod", "v1", failing)
    assert cache.get("prod", "v1", lambda: (access_for("ok"), clock.now + timedelta(minutes=1))).token == "ok"
