"""EKS clusters: boto3 `eks:DescribeCluster` and an aws-iam-authenticator token.

The bearer token is the scheme EKS clusters verify: a presigned STS
`GetCallerIdentity` URL whose signature covers an `x-k8s-aws-id: <cluster>`
header, base64url-encoded behind `k8s-aws-v1.`. The cluster forwards the URL
to STS, so it is always signed for the real regional STS endpoint, never for
an endpoint override used to reach the AWS APIs.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import boto3
import botocore.exceptions
from botocore.config import Config

from fleet.inventory.models import AwsProvider, ClusterSpec
from fleet.providers.base import (
    Clock,
    ClusterAccess,
    ClusterIdentity,
    ProviderConfig,
    ProviderError,
    ca_fingerprint,
    utc_now,
)
from fleet.providers.cache import AccessCache

log = logging.getLogger(__name__)

K8S_AWS_ID_HEADER = "x-k8s-aws-id"
TOKEN_PREFIX = "k8s-aws-v1."
PRESIGNED_URL_EXPIRES_SECONDS = 60
# EKS accepts a token for 15 minutes after signing whatever X-Amz-Expires says;
# refreshing a minute early leaves room for clock skew and slow requests.
TOKEN_LIFETIME = timedelta(minutes=15)
TOKEN_REFRESH_AFTER = timedelta(minutes=14)

PROVIDER = "aws"
T = TypeVar("T")


@dataclass(frozen=True)
class EksCluster:
    arn: str
    endpoint: str
    ca_pem: bytes | None
    version: str | None


def eks_token(session: boto3.session.Session, region: str, cluster_name: str) -> str:
    """A bearer token for an EKS cluster, signed with `session`'s credentials."""
    sts = session.client(
        "sts",
        region_name=region,
        config=Config(signature_version="v4", ignore_configured_endpoint_urls=True),
    )

    # The header is not an STS parameter: carry it through the request context
    # and add it just before signing so it lands in X-Amz-SignedHeaders.
    def move_cluster_id_to_context(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if K8S_AWS_ID_HEADER in params:
            context[K8S_AWS_ID_HEADER] = params.pop(K8S_AWS_ID_HEADER)

    def add_cluster_id_header(request: Any, **_: Any) -> None:
        if K8S_AWS_ID_HEADER in request.context:
            request.headers[K8S_AWS_ID_HEADER] = request.context[K8S_AWS_ID_HEADER]

    sts.meta.events.register("provide-client-params.sts.GetCallerIdentity", move_cluster_id_to_context)
    sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_id_header)
    url = sts.generate_presigned_url(
        "get_caller_identity",
        Params={K8S_AWS_ID_HEADER: cluster_name},
        ExpiresIn=PRESIGNED_URL_EXPIRES_SECONDS,
        HttpMethod="GET",
    )
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")


