"""`fleet agent install CLUSTER` applies the in-cluster agent once through the provider's credentials."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from fleet.cli import main
from tests.e2e.conftest import cluster_file
from tests.e2e.harness import RunningHub, eventually
from tests.fixtures.gitrepo import FleetRepo


def test_agent_install_on_kubesim(make_clusters: Callable[..., list], fleet_repo: FleetRepo, tmp_path: Path) -> None:
    [(cluster, kubeconfig)] = make_clusters("target")
    fleet_repo.commit({"fleet.yaml": "pollInterval: 1s\n", f"clusters/{cluster.name}.yaml": cluster_file(cluster.name, kubeconfig, {})})
    hub = RunningHub.start_new(fleet_repo.url, tmp_path / "hub")
    try:
        eventually(lambda: hub.hub.reconciler.current is not None, what="revision loaded")
        result = CliRunner().invoke(
            main,
            ["agent", "install", cluster.name, "--agent-hub-url", "https://hub.example:8443", "--image", "fleet:test"],
            env={"FLEET_HUB": hub.url, "FLEET_TOKEN": hub.hub.admin_token},
        )
        assert result.exit_code == 0, result.output
        assert "applied apps/Deployment/fleet-system/fleet-agent" in result.output
        deploy = cluster.get_object("apps/v1", "Deployment", "fleet-system", "fleet-agent")
        container = deploy["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "fleet:test"
        assert f"--cluster={cluster.name}" in container["args"] and "--hub=https://hub.example:8443" in container["args"]
        assert deploy["spec"]["template"]["spec"]["serviceAccountName"] == "fleet-agent"
        role = cluster.get_object("rbac.authorization.k8s.io/v1", "ClusterRole", None, "fleet-agent-base")
        verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
        assert "escalate" not in verbs and "impersonate" not in verbs and "bind" not in verbs
        secret = cluster.get_object("v1", "Secret", "fleet-system", "fleet-agent-bootstrap")
        token = base64.b64decode(secret["data"]["token"]).decode()
        assert token.startswith("fbt-")
        # the token is a real one-time bootstrap token for this cluster, and the output never shows it
        assert token not in result.output
        assert hub.hub.store.consume_bootstrap_token(cluster.name, token)
        assert not hub.hub.store.consume_bootstrap_token(cluster.name, token)
        assert any(e.kind == "agent.installed" for e in hub.hub.store.events())
    finally:
        hub.stop()
