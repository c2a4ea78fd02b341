"""Transports: token-authenticated smart HTTP (real git http-backend), ssh through GIT_SSH_COMMAND, URL handling."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from fleet.source import SourceError
from fleet.source.transport import authorization_header, parse_remote, redact, ssh_command
from tests.fixtures.gitrepo import FleetRepo
from tests.source.conftest import SourceFactory, relaying_ssh
from tests.source.gitserver import GitHttpServer


def _cache_files_text(cache: Path) -> str:
    texts = []
    for path in cache.rglob("*"):
        if path.is_file() and "objects" not in path.parts:
            texts.append(path.read_text(errors="replace"))
    return "\n".join(texts)


# Plain HTTP on loopback stands in for https: the token path (Authorization header
# through GIT_CONFIG_* variables) is the same; TLS itself is not exercised.
def test_http_fetch_with_token(
    origin: FleetRepo, git_http_server: GitHttpServer, make_source: SourceFactory
) -> None:
    source = make_source(git_http_server.url(), https_token=git_http_server.token)
    revision = source.fetch()

    assert revision.sha == origin.head()
    assert git_http_server.authorized_requests > 0
    assert git_http_server.token not in _cache_files_text(source.repo_path)
    assert git_http_server.token not in (source.repo_path / "config").read_text()
    newer = origin.commit({"clusters/b.yaml": "name: b\n"})
    assert source.fetch().sha == newer


def test_http_fetch_with_credentials_in_the_url_keeps_them_out_of_config_and_errors(
    origin: FleetRepo, git_http_server: GitHttpServer, make_source: SourceFactory
) -> None:
    token = git_http_server.token
    url = git_http_server.url().replace("http://", f"http://x-access-token:{token}@")
    source = make_source(url)
    assert source.url == git_http_server.url()
    assert source.fetch().sha == origin.head()
    assert token not in _cache_files_text(source.repo_path)


def test_wrong_token_fails_without_prompting_and_without_leaking(
    origin: FleetRepo, git_http_server: GitHttpServer, make_source: SourceFactory
) -> None:
    wrong = "wr0ng-t0ken-value"
    source = make_source(git_http_server.url(), https_token=wrong, timeout=10)
    with pytest.raises(SourceError) as caught:
        source.fetch()
    message = str(caught.value)
    assert "failed" in message
    assert wrong not in message and git_http_server.token not in message
    assert git_http_server.refused_requests > 0
    assert wrong not in _cache_files_text(source.repo_path)


def test_missing_token_fails_without_prompting(
    origin: FleetRepo, git_http_server: GitHttpServer, make_source: SourceFactory
) -> None:
    source = make_source(git_http_server.url(), timeout=10)
    with pytest.raises(SourceError, match="failed"):
        source.fetch()


def test_ssh_fetch_uses_the_configured_key_and_known_hosts(
    origin: FleetRepo, make_source: SourceFactory, fake_ssh_dir: Path, tmp_path: Path
) -> None:
    # No sshd on the test machine: a fake `ssh` records its arguments and runs
    # git-upload-pack locally, so the fetch still goes through git's ssh transport.
    log = tmp_path / "ssh-args"
    relaying_ssh(fake_ssh_dir, log)
    key = tmp_path / "deploy_key"
    key.write_text("not a real key: the fake ssh does not read it\n")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    source = make_source(
        f"ssh://git@git.fleet.invalid:2222{origin.remote_path}", ssh_key_file=key, ssh_known_hosts=known_hosts
    )

    assert source.fetch().sha == origin.head()

    args = log.read_text().splitlines()
    joined = " ".join(args)
    assert f"-i {key}" in joined
    for option in (
        "IdentitiesOnly=yes",
        f"UserKnownHostsFile={known_hosts}",
        "StrictHostKeyChecking=yes",
        "BatchMode=yes",
    ):
        assert option in args
    assert "-p" in args and args[args.index("-p") + 1] == "2222"
    assert "git@git.fleet.invalid" in args
    assert args[-1] == f"git-upload-pack '{origin.remote_path}'"


def test_scp_like_ssh_url(
    origin: FleetRepo, make_source: SourceFactory, fake_ssh_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "ssh-args"
    relaying_ssh(fake_ssh_dir, log)
    source = make_source(f"git@git.fleet.invalid:{origin.remote_path}")
    assert source.fetch().sha == origin.head()
    assert "git@git.fleet.invalid" in log.read_text().splitlines()


# ---------------------------------------------------------------- pure URL handling


@pytest.mark.parametrize(
    ("url", "transport", "clean"),
    [
        ("https://user:pw@git.example.com/org/fleet.git", "https", "https://git.example.com/org/fleet.git"),
        ("https://git.example.com:8443/fleet.git", "https", "https://git.example.com:8443/fleet.git"),
        ("ssh://git:pw@git.example.com/fleet.git", "ssh", "ssh://git@git.example.com/fleet.git"),
        ("git@github.com:org/fleet.git", "ssh", "git@github.com:org/fleet.git"),
        ("file:///srv/fleet.git", "file", "file:///srv/fleet.git"),
        ("/srv/fleet.git", "file", "/srv/fleet.git"),
        ("./relative/fleet.git", "file", "./relative/fleet.git"),
    ],
)
def test_parse_remote(url: str, transport: str, clean: str) -> None:
    remote = parse_remote(url)
    assert (remote.transport, remote.url) == (transport, clean)


def test_parse_remote_keeps_credentials_aside() -> None:
    remote = parse_remote("https://bot:p%40ss@git.example.com/fleet.git")
    assert (remote.username, remote.password) == ("bot", "p@ss")
    assert "p@ss" not in remote.display and "bot" not in remote.display


@pytest.mark.parametrize(
    "url", ["ext::sh -c id", "fd::3", "ftp://x/y", "-oProxyCommand=id", "ssh://-oProxyCommand=x/y"]
)
def test_dangerous_urls_are_refused(url: str) -> None:
    with pytest.raises(SourceError):
        parse_remote(url)


def test_redact_strips_userinfo_and_secrets() -> None:
    text = "fatal: unable to access 'https://bot:hunter2@git.example.com/x.git/': token=abc123"
    cleaned = redact(text, ["abc123", None])
    assert "hunter2" not in cleaned and "abc123" not in cleaned and "bot" not in cleaned
    assert "https://git.example.com/x.git/" in cleaned


def test_token_over_plain_http_is_only_sent_to_loopback() -> None:
    assert authorization_header(parse_remote("http://127.0.0.1:8080/x.git"), "t") is not None
    assert authorization_header(parse_remote("https://git.example.com/x.git"), "t") is not None
    with pytest.raises(SourceError, match="plain http"):
        authorization_header(parse_remote("http://git.example.com/x.git"), "t")
    with pytest.raises(SourceError, match="not an http"):
        authorization_header(parse_remote("ssh://git@git.example.com/x.git"), "t")
    assert authorization_header(parse_remote("https://git.example.com/x.git"), None) is None


def test_ssh_command_never_prompts_or_trusts_unknown_hosts(tmp_path: Path) -> None:
    words = shlex.split(ssh_command(tmp_path / "k", tmp_path / "kh", 30))
    assert words[0] == "ssh"
    assert "StrictHostKeyChecking=yes" in words and "BatchMode=yes" in words
    assert "StrictHostKeyChecking=accept-new" not in words
    with pytest.raises(SourceError, match="whitespace"):
        ssh_command(tmp_path / "key file", None, 30)
