"""kubeconfig contexts against a real HTTPS API (tls_api.py): every credential form, refusals and errors."""

from __future__ import annotations

import base64
import json
import stat
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import hashes

from fleet.inventory.models import ClusterSpec
from fleet.providers import ProviderConfig, ProviderError, ProviderRegistry
from tests.fixtures.ports import free_port
from tests.providers.conftest import FakeClock
from tests.providers.tls_api import TlsApiServer, serve_tls_api

TOKEN = "s3cr3t-bearer-token-for-tests"


@pytest.fixture
def api() -> Iterator[TlsApiServer]:
    yield from serve_tls_api()


def spec(context: str = "ctx", path: str | None = None, name: str = "edge") -> ClusterSpec:
    provider: dict[str, Any] = {"type": "kubeconfig", "context": context}
    if path is not None:
        provider["path"] = path
    return ClusterSpec.model_validate({"name": name, "provider": provider})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_kubeconfig(path: Path, server: str, cluster: dict[str, Any] | None = None,
                     user: dict[str, Any] | None = None, context: str = "ctx") -> Path:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c1", "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": "u1", "user": user or {}}],
        "contexts": [{"name": context, "context": {"cluster": "c1", "user": "u1"}},
                     {"name": "other", "context": {"cluster": "c1", "user": "u1"}}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(document))
    return path


def registry_for(path: Path, clock: FakeClock | None = None, **config: Any) -> ProviderRegistry:
    return ProviderRegistry(ProviderConfig(default_kubeconfig=path, **config), clock=clock or FakeClock())


def test_token_and_ca_data(api: TlsApiServer, tmp_path: Path) -> None:
    api.valid_tokens.add(TOKEN)
    path = write_kubeconfig(tmp_path / "config", api.url, {"certificate-authority-data": b64(api.ca.pem)},
                            {"token": TOKEN})

    identity = registry_for(path).identity(spec())

    assert identity.kubernetes_version == "v1.32.0"
    assert identity.provider_id == f"kubeconfig://ctx@{api.url}"
    assert identity.endpoint == api.url
    assert identity.ca_fingerprint == "sha256:" + api.ca.cert.fingerprint(hashes.SHA256()).hex()
    assert api.seen == ["token"]


def test_token_file_and_ca_file_resolve_next_to_the_kubeconfig(
    api: TlsApiServer, tmp_path: Path, clock: FakeClock
) -> None:
    api.valid_tokens.update({TOKEN, "rotated-token"})
    home = tmp_path / "kube"
    home.mkdir()
    (home / "ca.crt").write_bytes(api.ca.pem)
    (home / "token").write_text(TOKEN + "\n")
    write_kubeconfig(home / "edge.yaml", api.url, {"certificate-authority": "ca.crt"}, {"tokenFile": "token"})
    registry = ProviderRegistry(ProviderConfig(kubeconfig_base_dir=tmp_path), clock=clock)
    edge = spec(path="kube/edge.yaml")

    assert registry.identity(edge).kubernetes_version == "v1.32.0"
    assert registry.access(edge).token == TOKEN
    assert registry.access(edge).ca_pem == api.ca.pem

    (home / "token").write_text("rotated-token")
    assert registry.access(edge).token == TOKEN  # cached
    clock.advance(seconds=61)
    assert registry.access(edge).token == "rotated-token"  # re-read after a minute


@pytest.mark.parametrize("form", ["data", "files"])
def test_client_certificate(api: TlsApiServer, tmp_path: Path, form: str) -> None:
    cert, key = api.client_cert("fleet-hub")
    if form == "data":
        user = {"client-certificate-data": b64(cert), "client-key-data": b64(key)}
    else:
        (tmp_path / "hub.crt").write_bytes(cert)
        (tmp_path / "hub.key").write_bytes(key)
        user = {"client-certificate": str(tmp_path / "hub.crt"), "client-key": "hub.key"}
    path = write_kubeconfig(tmp_path / "config", api.url, {"certificate-authority-data": b64(api.ca.pem)}, user)

    registry = registry_for(path)
    assert registry.identity(spec()).kubernetes_version == "v1.32.0"
    assert api.seen == ["cert:fleet-hub"]
    access = registry.access(spec())
    assert access.client_cert_pem == cert and access.client_key_pem == key
    assert "PRIVATE KEY" not in repr(access)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_insecure_skip_tls_verify(api: TlsApiServer, tmp_path: Path) -> None:
    api.valid_tokens.add(TOKEN)
    path = write_kubeconfig(tmp_path / "config", api.url, {"insecure-skip-tls-verify": True}, {"token": TOKEN})

    identity = registry_for(path).identity(spec())

    assert identity.kubernetes_version == "v1.32.0"
    assert identity.ca_fingerprint is None


