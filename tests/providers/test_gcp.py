"""GKE against the loopback Google: real JWT-bearer token exchange and the GKE REST resource."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fleet.inventory.models import ClusterSpec
from fleet.providers import ProviderConfig, ProviderError, ProviderRegistry
from tests.fixtures.gcp import FakeGoogle
from tests.providers.conftest import FakeClock

PROJECT = "fleet-test-project"


def gke_spec(cluster: str = "prod-gke", location: str = "europe-west1", name: str = "prod") -> ClusterSpec:
    return ClusterSpec.model_validate(
        {"name": name, "provider": {"type": "gcp", "project": PROJECT, "location": location, "cluster": cluster}}
    )


@pytest.fixture
def credentials_file(gcp_endpoint: FakeGoogle, tmp_path: Path) -> Path:
    return gcp_endpoint.write_service_account_file(tmp_path / "hub-sa.json")


@pytest.fixture
def registry(gcp_endpoint: FakeGoogle, credentials_file: Path, clock: FakeClock) -> ProviderRegistry:
    config = ProviderConfig(gke_api_url=gcp_endpoint.url, gcp_credentials_file=credentials_file)
    return ProviderRegistry(config, clock=clock)


def test_identity_from_the_gke_resource(gcp_endpoint: FakeGoogle, registry: ProviderRegistry) -> None:
    created = gcp_endpoint.add_cluster(PROJECT, "europe-west1", "prod-gke", version="1.31.5-gke.1023000",
                                       endpoint="34.118.10.20")

    identity = registry.identity(gke_spec())

    assert identity.provider_id == (
        f"//container.googleapis.com/projects/{PROJECT}/locations/europe-west1/clusters/prod-gke"
    )
    assert identity.endpoint == "https://34.118.10.20"
    ca = x509.load_pem_x509_certificate(created["caPem"])
    assert identity.ca_fingerprint == "sha256:" + ca.fingerprint(hashes.SHA256()).hex()
    assert identity.kubernetes_version == "1.31.5-gke.1023000"
    assert gcp_endpoint.token_requests == 1 and gcp_endpoint.rejected_assertions == 0


def test_access_carries_an_issued_oauth_token(gcp_endpoint: FakeGoogle, registry: ProviderRegistry,
                                              clock: FakeClock) -> None:
    created = gcp_endpoint.add_cluster(PROJECT, "europe-west1", "prod-gke")

    access = registry.access(gke_spec())

    assert access.token in gcp_endpoint.tokens
    assert access.ca_pem == created["caPem"]
    assert access.endpoint == "https://34.118.10.20"
    assert access.expires_at is not None
    assert abs((access.expires_at - clock.now) - timedelta(hours=1)) < timedelta(minutes=1)
    assert access.token not in repr(access)


def test_token_is_shared_cached_and_refreshed_before_expiry(
    gcp_endpoint: FakeGoogle, registry: ProviderRegistry, clock: FakeClock
) -> None:
    gcp_endpoint.add_cluster(PROJECT, "europe-west1", "prod-gke")
    gcp_endpoint.add_cluster(PROJECT, "us-central1", "us-gke")

    first = registry.access(gke_spec())
    other = registry.access(gke_spec(cluster="us-gke", location="us-central1", name="us"))
    assert other.token == first.token  # one hub identity, one token
    clock.advance(minutes=50)
    assert registry.access(gke_spec()) is first
    assert gcp_endpoint.token_requests == 1

    clock.advance(minutes=6)  # within five minutes of the hour: refresh now, not after a failed call
    refreshed = registry.access(gke_spec())
    assert gcp_endpoint.token_requests == 2
    assert refreshed.token != first.token and refreshed.token in gcp_endpoint.tokens
    assert refreshed.expires_at is not None and first.expires_at is not None
    assert refreshed.expires_at > first.expires_at


def test_token_rejected_by_the_api_is_refreshed(gcp_endpoint: FakeGoogle, registry: ProviderRegistry) -> None:
    gcp_endpoint.add_cluster(PROJECT, "europe-west1", "prod-gke")
    registry.identity(gke_spec())
    gcp_endpoint.expire_tokens()

    identity = registry.identity(gke_spec())

    assert identity.kubernetes_version
    assert gcp_endpoint.token_requests == 2


def test_invalidate_fetches_a_new_token(gcp_endpoint: FakeGoogle, registry: ProviderRegistry) -> None:
    gcp_endpoint.add_cluster(PROJECT, "europe-west1", "prod-gke")
    first = registry.access(gke_spec())

    registry.invalidate(gke_spec())  # what the hub does when the cluster answers 401

    second = registry.access(gke_spec())
    assert second.token != first.token and gcp_endpoint.token_requests == 2


def test_unknown_cluster_is_a_clear_error(gcp_endpoint: FakeGoogle, registry: ProviderRegistry) -> None:
    with pytest.raises(ProviderError) as raised:
        registry.access(gke_spec(cluster="missing"))
    message = str(raised.value)
    assert "'prod'" in message and "gcp" in message and "not found" in message
    assert f"projects/{PROJECT}/locations/europe-west1/clusters/missing" in message


def test_wrong_key_is_rejected_by_the_token_endpoint(
    gcp_endpoint: FakeGoogle, tmp_path: Path, clock: FakeClock
) -> None:
    gcp_endpoint.add_cluster(PROJECT, "europe-west1", "prod-gke")
    info = gcp_endpoint.service_account_info()
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info["private_key"] = impostor.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = tmp_path / "impostor.json"
    path.write_text(json.dumps(info))
    registry = ProviderRegistry(ProviderConfig(gke_api_url=gcp_endpoint.url, gcp_credentials_file=path), clock=clock)

    with pytest.raises(ProviderError, match="Invalid JWT Signature") as raised:
        registry.access(gke_spec())
    assert gcp_endpoint.rejected_assertions == 1
    assert "PRIVATE KEY" not in str(raised.value)


def test_application_default_credentials(
    gcp_endpoint: FakeGoogle, credentials_file: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    gcp_endpoint.add_cluster(PROJECT, "europe-west1", "prod-gke")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials_file))
    registry = ProviderRegistry(ProviderConfig(gke_api_url=gcp_endpoint.url), clock=clock)

    assert registry.access(gke_spec()).token in gcp_endpoint.tokens


def test_missing_credentials_file(gcp_endpoint: FakeGoogle, tmp_path: Path, clock: FakeClock) -> None:
    config = ProviderConfig(gke_api_url=gcp_endpoint.url, gcp_credentials_file=tmp_path / "absent.json")

    with pytest.raises(ProviderError, match=r"absent\.json does not exist"):
        ProviderRegistry(config, clock=clock).identity(gke_spec())
