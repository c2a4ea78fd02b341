"""The hub can serve HTTPS itself; an agent trusts it through --hub-ca."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fleet.kubesim import tls
from tests.e2e.conftest import cluster_file
from tests.e2e.harness import AgentProcess, RunningHub, eventually
from tests.fixtures.gitrepo import FleetRepo


def test_agent_over_https_with_hub_ca(make_clusters: Callable[..., list], fleet_repo: FleetRepo, tmp_path: Path) -> None:
    [(cluster, kubeconfig)] = make_clusters("tls")
    certs = tls.generate("fleet-hub")
    (tmp_path / "hub.crt").write_bytes(certs.cert_pem)
    (tmp_path / "hub.key").write_bytes(certs.key_pem)
    (tmp_path / "ca.crt").write_bytes(certs.ca_pem)
    fleet_repo.commit(
        {
            "fleet.yaml": "pollInterval: 1s\nagent: {pollInterval: 1s}\n",
            f"clusters/{cluster.name}.yaml": cluster_file(cluster.name, kubeconfig, {}),
            "apps/a/fleet.yaml": "namespace: a\ntargets: [{clusterSelector: {}}]\n",
            "apps/a/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {x: y}\n",
        }
    )
    hub = RunningHub.start_new(
        fleet_repo.url, tmp_path / "hub", tls_cert=tmp_path / "hub.crt", tls_key=tmp_path / "hub.key"
    )
    assert hub.url.startswith("https://")
    agent = None
    try:
        eventually(lambda: hub.hub.store.desired(cluster.name), what="desired state")
        token, _ = hub.hub.issue_bootstrap_token(cluster.name)
        agent = AgentProcess(
            hub.url, cluster.name, token, kubeconfig, cluster.name, tmp_path / "agent", "--hub-ca", str(tmp_path / "ca.crt")
        )
        eventually(lambda: cluster.get_object("v1", "ConfigMap", "a", "c"), timeout=30, what="applied over HTTPS")
    finally:
        if agent is not None:
            agent.stop()
        hub.stop()
