"""Issue: pull agents and the hub-agent protocol, tried as a new user would.

A hub, two kubesim clusters and one `fleet agent run` process per cluster started by hand.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import FAST_SETTINGS, cluster_file
from tests.e2e.harness import AgentProcess, RunningHub, eventually
from tests.fixtures.gitrepo import FleetRepo

WEB = {
    "apps/web/fleet.yaml": "namespace: web\ntargets:\n  - clusterSelector: {matchLabels: {env: prod}}\n",
    "apps/web/deploy.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n"
        "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: web, image: 'nginx:1.27'}]}\n"
    ),
    "apps/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-config}\ndata: {a: b}\n",
}
SHARED = {
    "apps/shared/fleet.yaml": "namespace: shared\ntargets: [{clusterSelector: {}}]\n",
    "apps/shared/cm.yaml": "".join(
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{cluster: '${{cluster.name}}'}}\n"
        for name in ("info", "info-2", "info-3", "info-4")
    ),
}


def kubectl() -> str:
    found = shutil.which("kubectl")
    assert found, "kubectl 1.32 is a test prerequisite (Debian package kubernetes-client) and was not found"
    return found


@pytest.mark.slow
def test_agents_apply_revert_prune_and_fence(
    make_clusters: Callable[..., list], fleet_repo: FleetRepo, tmp_path: Path
) -> None:
    (prod, prod_kc), (dev, dev_kc) = make_clusters("prod", "dev")
    fleet_repo.commit(
        {
            "fleet.yaml": FAST_SETTINGS,
            f"clusters/{prod.name}.yaml": cluster_file(prod.name, prod_kc, {"env": "prod"}),
            f"clusters/{dev.name}.yaml": cluster_file(dev.name, dev_kc, {"env": "dev"}),
            **SHARED,
        },
        "two clusters",
    )
    hub = RunningHub.start_new(fleet_repo.url, tmp_path / "hub")
    agents: list[AgentProcess] = []
    try:
        admin = hub.admin()
        eventually(lambda: admin.get("/v1/admin/source").json()["currentRevision"], what="first revision")
        for cluster, kubeconfig in ((prod, prod_kc), (dev, dev_kc)):
            token = admin.post(f"/v1/admin/clusters/{cluster.name}/tokens", json={}).json()["token"]
            agents.append(
                AgentProcess(hub.url, cluster.name, token, kubeconfig, cluster.name, tmp_path / f"agent-{cluster.name}")
            )
        eventually(lambda: prod.get_object("v1", "ConfigMap", "shared", "info"), what="shared app on prod")

        # 1. An app targeted by label reaches only the matching cluster, Available.
        fleet_repo.commit(WEB, "web for prod")
        deploy = eventually(
            lambda: (d := prod.get_object("apps/v1", "Deployment", "web", "web"))
            and d.get("status", {}).get("availableReplicas") == 2
            and d,
            what="web Available on prod",
        )
        assert deploy["metadata"]["labels"]["fleet.dev/cluster"] == prod.name
        assert [m["manager"] for m in deploy["metadata"]["managedFields"] if m["operation"] == "Apply"] == ["fleet-agent"]
        assert dev.get_object("apps/v1", "Deployment", "web", "web") is None
        eventually(lambda: all(r["inSync"] for r in admin.get("/v1/admin/clusters").json()), what="in sync")

        # 2. A kubectl edit is reverted within the drift interval, and reported.
        subprocess.run(
            [kubectl(), "--kubeconfig", str(prod_kc), "--context", prod.name, "-n", "web", "scale", "deploy/web",
             "--replicas", "7"],
            check=True, capture_output=True,
        )  # fmt: skip
        assert prod.get_object("apps/v1", "Deployment", "web", "web")["spec"]["replicas"] == 7
        started = time.monotonic()
        eventually(
            lambda: prod.get_object("apps/v1", "Deployment", "web", "web")["spec"]["replicas"] == 2,
            what="replicas reverted",
        )
        assert time.monotonic() - started < 2 + 2 + 3  # drift interval + a poll + slack
        events = eventually(
            lambda: [e for e in admin.get("/v1/admin/events", params={"cluster": prod.name}).json() if e["kind"] == "drift"],
            what="drift event",
        )
        assert "spec.replicas" in events[0]["message"] and "reverted" in events[0]["message"]

        # 3. Deleting the app's directory prunes its objects on its targets only.
        fleet_repo.commit({"apps/web": None}, "remove web")
        eventually(lambda: prod.get_object("apps/v1", "Deployment", "web", "web") is None, what="web pruned")
        eventually(lambda: prod.get_object("v1", "ConfigMap", "web", "web-config") is None, what="config pruned")
        assert prod.get_object("v1", "ConfigMap", "shared", "info") is not None
        assert dev.get_object("v1", "ConfigMap", "shared", "info") is not None

        # 5. One cluster's credential used for the other cluster: 403.
        identity = json.loads((tmp_path / f"agent-{prod.name}" / "state" / "identity.json").read_text())
        stolen = {"Authorization": f"Bearer {identity['credential']}"}
        assert httpx.get(f"{hub.url}/v1/agents/{dev.name}/desired", headers=stolen).status_code == 403
        assert httpx.get(f"{hub.url}/v1/agents/{prod.name}/desired", headers=stolen).status_code == 200
    finally:
        hub.stop()

    # 4. With the hub stopped, the clusters stay as they are.
    before = prod.get_object("v1", "ConfigMap", "shared", "info")
    time.sleep(3)
    assert prod.get_object("v1", "ConfigMap", "shared", "info") == before
    for agent in agents:
        assert agent.process.poll() is None, agent.output()[-2000:]
        agent.stop()
