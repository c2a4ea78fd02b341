"""GKE clusters: google-auth credentials and the GKE REST API.

The hub's Google identity (a service-account file or Application Default
Credentials) both reads the cluster resource and authenticates to the
cluster: GKE accepts the OAuth access token as the bearer token.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import google.auth
import google.auth.credentials
import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.oauth2 import service_account

from fleet.inventory.models import ClusterSpec, GcpProvider
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

PROVIDER = "gcp"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
# Refresh this long before the access token expires (google-auth itself uses 3m45s).
REFRESH_MARGIN = timedelta(minutes=5)
# Credentials that report no expiry are still re-read this often.
UNKNOWN_EXPIRY_REFRESH = timedelta(minutes=5)


class _TimeoutRequest(google.auth.transport.requests.Request):
    """google-auth's transport with the hub's timeout applied to token requests too."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                 timeout: Any = None, **kwargs: Any) -> Any:
        return super().__call__(url, method=method, body=body, headers=headers,
                                timeout=timeout or self._timeout, **kwargs)


def gke_resource_name(provider: GcpProvider) -> str:
    return f"projects/{provider.project}/locations/{provider.location}/clusters/{provider.cluster}"


class GkeProvider:
    def __init__(self, config: ProviderConfig, clock: Clock = utc_now) -> None:
        self._config = config
        self._clock = clock
        self._cache = AccessCache(clock)
        self._credentials: google.auth.credentials.Credentials | None = None
        self._credentials_lock = threading.Lock()
        self._force_refresh = False

    def access(self, spec: ClusterSpec) -> ClusterAccess:
        provider = _gcp(spec)
        return self._cache.get(spec.name, provider, lambda: self._fetch_access(spec, provider))

    def identity(self, spec: ClusterSpec) -> ClusterIdentity:
        provider = _gcp(spec)
        credentials, _ = self._fresh_credentials(spec)
        cluster = self._describe(spec, provider, credentials)
        endpoint, ca_pem = self._endpoint_and_ca(spec, cluster)
        return ClusterIdentity(
            provider_id=f"//container.googleapis.com/{gke_resource_name(provider)}",
            endpoint=endpoint,
            ca_fingerprint=ca_fingerprint(ca_pem),
            kubernetes_version=cluster.get("currentMasterVersion"),
        )

    def invalidate(self, cluster: str) -> None:
        """Forget the cluster's access and fetch a new token next time (the cluster refused this one)."""
        self._cache.invalidate(cluster)
        with self._credentials_lock:
            self._force_refresh = True

    # ------------------------------------------------------------ internals

    def _fetch_access(self, spec: ClusterSpec, provider: GcpProvider) -> tuple[ClusterAccess, datetime]:
        credentials, _ = self._fresh_credentials(spec)
        cluster = self._describe(spec, provider, credentials)
        endpoint, ca_pem = self._endpoint_and_ca(spec, cluster)
        # Read after describing: the session may have refreshed the token on a 401.
        with self._credentials_lock:
            token, expires_at = credentials.token, _aware(credentials.expiry)
        if not token:
            raise ProviderError(spec.name, PROVIDER, "Google credentials produced no access token")
        access = ClusterAccess(endpoint=endpoint, ca_pem=ca_pem, token=token, expires_at=expires_at)
        refresh_at = expires_at - REFRESH_MARGIN if expires_at else self._clock() + UNKNOWN_EXPIRY_REFRESH
        return access, refresh_at

    def _fresh_credentials(
        self, spec: ClusterSpec
    ) -> tuple[google.auth.credentials.Credentials, datetime | None]:
        """The hub's Google credentials with an access token valid for a while yet."""
        with self._credentials_lock:
            credentials = self._credentials or self._load_credentials(spec)
            self._credentials = credentials
            expiry = _aware(credentials.expiry)
            due = expiry is None or self._clock() >= expiry - REFRESH_MARGIN
            if not credentials.token or due or self._force_refresh:
                try:
                    credentials.refresh(_TimeoutRequest(self._config.request_timeout))
                except google.auth.exceptions.RefreshError as err:
                    raise ProviderError(
                        spec.name, PROVIDER, f"getting a Google access token failed: {_first_arg(err)}"
                    ) from None
                except google.auth.exceptions.TransportError as err:
                    raise ProviderError(
                        spec.name, PROVIDER, f"cannot reach the Google token endpoint: {_first_arg(err)}"
                    ) from None
                expiry = _aware(credentials.expiry)
                self._force_refresh = False
                log.debug("refreshed the hub's Google access token (for cluster %s)", spec.name)
            return credentials, expiry

    def _load_credentials(self, spec: ClusterSpec) -> google.auth.credentials.Credentials:
        path = self._config.gcp_credentials_file
        try:
            if path is not None:
                return service_account.Credentials.from_service_account_file(
                    str(path), scopes=SCOPES
                )
            credentials, _project = google.auth.default(scopes=SCOPES)
            return credentials
        except FileNotFoundError:
            raise ProviderError(spec.name, PROVIDER, f"Google credentials file {path} does not exist") from None
        except google.auth.exceptions.DefaultCredentialsError as err:
            raise ProviderError(
                spec.name, PROVIDER, f"no usable Google credentials (Application Default Credentials): {err}"
            ) from None
        except (ValueError, KeyError) as err:
            # Parsing errors may quote the file; name the file and the kind of problem only.
            raise ProviderError(
                spec.name, PROVIDER, f"Google credentials file {path} is not a valid service-account key "
                f"({type(err).__name__})"
            ) from None

    def _describe(
        self, spec: ClusterSpec, provider: GcpProvider, credentials: google.auth.credentials.Credentials
    ) -> dict[str, Any]:
        name = gke_resource_name(provider)
        url = f"{self._config.gke_api_url.rstrip('/')}/v1/{name}"
        session = google.auth.transport.requests.AuthorizedSession(
            credentials, auth_request=_TimeoutRequest(self._config.request_timeout)
        )
        try:
            response = session.get(url, timeout=self._config.request_timeout)
        except (requests.RequestException, google.auth.exceptions.GoogleAuthError) as err:
            raise ProviderError(spec.name, PROVIDER, f"cannot reach the GKE API at {url}: {type(err).__name__}") from None
        finally:
            session.close()
        if response.status_code == 404:
            raise ProviderError(spec.name, PROVIDER, f"GKE cluster {name} was not found")
        if response.status_code != 200:
            raise ProviderError(
                spec.name,
                PROVIDER,
                f"GKE API answered {response.status_code} for {name}: {_google_error_message(response)}",
            )
        try:
            body = response.json()
        except ValueError:
            raise ProviderError(spec.name, PROVIDER, f"GKE API returned a non-JSON answer for {name}") from None
        if not isinstance(body, dict):
            raise ProviderError(spec.name, PROVIDER, f"GKE API returned an unexpected answer for {name}")
        return body

    def _endpoint_and_ca(self, spec: ClusterSpec, cluster: dict[str, Any]) -> tuple[str, bytes | None]:
        endpoint = cluster.get("endpoint")
        if not endpoint:
            raise ProviderError(
                spec.name, PROVIDER, f"GKE cluster has no API endpoint yet (status {cluster.get('status')})"
            )
        ca_data = (cluster.get("masterAuth") or {}).get("clusterCaCertificate")
        try:
            ca_pem = base64.b64decode(ca_data, validate=True) if ca_data else None
        except (binascii.Error, ValueError):
            raise ProviderError(spec.name, PROVIDER, "GKE cluster CA certificate is not base64") from None
        endpoint = str(endpoint)
        return (endpoint if "://" in endpoint else f"https://{endpoint}").rstrip("/"), ca_pem


def _aware(moment: datetime | None) -> datetime | None:
    # google-auth keeps expiry as naive UTC.
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _first_arg(err: Exception) -> str:
    return str(err.args[0]) if err.args else type(err).__name__


def _google_error_message(response: requests.Response) -> str:
    try:
        error = response.json().get("error") or {}
        return str(error.get("message") or error.get("status") or response.reason)
    except (ValueError, AttributeError):
        return str(response.reason)


def _gcp(spec: ClusterSpec) -> GcpProvider:
    if not isinstance(spec.provider, GcpProvider):
        raise TypeError(f"cluster {spec.name!r} is not a GKE cluster")
    return spec.provider
