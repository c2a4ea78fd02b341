"""End-to-end harness: a real hub (HTTP on a free port, scheduler running) and real agent processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from fleet.hub.core import Hub, HubConfig
from fleet.hub.daemon import HubDaemon
from tests.fixtures.ports import free_port, wait_for_port


class RunningHub:
    def __init__(self, config: HubConfig, dispatch: str | None = None) -> None:
        self.config = config
        self.hub = Hub(config)
        self.daemon = HubDaemon(self.hub)
        if dispatch:
            from fleet.hub.dispatch import install_local_dispatch

            install_local_dispatch(self.daemon, mode=dispatch)
        host, _, port = config.listen.rpartition(":")
        self.port = int(port)
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.daemon.app,
                host=host,
                port=self.port,
                log_level="warning",
                access_log=False,
                ssl_certfile=str(config.tls_cert) if config.tls_cert else None,
                ssl_keyfile=str(config.tls_key) if config.tls_key else None,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @classmethod
    def start_new(cls, repo_url: str, data_dir: Path, dispatch: str | None = None, **config: Any) -> RunningHub:
        port = free_port()
        hub_config = HubConfig(repo=repo_url, data_dir=data_dir, listen=f"127.0.0.1:{port}", **config)
        return cls(hub_config, dispatch).start()

    @property
    def url(self) -> str:
        return self.config.url

    def start(self) -> RunningHub:
        self.daemon.start_background()
        self.thread.start()
        wait_for_port(self.port, 20, "hub")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.daemon.stop_background()
        self.hub.close()

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.hub.admin_token}"}, timeout=30
        )

    def cli_env(self) -> dict[str, str]:
        return {**os.environ, "FLEET_HUB": self.url, "FLEET_TOKEN": self.hub.admin_token}


class AgentProcess:
    """`fleet agent run` as its own process, as a user starts it by hand."""

    def __init__(
        self, hub_url: str, cluster: str, token: str, kubeconfig: Path, context: str, workdir: Path, *extra: str
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.token_file = workdir / "token"
        self.token_file.write_text(token + "\n")
        self.log_path = workdir / "agent.log"
        argv = [
            sys.executable, "-m", "fleet", "agent", "run", "--hub", hub_url, "--cluster", cluster,
            "--token-file", str(self.token_file), "--kubeconfig", str(kubeconfig), "--context", context,
            "--state-dir", str(workdir / "state"), *extra,
        ]  # fmt: skip
        self.log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def eventually(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2, what: str = "") -> Any:
    """Poll until `check()` is truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # keep polling through transient errors
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last value {last!r}")
