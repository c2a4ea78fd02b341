"""Fixtures for the source tests: a GitSource on a FleetRepo, a git smart-HTTP server, fake ssh programs, gpg keyrings."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import gnupg
import pytest

from fleet.source import GitSource
from tests.fixtures.gitrepo import FleetRepo
from tests.fixtures.gpg import GpgKey
from tests.fixtures.ports import free_port
from tests.source.gitserver import GitHttpServer

SourceFactory = Callable[..., GitSource]


@pytest.fixture
def make_source(tmp_path: Path) -> Iterator[SourceFactory]:
    """Build GitSources with their caches under tmp_path; closes them afterwards."""
    made: list[GitSource] = []

    def make(url: str, *, cache: str = "cache", branch: str = "main", **options: object) -> GitSource:
        source = GitSource(url, branch, tmp_path / cache, **options)  # type: ignore[arg-type]
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


@pytest.fixture
def origin(fleet_repo: FleetRepo) -> FleetRepo:
    """A fleet repo with one commit on main."""
    fleet_repo.commit({"clusters/a.yaml": "name: a\n"}, message="add cluster a")
    return fleet_repo


@pytest.fixture
def git_http_server(fleet_repo: FleetRepo) -> Iterator[GitHttpServer]:
    """`git http-backend` serving the FleetRepo's bare origin over loopback HTTP, behind a token."""
    server = GitHttpServer(project_root=fleet_repo.base, port=free_port(), token="s3cr3t-t0ken-value")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hanging_port() -> Iterator[int]:
    """A loopback port that accepts connections (kernel backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def write_program(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def fake_ssh_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory put first on PATH; tests drop an `ssh` program into it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def relaying_ssh(bin_dir: Path, log: Path) -> Path:
    """An `ssh` that records its arguments and runs the remote command (git-upload-pack) locally."""
    return write_program(
        bin_dir / "ssh",
        f'#!/bin/sh\nprintf \'%s\\n\' "$@" > \'{log}\'\nfor last in "$@"; do :; done\nexec sh -c "$last"\n',
    )


def throttled_ssh(bin_dir: Path, bytes_per_chunk: int, pause: float) -> Path:
    """An `ssh` that runs git-upload-pack locally and relays its output slowly: a slow remote."""
    return write_program(
        bin_dir / "ssh",
        f"#!{sys.executable}\n"
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen(['sh', '-c', sys.argv[-1]], stdout=subprocess.PIPE)\n"
        f"while chunk := os.read(child.stdout.fileno(), {bytes_per_chunk}):\n"
        "    os.write(1, chunk)\n"
        f"    time.sleep({pause})\n"
        "sys.exit(child.wait())\n",
    )


def sleeping_ssh(bin_dir: Path, pid_file: Path) -> Path:
    """An `ssh` that hangs: a remote that never answers. It records the pid of the hanging process."""
    return write_program(bin_dir / "ssh", f"#!/bin/sh\necho $$ > '{pid_file}'\nexec sleep 30\n")


# ---------------------------------------------------------------- gpg


def _short_home(prefix: str) -> Path:
    # gpg-agent socket paths have a length limit: keep homes short, under /tmp.
    home = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp")) / "g"
    home.mkdir(mode=0o700)
    return home


def _kill_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False, capture_output=True)


def export_public(key: GpgKey) -> str:
    return str(gnupg.GPG(gnupghome=str(key.home)).export_keys(key.fingerprint))


@pytest.fixture
def verifier_home() -> Iterator[Path]:
    """An empty GnuPG home the hub verifies with; tests import the public keys they need."""
    home = _short_home("fv-")
    try:
        yield home
    finally:
        _kill_agent(home)
        shutil.rmtree(home.parent, ignore_errors=True)


def import_public(home: Path, armored: str) -> None:
    result = gnupg.GPG(gnupghome=str(home)).import_keys(armored)
    assert result.count >= 1, result.stderr


def generate_ed25519(email: str, expire: str = "0", faked_time: str | None = None) -> GpgKey:
    """A quick ed25519 signing key in its own home; `faked_time` creates it in the past."""
    home = _short_home("fe-")
    args = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    if faked_time:
        args += ["--faked-system-time", faked_time]
    subprocess.run([*args, "--quick-gen-key", f"fleet test <{email}>", "ed25519", "sign", expire], check=True,
                   capture_output=True)  # fmt: skip
    listing = subprocess.run(
        ["gpg", "--homedir", str(home), "--with-colons", "--list-secret-keys"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    return GpgKey(home=home, fingerprint=fingerprint, email=email)


@pytest.fixture
def ed25519_keys() -> Iterator[Callable[..., GpgKey]]:
    made: list[GpgKey] = []

    def make(email: str, expire: str = "0", faked_time: str | None = None) -> GpgKey:
        key = generate_ed25519(email, expire, faked_time)
        made.append(key)
        return key

    yield make
    for key in made:
        _kill_agent(key.home)
        shutil.rmtree(key.home.parent, ignore_errors=True)