def arn_account(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" else None


class EksProvider:
    def __init__(self, config: ProviderConfig, clock: Clock = utc_now) -> None:
        self._config = config
        self._clock = clock
        self._cache = AccessCache(clock)
        self._client_config = Config(
            connect_timeout=config.request_timeout,
            read_timeout=config.request_timeout,
            retries={"max_attempts": 3, "mode": "standard"},
        )

    def access(self, spec: ClusterSpec) -> ClusterAccess:
        provider = _aws(spec)
        return self._cache.get(spec.name, provider, lambda: self._fetch_access(spec, provider))

    def identity(self, spec: ClusterSpec) -> ClusterIdentity:
        provider = _aws(spec)
        session = self._session(spec, provider)
        cluster = self._describe(spec, provider, session)
        return ClusterIdentity(
            provider_id=cluster.arn,
            endpoint=cluster.endpoint,
            ca_fingerprint=ca_fingerprint(cluster.ca_pem),
            kubernetes_version=cluster.version,
        )

    def invalidate(self, cluster: str) -> None:
        self._cache.invalidate(cluster)

    # ------------------------------------------------------------ internals

    def _fetch_access(self, spec: ClusterSpec, provider: AwsProvider) -> tuple[ClusterAccess, datetime]:
        signed_at = self._clock()
        session = self._session(spec, provider)
        cluster = self._describe(spec, provider, session)
        token = self._guard(spec, "signing the EKS token", lambda: eks_token(session, provider.region, provider.cluster))
        access = ClusterAccess(
            endpoint=cluster.endpoint,
            ca_pem=cluster.ca_pem,
            token=token,
            expires_at=signed_at + TOKEN_LIFETIME,
        )
        log.debug("signed a new EKS token for cluster %s", spec.name)
        return access, signed_at + TOKEN_REFRESH_AFTER

    def _client(self, session: boto3.session.Session, service: str, region: str) -> Any:
        return session.client(
            service,
            region_name=region,
            endpoint_url=self._config.aws_endpoint_url,
            config=self._client_config,
        )

    def _session(self, spec: ClusterSpec, provider: AwsProvider) -> boto3.session.Session:
        """The hub's own credentials, or the role's when the cluster names one; account checked."""
        # A session per call: boto3 sessions are not thread-safe and this runs a few times an hour.
        session = boto3.session.Session(region_name=provider.region)
        sts = self._client(session, "sts", provider.region)
        if provider.roleArn:
            role_arn = provider.roleArn
            response = self._guard(
                spec,
                f"assuming role {role_arn}",
                lambda: sts.assume_role(RoleArn=role_arn, RoleSessionName=f"fleet-hub-{spec.name}"[:64]),
            )
            credentials = response["Credentials"]
            session = boto3.session.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                region_name=provider.region,
            )
            sts = self._client(session, "sts", provider.region)
        caller = self._guard(spec, "checking the hub's AWS identity", sts.get_caller_identity)
        if caller.get("Account") != provider.account:
            whose = f"role {provider.roleArn}" if provider.roleArn else "the hub's AWS credentials"
            raise ProviderError(
                spec.name,
                PROVIDER,
                f"{whose} act in account {caller.get('Account')}, but the cluster is declared in "
                f"account {provider.account}",
            )
        return session

    def _describe(self, spec: ClusterSpec, provider: AwsProvider, session: boto3.session.Session) -> EksCluster:
        eks = self._client(session, "eks", provider.region)
        response = self._guard(
            spec, f"describing EKS cluster {provider.cluster!r}", lambda: eks.describe_cluster(name=provider.cluster)
        )
        cluster = response.get("cluster") or {}
        arn = str(cluster.get("arn") or "")
        if arn_account(arn) != provider.account:
            raise ProviderError(
                spec.name,
                PROVIDER,
                f"EKS returned cluster {arn or '(no ARN)'}, which is not in the declared account {provider.account}",
            )
        status = cluster.get("status")
        endpoint = cluster.get("endpoint")
        if not endpoint:
            raise ProviderError(
                spec.name, PROVIDER, f"EKS cluster {provider.cluster!r} has no API endpoint yet (status {status})"
            )
        ca_data = (cluster.get("certificateAuthority") or {}).get("data")
        try:
            ca_pem = base64.b64decode(ca_data, validate=True) if ca_data else None
        except ValueError:
            raise ProviderError(
                spec.name, PROVIDER, f"EKS cluster {provider.cluster!r} has certificate authority data that is not base64"
            ) from None
        return EksCluster(
            arn=arn,
            endpoint=(endpoint if "://" in endpoint else f"https://{endpoint}").rstrip("/"),
            ca_pem=ca_pem,
            version=cluster.get("version"),
        )

    def _guard(self, spec: ClusterSpec, doing: str, call: Callable[[], T]) -> T:
        """Run an AWS call, turning boto errors into a ProviderError that names the cluster."""
        provider = _aws(spec)
        try:
            return call()
        except botocore.exceptions.ClientError as err:
            error = err.response.get("Error", {})
            code = error.get("Code", "Unknown")
            message = error.get("Message", "")
            if code == "ResourceNotFoundException":
                problem = (
                    f"EKS cluster {provider.cluster!r} was not found in account {provider.account}, "
                    f"region {provider.region}"
                )
            else:
                problem = f"{doing} failed: {code}: {message}".rstrip(": ")
            raise ProviderError(spec.name, PROVIDER, problem) from err
        except botocore.exceptions.NoCredentialsError as err:
            raise ProviderError(
                spec.name,
                PROVIDER,
                f"{doing} failed: the hub has no AWS credentials (environment, shared config or instance role)",
            ) from err
        except botocore.exceptions.BotoCoreError as err:
            raise ProviderError(spec.name, PROVIDER, f"{doing} failed: {err}") from err


def _aws(spec: ClusterSpec) -> AwsProvider:
    if not isinstance(spec.provider, AwsProvider):
        raise TypeError(f"cluster {spec.name!r} is not an EKS cluster")
    return spec.provider