def test_a_different_ca_fails_tls_with_a_clear_error(api: TlsApiServer, tmp_path: Path) -> None:
    from tests.providers.tls_api import Pki

    api.valid_tokens.add(TOKEN)
    stranger = Pki.create("someone-else")
    path = write_kubeconfig(tmp_path / "config", api.url, {"certificate-authority-data": b64(stranger.pem)},
                            {"token": TOKEN})

    with pytest.raises(ProviderError, match=r"TLS with https://127\.0\.0\.1") as raised:
        registry_for(path).identity(spec())
    assert "'edge'" in str(raised.value) and "'ctx'" in str(raised.value)
    assert api.seen == []


def test_rejected_token_names_the_context_and_hides_the_token(api: TlsApiServer, tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "config", api.url, {"certificate-authority-data": b64(api.ca.pem)},
                            {"token": TOKEN})

    with pytest.raises(ProviderError, match="HTTP 401") as raised:
        registry_for(path).identity(spec())
    assert f"context 'ctx' in {path}" in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_unreachable_api_leaves_the_version_unknown(tmp_path: Path) -> None:
    server = f"https://127.0.0.1:{free_port()}"
    path = write_kubeconfig(tmp_path / "config", server, {"insecure-skip-tls-verify": True}, {"token": TOKEN})

    identity = registry_for(path, request_timeout=2).identity(spec())

    assert identity.kubernetes_version is None
    assert identity.endpoint == server


def test_missing_context_lists_what_is_there(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "config", "https://127.0.0.1:6443", user={"token": TOKEN})

    with pytest.raises(ProviderError) as raised:
        registry_for(path).access(spec(context="prod"))
    message = str(raised.value)
    assert "'prod'" in message and str(path) in message and "ctx, other" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="does not exist"):
        registry_for(tmp_path / "absent").access(spec())


def test_invalid_yaml_does_not_quote_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(f"users:\n- name: u1\n  user:\n    token: {TOKEN}\n   bad: [\n")

    with pytest.raises(ProviderError, match="not valid YAML") as raised:
        registry_for(path).access(spec())
    assert TOKEN not in str(raised.value)
    # The parser's own error quotes the line; it must not ride along in a logged traceback.
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_kubeconfig_env_list_merges_first_wins(api: TlsApiServer, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    api.valid_tokens.add(TOKEN)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "ca.crt").write_bytes(api.ca.pem)
    first = tmp_path / "a" / "users.yaml"
    first.write_text(yaml.safe_dump({"users": [{"name": "u1", "user": {"token": TOKEN}}]}))
    second = write_kubeconfig(tmp_path / "b" / "clusters.yaml", api.url, {"certificate-authority": "ca.crt"},
                              {"token": "shadowed-by-the-first-file"})
    monkeypatch.setenv("KUBECONFIG", f"{first}:{tmp_path / 'missing.yaml'}:{second}")

    registry = ProviderRegistry(ProviderConfig(), clock=FakeClock())

    assert registry.access(spec()).token == TOKEN
    assert registry.identity(spec()).kubernetes_version == "v1.32.0"


# ---------------------------------------------------------------- exec and auth-provider


