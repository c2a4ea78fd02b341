"""N hub replicas on one PostgreSQL: all serve the API, exactly one runs the scheduled jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.hub.leader import DataDirInUse
from tests.e2e.harness import RunningHub, eventually
from tests.fixtures.gitrepo import FleetRepo
from tests.fixtures.postgres import PostgresServer
from tests.hub.helpers import WEB_APP, kubeconfig_cluster


def test_two_replicas_share_one_database(postgres_server: PostgresServer, fleet_repo: FleetRepo, tmp_path: Path) -> None:
    fleet_repo.commit({"fleet.yaml": "pollInterval: 1s\n", "clusters/dev.yaml": kubeconfig_cluster("dev", {"env": "dev"}), **WEB_APP})
    url = postgres_server.create_database()
    first = RunningHub.start_new(fleet_repo.url, tmp_path / "one", database_url=url)
    second = RunningHub.start_new(fleet_repo.url, tmp_path / "two", database_url=url)
    try:
        assert first.daemon.leading and not second.daemon.leading
        eventually(lambda: first.hub.store.desired("dev"), what="leader rendered")
        # the follower serves agents from the same store and follows the revision in force
        eventually(lambda: second.hub.reconciler.current is not None, what="follower restored the revision")
        with second.admin() as admin:
            token = admin.post("/v1/admin/clusters/dev/tokens", json={}).json()["token"]
            assert admin.post("/v1/admin/source/sync").status_code == 503  # jobs run on the leader only
        with first.admin() as admin:
            assert admin.post("/v1/admin/source/sync").status_code == 200
        import pyrage

        key = str(pyrage.x25519.Identity.generate().to_public())
        with second.admin() as http:
            credential = http.post("/v1/agents/dev/bootstrap", json={"token": token, "publicKey": key}).json()["credential"]
            desired = http.get("/v1/agents/dev/desired", headers={"Authorization": f"Bearer {credential}"})
            assert desired.status_code == 200 and desired.json()["cluster"] == "dev"
        polls_by_second = len([e for e in second.hub.store.events() if e.kind == "hub.leader"])
        assert polls_by_second == 1  # only the first replica became leader
    finally:
        first.stop()
    # the leader goes away: the other replica takes over the jobs
    try:
        eventually(lambda: second.daemon.leading, timeout=15, what="follower took over")
        sha = fleet_repo.commit({"README.md": "x\n"})
        eventually(lambda: second.hub.store.source_state().current_sha == sha, timeout=15, what="new leader polls")
    finally:
        second.stop()


def test_one_hub_per_data_dir(fleet_repo: FleetRepo, tmp_path: Path) -> None:
    fleet_repo.commit({"clusters/dev.yaml": kubeconfig_cluster("dev", {})})
    first = RunningHub.start_new(fleet_repo.url, tmp_path / "data")
    try:
        with pytest.raises(DataDirInUse):
            RunningHub.start_new(fleet_repo.url, tmp_path / "data")
    finally:
        first.stop()
