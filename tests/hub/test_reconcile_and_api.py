"""The hub pipeline (Git -> inventory -> render -> store) and its API, on real Git repos."""

from __future__ import annotations

from pathlib import Path

import pyrage
import pytest
from fastapi.testclient import TestClient

from fleet.hub.app import create_app
from fleet.hub.core import Hub
from tests.fixtures.gitrepo import FleetRepo
from tests.hub.helpers import WEB_APP, admin, kubeconfig_cluster, make_hub


@pytest.fixture
def hub(fleet_repo: FleetRepo, tmp_path: Path) -> Hub:
    fleet_repo.commit(
        {
            "fleet.yaml": "pollInterval: 5s\n",
            "clusters/dev.yaml": kubeconfig_cluster("dev", {"env": "dev"}),
            "clusters/prod.yaml": kubeconfig_cluster("prod", {"env": "prod"}),
            **WEB_APP,
        },
        "first fleet",
    )
    hub = make_hub(fleet_repo, tmp_path / "data", kubeconfig=tmp_path / "missing.kubeconfig")
    yield hub
    hub.close()


def agent_public_key() -> str:
    return str(pyrage.x25519.Identity.generate().to_public())


def bootstrap(client: TestClient, hub: Hub, cluster: str) -> str:
    token = client.post(f"/v1/admin/clusters/{cluster}/tokens", json={}).json()["token"]
    response = client.post(f"/v1/agents/{cluster}/bootstrap", json={"token": token, "publicKey": agent_public_key()})
    assert response.status_code == 200, response.text
    return str(response.json()["credential"])


def test_first_revision_renders_per_cluster_bundles(hub: Hub, fleet_repo: FleetRepo) -> None:
    result = hub.reconciler.poll()
    assert result.action == "applied", result
    dev = hub.store.desired("dev")
    prod = hub.store.desired("prod")
    assert dev is not None and prod is not None
    assert dev.revision == fleet_repo.head()
    kinds = [o["kind"] for o in dev.bundle["objects"]]
    assert kinds == ["Namespace", "ConfigMap", "Deployment"]
    deploy = dev.bundle["objects"][2]
    assert deploy["spec"]["replicas"] == 1
    assert prod.bundle["objects"][2]["spec"]["replicas"] == 3
    assert deploy["metadata"]["labels"]["fleet.dev/cluster"] == "dev"
    assert dev.bundle["objects"][1]["data"] == {"cluster": "dev"}
    # the unreachable kubeconfig only costs registration, with a clear message
    record = hub.store.cluster("dev")
    assert record is not None and record.state == "error" and "missing.kubeconfig" in record.state_message
    assert hub.reconciler.poll().action == "unchanged"


def test_unrelated_commit_keeps_digest(hub: Hub, fleet_repo: FleetRepo) -> None:
    hub.reconciler.poll()
    before = hub.store.desired("dev")
    fleet_repo.commit({"README.md": "docs\n"}, "docs only")
    assert hub.reconciler.poll().action == "applied"
    after = hub.store.desired("dev")
    assert before is not None and after is not None
    assert after.digest == before.digest and after.revision == fleet_repo.head()


def test_bad_commit_keeps_last_good_state(hub: Hub, fleet_repo: FleetRepo) -> None:
    hub.reconciler.poll()
    good = hub.store.desired("prod")
    fleet_repo.commit({"clusters/prod.yaml": "name: prod\nprovider:\n  type: kubeconfig\n  contxt: prod\n"}, "typo")
    result = hub.reconciler.poll()
    assert result.action == "rejected"
    assert any(p.startswith("clusters/prod.yaml:4: provider.contxt: unknown field") for p in result.problems)
    assert hub.store.desired("prod") == good
    assert {c.name for c in hub.store.clusters(include_removed=False)} == {"dev", "prod"}
    [event] = [e for e in hub.store.events() if e.kind == "revision.rejected"]
    assert "provider.contxt" in event.message and event.author == "Fleet Tester"
    source = admin(hub).get("/v1/admin/source").json()
    assert "rejected" in source["lastError"]