def exec_plugin(tmp_path: Path, token: str, expires_in: int | None) -> tuple[Path, Path]:
    """A real exec credential plugin; returns the script and the file counting its runs."""
    runs = tmp_path / "runs"
    script = tmp_path / "plugin.py"
    script.write_text(f"""#!{sys.executable}
import datetime, json, os, sys
with open({str(runs)!r}, "a") as f:
    f.write("run\\n")
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
status = {{"token": os.environ["PLUGIN_TOKEN"]}}
expires_in = {expires_in!r}
if expires_in is not None:
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=expires_in)
    status["expirationTimestamp"] = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": status}}))
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, runs


def exec_user(script: Path, token: str) -> dict[str, Any]:
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script),
                     "env": [{"name": "PLUGIN_TOKEN", "value": token}], "interactiveMode": "Never"}}


def test_exec_plugin_refused_by_default(api: TlsApiServer, tmp_path: Path) -> None:
    script, runs = exec_plugin(tmp_path, TOKEN, None)
    path = write_kubeconfig(tmp_path / "config", api.url, {"certificate-authority-data": b64(api.ca.pem)},
                            exec_user(script, TOKEN))

    with pytest.raises(ProviderError, match="exec plugin") as raised:
        registry_for(path).access(spec())
    message = str(raised.value)
    assert "'ctx'" in message and str(path) in message and "allowExec" in message
    assert not runs.exists()


def test_exec_plugin_allowed_runs_and_is_cached_until_expiry(
    api: TlsApiServer, tmp_path: Path, clock: FakeClock
) -> None:
    api.valid_tokens.add("plugin-token")
    script, runs = exec_plugin(tmp_path, "plugin-token", expires_in=600)
    path = write_kubeconfig(tmp_path / "config", api.url, {"certificate-authority-data": b64(api.ca.pem)},
                            exec_user(script, "plugin-token"))
    registry = registry_for(path, clock, allow_exec=True)

    assert registry.identity(spec()).kubernetes_version == "v1.32.0"
    access = registry.access(spec())
    assert access.token == "plugin-token"
    assert access.expires_at is not None
    assert timedelta(minutes=9) < access.expires_at - datetime.now(UTC) <= timedelta(minutes=10)
    assert runs.read_text().count("run") == 1

    clock.advance(minutes=10)
    assert registry.access(spec()) is not access
    assert runs.read_text().count("run") == 2

    registry.config.allow_exec = False  # fleet.yaml withdrew the permission: the cached credential goes too
    with pytest.raises(ProviderError, match="allowExec"):
        registry.access(spec())


def test_failing_exec_plugin_is_a_clear_error(tmp_path: Path) -> None:
    script = tmp_path / "broken.sh"
    script.write_text("#!/bin/sh\necho 'no credentials configured' >&2\nexit 3\n")
    script.chmod(0o755)
    path = write_kubeconfig(tmp_path / "config", "https://127.0.0.1:6443", user=exec_user(script, TOKEN))

    with pytest.raises(ProviderError, match="returned 3") as raised:
        registry_for(path, allow_exec=True).access(spec())
    assert "'ctx'" in str(raised.value)


def oidc_user(id_token: str) -> dict[str, Any]:
    return {"auth-provider": {"name": "oidc", "config": {
        "client-id": "kubernetes", "id-token": id_token, "idp-issuer-url": "https://issuer.invalid"}}}


def unsigned_jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def test_auth_provider_refused_by_default(api: TlsApiServer, tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "config", api.url, user=oidc_user(unsigned_jwt({"sub": "hub"})))

    with pytest.raises(ProviderError, match="auth-provider 'oidc'") as raised:
        registry_for(path).access(spec())
    assert str(path) in str(raised.value) and "'ctx'" in str(raised.value)
    assert "allowAuthProvider" in str(raised.value)


def test_auth_provider_allowed_uses_the_official_client(api: TlsApiServer, tmp_path: Path) -> None:
    expiry = datetime.now(UTC) + timedelta(hours=1)
    id_token = unsigned_jwt({"sub": "hub", "exp": int(expiry.timestamp())})
    api.valid_tokens.add(id_token)
    path = write_kubeconfig(tmp_path / "config", api.url, {"certificate-authority-data": b64(api.ca.pem)},
                            oidc_user(id_token))

    registry = registry_for(path, allow_auth_provider=True)

    assert registry.access(spec()).token == id_token
    assert registry.identity(spec()).kubernetes_version == "v1.32.0"
