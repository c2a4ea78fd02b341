"""A hub on a real fleet repo with real OpenBao, three clusters and their (simulated) agents."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from fleet.hub.app import create_app
from fleet.hub.core import Hub
from fleet.hub.rotation import SecretsController
from tests.fixtures.gitrepo import FleetRepo
from tests.fixtures.ports import free_port
from tests.fixtures.vault import BaoServer
from tests.hub.helpers import admin, kubeconfig_cluster, make_hub
from tests.secrets_e2e.helpers import Clock, SimAgent, payments_app, web_app

FLEET_YAML = "pollInterval: 5s\nsecrets:\n  vault:\n    versionPollInterval: 5s\n"


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets counts: no ~/.config/sops, VAULT_* or cloud credentials leak in."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    for name in list(os.environ):
        if name.startswith(("SOPS_", "VAULT_", "AWS_", "GOOGLE_", "FLEET_")) or name in ("GNUPGHOME", "KUBECONFIG"):
            monkeypatch.delenv(name)


@dataclass
class World:
    repo: FleetRepo
    hub: Hub
    controller: SecretsController
    clock: Clock
    admin: TestClient
    vault: BaoServer
    path: str  # the KV v2 path under kv/, e.g. shared/e2e-1a2b/db
    agents: dict[str, SimAgent]

    @property
    def ref(self) -> str:
        return f"vault:kv/{self.path}#password"

    def fingerprint(self, version: int) -> str:
        return f"vault:kv/{self.path}@{version}"

    def digests(self) -> dict[str, str]:
        return {cluster: digest for cluster, (_, digest) in self.hub.store.desired_digests().items()}

    def vault_versions(self) -> dict[str, Any]:
        metadata = self.vault.client().secrets.kv.v2.read_secret_metadata(path=self.path, mount_point="kv")
        return dict(metadata["data"]["versions"])

    def vault_value(self, version: int | None = None) -> str:
        response = self.vault.client().secrets.kv.v2.read_secret_version(
            path=self.path, version=version, mount_point="kv", raise_on_deleted_version=True
        )
        return str(response["data"]["data"]["password"])

    def row(self) -> dict[str, Any]:
        rows = self.admin.get("/v1/admin/secrets")
        assert rows.status_code == 200, rows.text
        [row] = [r for r in rows.json() if r["ref"] == self.ref]
        return dict(row)

    def event_kinds(self) -> list[str]:
        return [e.kind for e in self.hub.store.events(limit=1000)]

    def report_all(self) -> None:
        for agent in self.agents.values():
            agent.report(agent.desired())


def fleet_files(path: str, fleet_yaml: str = FLEET_YAML) -> dict[str, str]:
    missing = "/nonexistent/kubeconfig"
    return {
        "fleet.yaml": fleet_yaml,
        "clusters/east.yaml": kubeconfig_cluster("east", {"env": "prod"}, Path(missing)),
        "clusters/west.yaml": kubeconfig_cluster("west", {"env": "prod"}, Path(missing)),
        "clusters/dev.yaml": kubeconfig_cluster("dev", {"env": "dev"}, Path(missing)),
        **payments_app(path),
        **web_app(),
    }


@pytest.fixture
def world(
    fleet_repo: FleetRepo, tmp_path: Path, vault_server: BaoServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    monkeypatch.setenv("VAULT_ADDR", vault_server.addr)
    monkeypatch.setenv("VAULT_TOKEN", vault_server.root_token)
    path = f"shared/e2e-{secrets.token_hex(4)}/db"
    vault_server.client().secrets.kv.v2.create_or_update_secret(
        path=path, secret={"password": "first-" + secrets.token_hex(8)}, mount_point="kv"
    )
    fleet_repo.commit(fleet_files(path), "fleet with a Vault secret")
    hub = make_hub(fleet_repo, tmp_path / "data")
    clock = Clock()
    controller = SecretsController(hub, now=clock)
    hub.rotation = controller
    result = hub.reconciler.poll()
    assert result.action == "applied", result
    client = admin(hub)
    http = TestClient(create_app(hub))
    agents = {name: SimAgent.bootstrap(client, http, name) for name in ("east", "west", "dev")}
    try:
        yield World(fleet_repo, hub, controller, clock, client, vault_server, path, agents)
    finally:
        hub.close()


class Served:
    """Serves ASGI apps with uvicorn on free loopback ports, in threads; `stop()` ends them all."""

    def __init__(self) -> None:
        self.servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def __call__(self, app: Any) -> str:
        port = free_port()
        # log_config=None: uvicorn's loggers propagate to the root logger, where tests capture them.
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level="debug", access_log=True)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"http-{port}", daemon=True)
        thread.start()
        self.servers.append((server, thread))
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        for server, thread in self.servers:
            server.should_exit = True
            thread.join(timeout=10)
        self.servers.clear()


@pytest.fixture
def serve() -> Iterator[Served]:
    served = Served()
    try:
        yield served
    finally:
        served.stop()
