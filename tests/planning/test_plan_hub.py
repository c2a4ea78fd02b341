"""`fleet plan --hub`: head against the desired state a real hub serves over HTTP, and its agents' sync."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pyrage
import pytest
import uvicorn
from click.testing import CliRunner
from fastapi.testclient import TestClient

from fleet.cli import main
from fleet.hub.app import create_app
from fleet.hub.core import Hub
from tests.fixtures.gitrepo import FleetRepo
from tests.fixtures.ports import free_port, wait_for_port
from tests.hub.helpers import WEB_APP, admin, kubeconfig_cluster, make_hub


@pytest.fixture
def hub(fleet_repo: FleetRepo, tmp_path: Path) -> Iterator[Hub]:
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
    assert hub.reconciler.poll().action == "applied"
    yield hub
    hub.close()


@pytest.fixture
def hub_url(hub: Hub) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(hub), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port, what="hub API")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def report_applied(hub: Hub, cluster: str) -> None:
    """An agent bootstraps and reports it runs the desired digest."""
    client = admin(hub)
    token = client.post(f"/v1/admin/clusters/{cluster}/tokens", json={}).json()["token"]
    public_key = str(pyrage.x25519.Identity.generate().to_public())
    credential = client.post(f"/v1/agents/{cluster}/bootstrap", json={"token": token, "publicKey": public_key}).json()[
        "credential"
    ]
    agent = TestClient(create_app(hub))
    auth = {"Authorization": f"Bearer {credential}"}
    desired = agent.get(f"/v1/agents/{cluster}/desired", headers=auth).json()
    report = {"appliedDigest": desired["digest"], "appliedRevision": desired["revision"], "phase": "Applied"}
    assert agent.post(f"/v1/agents/{cluster}/status", headers=auth, json=report).status_code == 204


def test_plan_compares_head_with_the_hubs_live_state(
    hub: Hub, hub_url: str, fleet_repo: FleetRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    report_applied(hub, "dev")  # prod's agent never reported: out of sync
    live_revision = fleet_repo.head()
    fleet_repo.repo.git.checkout("-b", "bump")
    fleet_repo.commit(
        {"apps/web/deployment.yaml": WEB_APP["apps/web/deployment.yaml"].replace("nginx:1.27", "nginx:1.28")},
        "bump web",
        push=False,
    )
    monkeypatch.setenv("FLEET_TOKEN", hub.admin_token)

    result = CliRunner().invoke(
        main, ["plan", "--base", "main", "--hub", hub_url, "-o", "json", str(fleet_repo.work_path)]
    )

    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    live = {c["cluster"]: c for c in plan["live"]}
    assert sorted(live) == ["dev", "prod"]
    assert live["dev"]["inSync"] is True and live["dev"]["state"] == "in sync"
    assert live["prod"]["inSync"] is False and live["prod"]["state"] == "out of sync"
    for name in ("dev", "prod"):
        assert live[name]["hubRevision"] == live_revision
        assert live[name]["diff"]["status"] == "changed"
        assert [(o["key"], [f["path"] for f in o["fields"]]) for o in live[name]["diff"]["objects"]] == [
            ("apps/Deployment/web/web", ["/spec/template/spec/containers/0/image"])
        ]

    text = CliRunner().invoke(main, ["plan", "--base", "main", "--hub", hub_url, str(fleet_repo.work_path)]).output
    assert "against the hub's live state:" in text
    assert f"    dev: in sync at {live_revision[:12]}; head: 1 to change" in text
    assert f"  ! prod: out of sync at {live_revision[:12]}; head: 1 to change" in text

    markdown = CliRunner().invoke(
        main, ["plan", "--base", "main", "--hub", hub_url, "-o", "markdown", str(fleet_repo.work_path)]
    ).output
    assert "| `dev` | changed | 0 | 1 | 0 | ✅ in sync |" in markdown
    assert "| `prod` | changed | 0 | 1 | 0 | ⚠️ out of sync |" in markdown


def test_plan_without_the_admin_token_fails_clearly(hub_url: str, fleet_repo: FleetRepo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FLEET_TOKEN", raising=False)
    result = CliRunner().invoke(
        main,
        ["plan", "--base", "HEAD", "--hub", hub_url, "--data-dir", str(tmp_path / "nothing"), str(fleet_repo.work_path)],
    )
    assert result.exit_code == 1
    assert "refused the admin token" in result.output
