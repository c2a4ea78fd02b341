"""Clusters reached through a kubeconfig context on the hub's machine.

Static credentials (token, tokenFile, client certificate) are read here.
`exec` plugins and `auth-provider` entries run code or talk to identity
providers on the hub's behalf, so they are refused unless fleet.yaml allows
them; when allowed, the official client's own machinery obtains the token.
Several files may be given (a $KUBECONFIG list): like kubectl, the first
definition of a name wins and relative paths resolve against the file that
holds the entry.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes.client
import urllib3.exceptions
import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.exec_provider import ExecProvider
from kubernetes.config.kube_config import ConfigNode, KubeConfigLoader

from fleet.inventory.models import ClusterSpec, KubeconfigProvider
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

PROVIDER = "kubeconfig"
# Static credentials are re-read this often so a rotated tokenFile or kubeconfig is picked up.
STATIC_REFRESH = timedelta(seconds=60)
# Plugin credentials without an expiry are reused this long before the plugin runs again.
PLUGIN_DEFAULT_REFRESH = timedelta(minutes=5)
PLUGIN_EXPIRY_MARGIN = timedelta(seconds=30)


@dataclass(frozen=True)
class Entry:
    """A named kubeconfig entry's body and the file it came from."""

    body: dict[str, Any]
    file: Path

    def path(self, value: str) -> Path:
        return (self.file.parent / os.path.expanduser(value)).resolve()


@dataclass(frozen=True)
class ResolvedContext:
    name: str
    files: tuple[Path, ...]
    context_file: Path
    cluster: Entry
    user: Entry | None

    @property
    def server(self) -> str:
        return str(self.cluster.body.get("server", "")).rstrip("/")

    @property
    def where(self) -> str:
        return f"context {self.name!r} in {self.context_file}"


def kubeconfig_files(
    provider: KubeconfigProvider, config: ProviderConfig, environ: Mapping[str, str] | None = None
) -> list[Path]:
    """Which files to read, in kubectl's order of precedence."""
    env = os.environ if environ is None else environ
    if provider.path:
        path = Path(os.path.expanduser(provider.path))
        if not path.is_absolute():
            path = (config.kubeconfig_base_dir or Path.cwd()) / path
        return [path]
    if config.default_kubeconfig is not None:
        return [Path(os.path.expanduser(config.default_kubeconfig))]
    listed = [Path(os.path.expanduser(part)) for part in env.get("KUBECONFIG", "").split(os.pathsep) if part]
    return listed or [Path.home() / ".kube" / "config"]


def load_context(cluster_name: str, files: list[Path], context: str) -> ResolvedContext:
    """Read the files and resolve `context` to its cluster and user entries."""
    documents: list[tuple[Path, dict[str, Any]]] = []
    for path in files:
        if not path.is_file():
            if len(files) == 1:
                raise ProviderError(cluster_name, PROVIDER, f"kubeconfig file {path} does not exist")
            continue  # kubectl skips missing entries of a $KUBECONFIG list
        documents.append((path, _read_yaml(cluster_name, path)))
    shown = ", ".join(str(path) for path in files)
    if not documents:
        raise ProviderError(cluster_name, PROVIDER, f"none of the kubeconfig files exist: {shown}")

    contexts = _named(cluster_name, documents, "contexts", "context")
    if context not in contexts:
        known = ", ".join(sorted(contexts)) or "none"
        raise ProviderError(
            cluster_name, PROVIDER, f"context {context!r} is not defined in {shown} (contexts there: {known})"
        )
    context_entry = contexts[context]
    where = f"context {context!r} in {context_entry.file}"
    cluster_ref = context_entry.body.get("cluster")
    clusters = _named(cluster_name, documents, "clusters", "cluster")
    if not isinstance(cluster_ref, str) or cluster_ref not in clusters:
        raise ProviderError(cluster_name, PROVIDER, f"{where} names cluster {cluster_ref!r}, which is not defined")
    user_ref = context_entry.body.get("user")
    user: Entry | None = None
    if user_ref:
        users = _named(cluster_name, documents, "users", "user")
        if not isinstance(user_ref, str) or user_ref not in users:
            raise ProviderError(cluster_name, PROVIDER, f"{where} names user {user_ref!r}, which is not defined")
        user = users[user_ref]
    resolved = ResolvedContext(
        name=context,
        files=tuple(path for path, _ in documents),
        context_file=context_entry.file,
        cluster=clusters[cluster_ref],
        user=user,
    )
    if not resolved.server:
        raise ProviderError(cluster_name, PROVIDER, f"{where}: its cluster {cluster_ref!r} has no server")
    return resolved