def test_force_push_is_held_until_accepted(hub: Hub, fleet_repo: FleetRepo) -> None:
    first = fleet_repo.head()
    fleet_repo.commit({"apps/web/fleet.yaml": WEB_APP["apps/web/fleet.yaml"].replace("replicas: 3", "replicas: 4")})
    hub.reconciler.poll()
    second = fleet_repo.head()
    fleet_repo.reset_hard(first)
    fleet_repo.push(force=True)
    assert hub.reconciler.poll().action == "held"
    assert hub.store.source_state().current_sha == second
    assert [e.kind for e in hub.store.events()].count("source.held") == 1
    response = admin(hub).post("/v1/admin/source/accept", json={"sha": first[:10]})
    assert response.json()["action"] == "applied", response.text
    assert hub.store.source_state().current_sha == first


def test_removing_most_clusters_is_held(hub: Hub, fleet_repo: FleetRepo) -> None:
    hub.reconciler.poll()
    fleet_repo.commit({"clusters/prod.yaml": None, "clusters/dev.yaml": None}, "oops")
    result = hub.reconciler.poll()
    assert result.action == "held" and "removes 2 of 2 clusters" in result.message
    assert {c.name for c in hub.store.clusters(include_removed=False)} == {"dev", "prod"}


def test_agent_protocol(hub: Hub) -> None:
    hub.reconciler.poll()
    client = admin(hub)
    dev_credential = bootstrap(client, hub, "dev")
    prod_credential = bootstrap(client, hub, "prod")
    agent = TestClient(create_app(hub))

    assert agent.get("/v1/agents/dev/desired").status_code == 401
    assert agent.get("/v1/agents/dev/desired", headers={"Authorization": "Bearer nope"}).status_code == 401
    # one cluster's credential used for another cluster
    assert agent.get("/v1/agents/dev/desired", headers={"Authorization": f"Bearer {prod_credential}"}).status_code == 403

    auth = {"Authorization": f"Bearer {dev_credential}"}
    first = agent.get("/v1/agents/dev/desired", headers=auth)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag == f'"{first.json()["digest"]}"'
    assert agent.get("/v1/agents/dev/desired", headers={**auth, "If-None-Match": etag}).status_code == 304

    report = {"appliedDigest": first.json()["digest"], "appliedRevision": first.json()["revision"], "phase": "Applied"}
    assert agent.post("/v1/agents/dev/status", headers=auth, json=report).status_code == 204
    assert agent.post("/v1/agents/dev/status", headers=auth, json={**report, "surprise": 1}).status_code == 422
    huge = {"errors": ["x" * 1000] * 10000}
    assert agent.post("/v1/agents/dev/status", headers=auth, json=huge).status_code == 413

    rows = {r["name"]: r for r in client.get("/v1/admin/clusters").json()}
    assert rows["dev"]["inSync"] is True
    assert rows["prod"]["inSync"] is False
    # bootstrap tokens are single use
    token = client.post("/v1/admin/clusters/dev/tokens", json={}).json()["token"]
    body = {"token": token, "publicKey": agent_public_key()}
    assert agent.post("/v1/agents/dev/bootstrap", json=body).status_code == 200
    assert agent.post("/v1/agents/dev/bootstrap", json=body).status_code == 401
    # the old credential is replaced
    assert agent.get("/v1/agents/dev/desired", headers=auth).status_code == 401


def test_admin_api_needs_the_token(hub: Hub) -> None:
    plain = TestClient(create_app(hub))
    assert plain.get("/v1/admin/status").status_code == 401
    assert plain.get("/openapi.json").status_code == 200


def test_restart_loses_nothing(fleet_repo: FleetRepo, hub: Hub, tmp_path: Path) -> None:
    hub.reconciler.poll()
    digest = hub.store.desired("dev").digest  # type: ignore[union-attr]
    events = len(hub.store.events())
    hub.close()
    again = make_hub(fleet_repo, tmp_path / "data", kubeconfig=tmp_path / "missing.kubeconfig")
    again.reconciler.restore()
    assert again.reconciler.current is not None and again.reconciler.current.sha == fleet_repo.head()
    assert again.reconciler.poll().action == "unchanged"
    assert again.store.desired("dev").digest == digest  # type: ignore[union-attr]
    assert len(again.store.events()) == events
    again.close()
