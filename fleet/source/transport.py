"""How git reaches the fleet repo: URL parsing, credential handling and the fetch environment.

Pure functions only. Credentials never go into a URL, a command line or a
config file: the https token travels as an `Authorization` header set through
`GIT_CONFIG_*` environment variables (readable only by our own user), and the
URL given to git is stripped of any `user:password@`.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from fleet.source.errors import SourceError

Transport = Literal["file", "http", "https", "ssh", "git"]

# Transports git may use for the fleet repo. `ext::` and `fd::` run arbitrary
# commands and are never allowed.
ALLOWED_PROTOCOLS = "file:git:http:https:ssh"

_SCHEMES: dict[str, Transport] = {
    "file": "file",
    "http": "http",
    "https": "https",
    "ssh": "ssh",
    "git+ssh": "ssh",
    "ssh+git": "ssh",
    "git": "git",
}
_SCHEME_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_REMOTE_HELPER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_USERINFO_IN_TEXT = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]+@")
_REDACTED = "***"

# The user name sent with a bare token. GitHub (PATs and app tokens), Gitea and
# Azure DevOps accept any name; GitLab OAuth tokens want `oauth2@` and
# Bitbucket access tokens `x-token-auth@`, which the URL can carry.
DEFAULT_TOKEN_USER = "x-access-token"


@dataclass(frozen=True)
class Remote:
    """A fleet repo location, split into what git is given and what stays with us."""

    url: str  # credential-free; safe to pass to git and to show
    transport: Transport
    username: str | None = None
    password: str | None = None  # from a `user:password@` URL; never shown

    @property
    def display(self) -> str:
        return self.url


def parse_remote(url: str) -> Remote:
    """Classify `url` the way git does and strip credentials from it."""
    url = url.strip()
    if not url:
        raise SourceError("the fleet repo URL is empty")
    if url.startswith("-"):
        raise SourceError("the fleet repo URL must not start with '-'")
    match = _SCHEME_URL.match(url)
    if match:
        scheme = match.group(1).lower()
        transport = _SCHEMES.get(scheme)
        if transport is None:
            raise SourceError(
                f"unsupported URL scheme {scheme!r} for the fleet repo (use https, ssh or file)"
            )
        return _split_credentials(url, transport)
    if _REMOTE_HELPER.match(url):
        helper = url.split("::", 1)[0]
        raise SourceError(f"remote helper {helper!r}:: is not allowed for the fleet repo")
    if _is_scp_like(url):
        host = url.split(":", 1)[0].rpartition("@")[2]
        if host.startswith("-"):
            raise SourceError("the fleet repo host must not start with '-'")
        return Remote(url=url, transport="ssh")
    return Remote(url=url, transport="file")


def _is_scp_like(url: str) -> bool:
    # git: `[user@]host:path` when a colon comes before any slash.
    colon = url.find(":")
    if colon <= 0:
        return False
    slash = url.find("/")
    return slash == -1 or colon < slash


def _split_credentials(url: str, transport: Transport) -> Remote:
    parts = urlsplit(url)
    if (parts.hostname or "").startswith("-"):
        raise SourceError("the fleet repo host must not start with '-'")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return Remote(url=url, transport=transport)
    user, colon, password = userinfo.partition(":")
    username = unquote(user) or None
    secret = unquote(password) if colon else None
    # An ssh user name is not a secret and selects the account; keep it.
    netloc = f"{user}@{hostport}" if transport == "ssh" and username else hostport
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return Remote(url=clean, transport=transport, username=username, password=secret)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove `user:pass@` from any URL in `text` and every known secret value."""
    cleaned = _USERINFO_IN_TEXT.sub(r"\1", text)
    for secret in secrets:
        if secret:
            cleaned = cleaned.replace(secret, _REDACTED)
    return cleaned


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def authorization_header(remote: Remote, https_token: str | None) -> str | None:
    """The `Authorization` header for an http(s) remote, or None when it needs none."""
    if remote.transport not in ("http", "https"):
        if https_token:
            raise SourceError(f"an https token was given, but {remote.display} is not an http(s) URL")
        return None
    secret = https_token or remote.password
    if not secret:
        return None
    if remote.transport == "http" and not _is_loopback(urlsplit(remote.url).hostname):
        raise SourceError(f"refusing to send credentials over plain http to {remote.display}; use https")
    user = remote.username or DEFAULT_TOKEN_USER
    encoded = base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")
    return f"Authorization: Basic {encoded}"


def ssh_command(ssh_key_file: Path | None, ssh_known_hosts: Path | None, connect_timeout: float) -> str:
    """`GIT_SSH_COMMAND`: never prompts, never accepts an unknown host key."""
    options = [
        "ssh",
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"ConnectTimeout={max(1, int(connect_timeout))}",
    ]  # fmt: skip
    if ssh_key_file is not None:
        _no_whitespace(ssh_key_file, "ssh key file")
        options += ["-i", str(ssh_key_file), "-o", "IdentitiesOnly=yes"]
    if ssh_known_hosts is not None:
        _no_whitespace(ssh_known_hosts, "ssh known_hosts file")
        options += [
            "-o", f"UserKnownHostsFile={ssh_known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null",
        ]  # fmt: skip
    return shlex.join(options)


def _no_whitespace(path: Path, what: str) -> None:
    # ssh splits file lists in -o options on whitespace.
    if any(ch.isspace() for ch in str(path)):
        raise SourceError(f"the {what} path must not contain whitespace: {path}")


def fetch_config(remote: Remote, auth_header: str | None) -> list[tuple[str, str]]:
    """Config for the fetch process: strict object checks, packs kept as received, no helpers or hooks."""
    config = [
        # Reject malformed objects (tree entries like `..` or `.git`, bad modes) at the door.
        ("transfer.fsckObjects", "true"),
        ("fetch.fsckObjects", "true"),
        # Keep incoming data as a pack written while it streams, so its size can be watched.
        ("fetch.unpackLimit", "1"),
        ("transfer.unpackLimit", "1"),
        ("gc.auto", "0"),
        ("maintenance.auto", "false"),
        ("fetch.recurseSubmodules", "false"),
        ("submodule.recurse", "false"),
        ("credential.helper", ""),
        ("core.hooksPath", "/dev/null"),
        ("protocol.version", "2"),
    ]
    if auth_header is not None:
        # Scoped to this remote's URL so the header is not sent anywhere else.
        config.append((f"http.{remote.url}.extraHeader", auth_header))
    return config


def fetch_environment(
    base: Mapping[str, str],
    remote: Remote,
    *,
    https_token: str | None,
    ssh_key_file: Path | None,
    ssh_known_hosts: Path | None,
    connect_timeout: float,
) -> dict[str, str]:
    """The full environment for `git fetch`; inherited GIT_* variables are dropped."""
    env = {key: value for key, value in base.items() if not key.startswith("GIT_")}
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "true",
            "SSH_ASKPASS": "true",
            "SSH_ASKPASS_REQUIRE": "never",
            "GCM_INTERACTIVE": "never",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS,
            "GIT_PROTOCOL_FROM_USER": "0",
            "GIT_SSH_VARIANT": "ssh",
            "GIT_SSH_COMMAND": ssh_command(ssh_key_file, ssh_known_hosts, connect_timeout),
            "LC_ALL": "C",
        }
    )
    config = fetch_config(remote, authorization_header(remote, https_token))
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env
