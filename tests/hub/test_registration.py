"""Registration records a cluster's identity and raises an event when it changes."""

from __future__ import annotations

from pathlib import Path

from fleet.kubesim import Simulator
from fleet.kubesim import kubeconfig as kubeconfig_module
from tests.fixtures.gitrepo import FleetRepo
from tests.hub.helpers import make_hub


def test_identity_change_is_an_event(simulator: Simulator, fleet_repo: FleetRepo, tmp_path: Path) -> None:
    first = simulator.add_cluster("ident-a")
    second = simulator.add_cluster("ident-b")
    try:
        kubeconfig = tmp_path / "kc"
        config = first.kubeconfig()
        config["contexts"][0]["name"] = "target"
        config["current-context"] = "target"
        kubeconfig_module.write(config, kubeconfig)
        fleet_repo.commit(
            {"clusters/target.yaml": f"name: target\nprovider: {{type: kubeconfig, context: target, path: {kubeconfig}}}\n"}
        )
        hub = make_hub(fleet_repo, tmp_path / "data")
        assert hub.reconciler.poll().action == "applied"
        record = hub.store.cluster("target")
        assert record is not None and record.state == "registered" and record.endpoint == first.url
        assert record.ca_fingerprint and record.kubernetes_version
        # the same name now reaches another API server (a rebuilt cluster, a swapped context)
        config = second.kubeconfig()
        config["contexts"][0]["name"] = "target"
        config["current-context"] = "target"
        kubeconfig_module.write(config, kubeconfig)
        current = hub.reconciler.current
        assert current is not None
        hub.registrar.refresh(current.inventory)
        [event] = [e for e in hub.store.events() if e.kind == "cluster.identity-changed"]
        assert f"endpoint changed from {first.url} to {second.url}" in event.message
        assert hub.store.cluster("target").endpoint == second.url  # type: ignore[union-attr]
        hub.close()
    finally:
        simulator.remove_cluster("ident-a")
        simulator.remove_cluster("ident-b")
