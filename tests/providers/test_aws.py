"""EKS against a real moto_server: describe, account checks and the aws-iam-authenticator token."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from fleet.inventory.models import ClusterSpec
from fleet.providers import ProviderConfig, ProviderError, ProviderRegistry
from tests.fixtures.aws import MotoEndpoint
from tests.providers.conftest import FakeClock

ACCOUNT = "123456789012"


def eks_spec(cluster: str = "prod-eks", account: str = ACCOUNT, region: str = "us-east-1",
             role_arn: str | None = None, name: str = "prod") -> ClusterSpec:
    provider = {"type": "aws", "account": account, "region": region, "cluster": cluster}
    if role_arn:
        provider["roleArn"] = role_arn
    return ClusterSpec.model_validate({"name": name, "provider": provider})


def decode_token(token: str) -> str:
    assert token.startswith("k8s-aws-v1.")
    encoded = token.removeprefix("k8s-aws-v1.")
    assert "=" not in encoded, "the token is base64url without padding"
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()


def sigv4_presigned_signature_valid(url: str, headers: dict[str, str], secret_key: str) -> bool:
    """Recompute a presigned SigV4 signature from scratch (as STS would) and compare."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    signature = params.pop("X-Amz-Signature")

    def encode(value: str) -> str:
        return quote(value, safe="-_.~")

    canonical_query = "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(params.items()))
    signed_headers = params["X-Amz-SignedHeaders"].split(";")
    available = {"host": parts.netloc, **{k.lower(): v for k, v in headers.items()}}
    canonical_headers = "".join(f"{name}:{available[name].strip()}\n" for name in signed_headers)
    canonical_request = "\n".join([
        "GET", parts.path or "/", canonical_query, canonical_headers, ";".join(signed_headers),
        hashlib.sha256(b"").hexdigest(),
    ])
    _access_key, date, region, service, terminator = params["X-Amz-Credential"].split("/")
    scope = f"{date}/{region}/{service}/{terminator}"
    string_to_sign = "\n".join([
        "AWS4-HMAC-SHA256", params["X-Amz-Date"], scope, hashlib.sha256(canonical_request.encode()).hexdigest()
    ])
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, service, terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


@pytest.fixture
def registry(moto_endpoint: MotoEndpoint, clock: FakeClock) -> ProviderRegistry:
    return ProviderRegistry(ProviderConfig(aws_endpoint_url=moto_endpoint.url), clock=clock)


def test_identity_comes_from_describe_cluster(moto_endpoint: MotoEndpoint, registry: ProviderRegistry) -> None:
    created = moto_endpoint.create_eks_cluster("prod-eks", version="1.30")

    identity = registry.identity(eks_spec())

    assert identity.provider_id == f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/prod-eks" == created["arn"]
    assert identity.endpoint == created["endpoint"].rstrip("/")
    assert identity.endpoint.startswith("https://")
    # moto's CA data is random base64, not a certificate: the fingerprint then covers the decoded bytes.
    ca_bytes = base64.b64decode(created["certificateAuthority"]["data"])
    assert identity.ca_fingerprint == "sha256:" + hashlib.sha256(ca_bytes).hexdigest()
    assert identity.kubernetes_version == "1.30"


def test_access_token_is_a_presigned_get_caller_identity(
    moto_endpoint: MotoEndpoint, registry: ProviderRegistry
) -> None:
    created = moto_endpoint.create_eks_cluster("prod-eks")

    access = registry.access(eks_spec())

    assert access.endpoint == created["endpoint"].rstrip("/")
    assert access.ca_pem == base64.b64decode(created["certificateAuthority"]["data"])
    assert access.token is not None
    url = decode_token(access.token)
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    # Signed for the real regional STS endpoint, never the moto override: the cluster calls that URL.
    assert parts.scheme == "https" and parts.netloc == "sts.us-east-1.amazonaws.com"
    assert params["Action"] == "GetCallerIdentity"
    assert params["Version"] == "2011-06-15"
    assert params["X-Amz-Expires"] == "60"
    assert "x-k8s-aws-id" in params["X-Amz-SignedHeaders"].split(";")
    assert params["X-Amz-Credential"].startswith("testing/")
    assert sigv4_presigned_signature_valid(url, {"x-k8s-aws-id": "prod-eks"}, "testing")
    # The cluster name really is covered by the signature.
    assert not sigv4_presigned_signature_valid(url, {"x-k8s-aws-id": "other-cluster"}, "testing")
    assert "k8s-aws-v1" not in repr(access) and access.token not in repr(access)