def _read_yaml(cluster_name: str, path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ProviderError(cluster_name, PROVIDER, f"cannot read kubeconfig file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        # The parser's message quotes the offending line, which may hold a token: give the position only.
        mark = getattr(err, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise ProviderError(cluster_name, PROVIDER, f"kubeconfig file {path} is not valid YAML{at}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ProviderError(cluster_name, PROVIDER, f"kubeconfig file {path} is not a kubeconfig (not a mapping)")
    return document


def _named(
    cluster_name: str, documents: list[tuple[Path, dict[str, Any]]], section: str, body_key: str
) -> dict[str, Entry]:
    found: dict[str, Entry] = {}
    for path, document in documents:
        items = document.get(section) or []
        if not isinstance(items, list):
            raise ProviderError(cluster_name, PROVIDER, f"kubeconfig file {path}: {section} is not a list")
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ProviderError(
                    cluster_name, PROVIDER, f"kubeconfig file {path}: an entry of {section} has no name"
                )
            body = item.get(body_key) or {}
            if not isinstance(body, dict):
                raise ProviderError(
                    cluster_name, PROVIDER, f"kubeconfig file {path}: {section} entry {item['name']!r} is malformed"
                )
            found.setdefault(item["name"], Entry(body, path))
    return found


def _file_or_data(
    cluster_name: str, resolved: ResolvedContext, entry: Entry, key: str, what: str
) -> bytes | None:
    """`<key>-data` (base64) or `<key>` (a file path), the way kubectl reads certificates."""
    data = entry.body.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=True)
        except (binascii.Error, ValueError):
            raise ProviderError(cluster_name, PROVIDER, f"{resolved.where}: {key}-data is not base64") from None
    file_name = entry.body.get(key)
    if file_name:
        path = entry.path(str(file_name))
        try:
            return path.read_bytes()
        except OSError as err:
            raise ProviderError(
                cluster_name, PROVIDER, f"{resolved.where}: cannot read the {what} file {path}: {err.strerror}"
            ) from None
    return None


@dataclass(frozen=True)
class UserCredential:
    token: str | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    expires_at: datetime | None = None
    from_plugin: bool = False


class KubeconfigFileProvider:
    def __init__(
        self, config: ProviderConfig, clock: Clock = utc_now, environ: Mapping[str, str] | None = None
    ) -> None:
        self._config = config
        self._clock = clock
        self._environ = environ
        self._cache = AccessCache(clock)

    def resolve(self, spec: ClusterSpec) -> ResolvedContext:
        provider = _kubeconfig(spec)
        return load_context(spec.name, kubeconfig_files(provider, self._config, self._environ), provider.context)

    def access(self, spec: ClusterSpec) -> ClusterAccess:
        provider = _kubeconfig(spec)
        # The hub may change the exec/auth-provider policy at runtime (fleet.yaml): a policy change
        # must not leave a plugin-made credential in use.
        version = (provider, self._config.allow_exec, self._config.allow_auth_provider)
        return self._cache.get(spec.name, version, lambda: self._fetch_access(spec))

    def identity(self, spec: ClusterSpec) -> ClusterIdentity:
        # Registration wants the truth: re-read the file rather than trust a cached access, so a
        # context that now points at another server shows up as an identity change.
        self._cache.invalidate(spec.name)
        resolved = self.resolve(spec)
        access = self.access(spec)
        return ClusterIdentity(
            provider_id=f"kubeconfig://{resolved.name}@{resolved.server}",
            endpoint=access.endpoint,
            ca_fingerprint=ca_fingerprint(access.ca_pem),
            kubernetes_version=self._server_version(spec, resolved, access),
        )

    def invalidate(self, cluster: str) -> None:
        self._cache.invalidate(cluster)

    # ------------------------------------------------------------ internals

    def _fetch_access(self, spec: ClusterSpec) -> tuple[ClusterAccess, datetime]:
        now = self._clock()
        resolved = self.resolve(spec)
        cluster = resolved.cluster
        insecure = bool(cluster.body.get("insecure-skip-tls-verify", False))
        ca_pem = _file_or_data(spec.name, resolved, cluster, "certificate-authority", "CA certificate")
        credential = self._user_credential(spec, resolved)
        access = ClusterAccess(
            endpoint=resolved.server,
            ca_pem=ca_pem,
            token=credential.token,
            client_cert_pem=credential.client_cert_pem,
            client_key_pem=credential.client_key_pem,
            insecure_skip_tls_verify=insecure,
            expires_at=credential.expires_at,
            tls_server_name=cluster.body.get("tls-server-name") or None,
        )
        if credential.expires_at is not None:
            refresh_at = max(now, credential.expires_at - PLUGIN_EXPIRY_MARGIN)
        else:
            refresh_at = now + (PLUGIN_DEFAULT_REFRESH if credential.from_plugin else STATIC_REFRESH)
        return access, refresh_at

    def _user_credential(self, spec: ClusterSpec, resolved: ResolvedContext) -> UserCredential:
        user = resolved.user
        if user is None:
            return UserCredential()
        body = user.body
        if "auth-provider" in body:
            name = (body.get("auth-provider") or {}).get("name", "?")
            if not self._config.allow_auth_provider:
                raise ProviderError(
                    spec.name,
                    PROVIDER,
                    f"{resolved.where} authenticates with auth-provider {name!r} (user defined in {user.file}); "
                    "the hub does not use auth providers unless fleet.yaml sets kubeconfig.allowAuthProvider: true",
                )
            return self._auth_provider_credential(spec, resolved, user)
        if "exec" in body:
            command = (body.get("exec") or {}).get("command", "?")
            if not self._config.allow_exec:
                raise ProviderError(
                    spec.name,
                    PROVIDER,
                    f"{resolved.where} authenticates with exec plugin {command!r} (user defined in {user.file}); "
                    "the hub runs no commands from kubeconfig files unless fleet.yaml sets "
                    "kubeconfig.allowExec: true",
                )
            return self._exec_credential(spec, resolved, user)
        token: str | None = None
        if body.get("token"):
            token = str(body["token"]).strip()
        elif body.get("tokenFile"):
            path = user.path(str(body["tokenFile"]))
            try:
                token = path.read_text().strip()
            except OSError as err:
                raise ProviderError(
                    spec.name, PROVIDER, f"{resolved.where}: cannot read tokenFile {path}: {err.strerror}"
                ) from None
            if not token:
                raise ProviderError(spec.name, PROVIDER, f"{resolved.where}: tokenFile {path} is empty")
        cert = _file_or_data(spec.name, resolved, user, "client-certificate", "client certificate")
        key = _file_or_data(spec.name, resolved, user, "client-key", "client key")
        if bool(cert) != bool(key):
            raise ProviderError(
                spec.name, PROVIDER, f"{resolved.where}: a client certificate needs both certificate and key"
            )
        if not token and not cert and ("username" in body or "password" in body):
            raise ProviderError(
                spec.name, PROVIDER, f"{resolved.where} uses basic authentication, which fleet does not support"
            )
        return UserCredential(token=token or None, client_cert_pem=cert, client_key_pem=key)

    def _exec_credential(self, spec: ClusterSpec, resolved: ResolvedContext, user: Entry) -> UserCredential:
        """Run the exec plugin through the official client's ExecProvider."""
        exec_config = user.body.get("exec") or {}
        try:
            status = ExecProvider(
                ConfigNode("exec", exec_config),
                str(user.file.parent),
                ConfigNode("cluster", _absolute_cluster(resolved)),
            ).run()
        except (ConfigException, OSError) as err:
            raise ProviderError(
                spec.name, PROVIDER, f"{resolved.where}: exec plugin {exec_config.get('command', '?')!r} failed: "
                f"{_short(err)}"
            ) from None
        if not isinstance(status, dict):
            raise ProviderError(spec.name, PROVIDER, f"{resolved.where}: exec plugin returned no status")
        expires_at = _parse_time(status.get("expirationTimestamp"))
        if status.get("token"):
            return UserCredential(token=str(status["token"]), expires_at=expires_at, from_plugin=True)
        if status.get("clientCertificateData") and status.get("clientKeyData"):
            return UserCredential(
                client_cert_pem=str(status["clientCertificateData"]).encode(),
                client_key_pem=str(status["clientKeyData"]).encode(),
                expires_at=expires_at,
                from_plugin=True,
            )
        raise ProviderError(
            spec.name, PROVIDER, f"{resolved.where}: exec plugin returned neither a token nor a client certificate"
        )

    def _auth_provider_credential(
        self, spec: ClusterSpec, resolved: ResolvedContext, user: Entry
    ) -> UserCredential:
        """Let the official client's KubeConfigLoader run the auth provider (gcp, oidc)."""
        config_dict = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "cluster", "cluster": _absolute_cluster(resolved)}],
            "users": [{"name": "user", "user": user.body}],
            "contexts": [{"name": resolved.name, "context": {"cluster": "cluster", "user": "user"}}],
            "current-context": resolved.name,
        }
        scratch = tempfile.mkdtemp(prefix="fleet-kubeconfig-")
        try:
            loader = KubeConfigLoader(
                config_dict,
                active_context=resolved.name,
                config_base_path=str(user.file.parent),
                temp_file_path=scratch,
            )
            configuration = kubernetes.client.Configuration()
            loader.load_and_set(configuration)
        except (ConfigException, OSError, ValueError) as err:
            raise ProviderError(spec.name, PROVIDER, f"{resolved.where}: auth provider failed: {_short(err)}") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        bearer = configuration.api_key.get("BearerToken")
        if not bearer:
            raise ProviderError(spec.name, PROVIDER, f"{resolved.where}: auth provider produced no token")
        expiry = loader.__dict__.get("expiry")
        return UserCredential(
            token=str(bearer).removeprefix("Bearer "),
            expires_at=expiry if isinstance(expiry, datetime) else None,
            from_plugin=True,
        )

    def _server_version(self, spec: ClusterSpec, resolved: ResolvedContext, access: ClusterAccess) -> str | None:
        """gitVersion from /version; None when the API cannot be reached right now."""
        try:
            with access.kubernetes_client(retries=0) as api:
                info = kubernetes.client.VersionApi(api).get_code(_request_timeout=self._config.request_timeout)
        except ApiException as err:
            if err.status in (401, 403):
                self.invalidate(spec.name)
                raise ProviderError(
                    spec.name,
                    PROVIDER,
                    f"{resolved.server} refused the credentials of {resolved.where} (HTTP {err.status})",
                ) from None
            raise ProviderError(
                spec.name, PROVIDER, f"GET {resolved.server}/version answered HTTP {err.status} {err.reason}"
            ) from None
        except urllib3.exceptions.HTTPError as err:
            reason = getattr(err, "reason", None) or err
            if isinstance(reason, urllib3.exceptions.SSLError):
                raise ProviderError(
                    spec.name, PROVIDER, f"TLS with {resolved.server} failed for {resolved.where}: {_short(reason)}"
                ) from None
            log.warning("cluster %s: %s is unreachable: %s", spec.name, resolved.server, type(reason).__name__)
            return None
        version = getattr(info, "git_version", None)
        return str(version) if version else None


def _absolute_cluster(resolved: ResolvedContext) -> dict[str, Any]:
    """The cluster entry with file paths made absolute, so it can be used away from its file."""
    cluster = dict(resolved.cluster.body)
    if cluster.get("certificate-authority") and not cluster.get("certificate-authority-data"):
        cluster["certificate-authority"] = str(resolved.cluster.path(str(cluster["certificate-authority"])))
    return cluster


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _short(err: BaseException, limit: int = 300) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kubeconfig(spec: ClusterSpec) -> KubeconfigProvider:
    if not isinstance(spec.provider, KubeconfigProvider):
        raise TypeError(f"cluster {spec.name!r} is not a kubeconfig cluster")
    return spec.provider