def test_token_uses_the_clusters_region(moto_endpoint: MotoEndpoint, registry: ProviderRegistry) -> None:
    moto_endpoint.create_eks_cluster("eu-eks", region="eu-west-1")

    access = registry.access(eks_spec(cluster="eu-eks", region="eu-west-1"))

    url = decode_token(access.token or "")
    assert urlsplit(url).netloc == "sts.eu-west-1.amazonaws.com"
    assert "/eu-west-1/sts/aws4_request" in dict(parse_qsl(urlsplit(url).query))["X-Amz-Credential"]


def test_token_is_cached_and_refreshed_before_fifteen_minutes(
    moto_endpoint: MotoEndpoint, registry: ProviderRegistry, clock: FakeClock
) -> None:
    moto_endpoint.create_eks_cluster("prod-eks")
    spec = eks_spec()
    start = clock.now

    first = registry.access(spec)
    assert first.expires_at == start + timedelta(minutes=15)
    clock.advance(minutes=13, seconds=59)
    assert registry.access(spec) is first

    clock.advance(seconds=1)  # 14 minutes after signing: one minute of margin left
    second = registry.access(spec)
    assert second is not first
    assert second.expires_at is not None and first.expires_at is not None
    assert second.expires_at > first.expires_at
    assert registry.access(spec) is second


def test_role_is_assumed_before_describing(moto_endpoint: MotoEndpoint, registry: ProviderRegistry) -> None:
    moto_endpoint.create_eks_cluster("prod-eks")

    access = registry.access(eks_spec(role_arn=f"arn:aws:iam::{ACCOUNT}:role/fleet-hub"))

    params = dict(parse_qsl(urlsplit(decode_token(access.token or "")).query))
    # Signed with the role's temporary credentials, not the hub's own key.
    assert not params["X-Amz-Credential"].startswith("testing/")
    assert params.get("X-Amz-Security-Token")


def test_account_mismatch_is_refused(moto_endpoint: MotoEndpoint, registry: ProviderRegistry) -> None:
    moto_endpoint.create_eks_cluster("prod-eks")

    with pytest.raises(ProviderError) as declared_elsewhere:
        registry.identity(eks_spec(account="999999999999"))
    message = str(declared_elsewhere.value)
    assert "'prod'" in message and "999999999999" in message and ACCOUNT in message

    with pytest.raises(ProviderError) as role_elsewhere:
        registry.access(eks_spec(role_arn="arn:aws:iam::111111111111:role/fleet-hub"))
    assert "111111111111" in str(role_elsewhere.value) and ACCOUNT in str(role_elsewhere.value)


def test_missing_cluster_is_a_clear_error(moto_endpoint: MotoEndpoint, registry: ProviderRegistry) -> None:
    with pytest.raises(ProviderError) as raised:
        registry.access(eks_spec(cluster="nope"))
    message = str(raised.value)
    assert "'prod'" in message and "'nope'" in message and "not found" in message
    assert "us-east-1" in message and ACCOUNT in message


def test_endpoint_from_boto3_environment(moto_endpoint: MotoEndpoint, clock: FakeClock) -> None:
    moto_endpoint.create_eks_cluster("prod-eks")
    registry = ProviderRegistry(ProviderConfig(), clock=clock)  # AWS_ENDPOINT_URL comes from the env

    assert registry.identity(eks_spec()).provider_id.endswith(":cluster/prod-eks")


def test_no_credentials_is_a_clear_error(
    moto_endpoint: MotoEndpoint, registry: ProviderRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    with pytest.raises(ProviderError, match="no AWS credentials"):
        registry.identity(eks_spec())
