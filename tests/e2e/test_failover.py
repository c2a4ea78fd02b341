"""Issue: region failover and disaster recovery from Git, tried as a new user would.

Two kubesim clusters in a failover group with local agents, Route53 on moto, a
webhook receiver; then a wiped cluster and a lost hub database.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fleet.cli import main
from fleet.demo.script import WebhookReceiver
from tests.e2e.conftest import cluster_file
from tests.e2e.harness import RunningHub, eventually
from tests.fixtures.gitrepo import FleetRepo

ROOT = Path(__file__).resolve().parents[2]

PAYMENTS = {
    "apps/payments/fleet.yaml": "namespace: payments\nfailover: true\nfailoverGroup: prod\ntargets: [{clusterSelector: {}}]\n",
    "apps/payments/deploy.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: payments}\nspec:\n  replicas: 2\n"
        "  selector: {matchLabels: {app: payments}}\n  template:\n    metadata: {labels: {app: payments}}\n"
        "    spec: {containers: [{name: p, image: 'payments:1', envFrom: [{secretRef: {name: registry-credentials}}]}]}\n"
    ),
    "apps/web/fleet.yaml": "namespace: web\ntargets: [{clusterSelector: {}}]\n",
    "apps/web/cm.yaml": "".join(
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\ndata: {{a: b}}\n" for i in range(6)
    ),
}


def settings(zone: str, east: str, west: str, webhook: str, policy: str = "auto") -> str:
    return (
        "pollInterval: 1s\nagent: {pollInterval: 1s, driftInterval: 2s}\n"
        "failover:\n  groups:\n    prod:\n"
        f"      policy: {policy}\n      mode: cold\n      missedHeartbeats: 3\n      unhealthyReports: 3\n"
        "      holdDown: 30s\n      oldPrimary: scale-down\n"
        f"      webhook: {webhook}\n"
        f"      dns: {{zoneId: {zone}, record: pay.fleet.test, targets: {{{east}: east.lb.test, {west}: west.lb.test}}}}\n"
    )


def copy_sops_example(repo: FleetRepo) -> None:
    shutil.copytree(ROOT / "secrets", repo.work_path / "secrets")
    shutil.copy(ROOT / ".sops.yaml", repo.work_path / ".sops.yaml")


def record_value(moto: Any, zone: str) -> str | None:
    for record in moto.client("route53").list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]:
        if record["Name"].rstrip(".") == "pay.fleet.test":
            return str(record["ResourceRecords"][0]["Value"])
    return None


def available(cluster: Any, replicas: int) -> bool:
    d = cluster.get_object("apps/v1", "Deployment", "payments", "payments")
    return bool(
        d
        and d["spec"]["replicas"] == replicas
        and d.get("status", {}).get("availableReplicas", 0) == replicas
        and d.get("status", {}).get("observedGeneration") == d["metadata"]["generation"]
    )


@pytest.fixture
def sops_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(ROOT / "demo" / "age.key"))


@pytest.mark.slow
def test_automatic_failover_dns_fencing_and_failback(
    make_clusters: Callable[..., list], fleet_repo: FleetRepo, moto_endpoint: Any, sops_key: None, tmp_path: Path
) -> None:
    (east, east_kc), (west, west_kc) = make_clusters("east", "west")
    zone = moto_endpoint.create_hosted_zone("fleet.test.")
    receiver = WebhookReceiver().start()
    copy_sops_example(fleet_repo)
    fleet_repo.commit(
        {
            "fleet.yaml": settings(zone, east.name, west.name, receiver.url),
            f"clusters/{east.name}.yaml": cluster_file(
                east.name, east_kc, {"env": "prod"}, "failover: {group: prod, role: primary, priority: 100}\n"
            ),
            f"clusters/{west.name}.yaml": cluster_file(
                west.name, west_kc, {"env": "prod"}, "failover: {group: prod, role: standby, priority: 50}\n"
            ),
            **PAYMENTS,
        }
    )
    hub = RunningHub.start_new(fleet_repo.url, tmp_path / "hub", dispatch="local")
    env = {"FLEET_HUB": hub.url, "FLEET_TOKEN": hub.hub.admin_token}
    try:
        eventually(lambda: available(east, 2), timeout=45, what="payments on the primary")
        assert west.get_object("apps/v1", "Deployment", "payments", "payments") is None  # cold standby
        eventually(lambda: west.get_object("v1", "Secret", "web", "registry-credentials"), what="SOPS secret on west")

        # The primary's API goes down: within the threshold the apps run healthy on the standby.
        east.faults.api_down(True)
        down_at = time.monotonic()
        eventually(lambda: available(west, 2), timeout=60, what="payments on the standby")
        recovery = time.monotonic() - down_at
        assert recovery < 30, recovery
        assert record_value(moto_endpoint, zone) == "west.lb.test"
        assert west.get_object("v1", "Secret", "web", "registry-credentials") is not None
        status = json.loads(CliRunner().invoke(main, ["status", "-o", "json"], env=env).output)
        [group] = status["failover"]
        assert group["active"] == west.name and group["epoch"] == 1
        plain = CliRunner().invoke(main, ["status"], env=env).output
        assert f"failover group prod: active {west.name} (epoch 1" in plain
        failovers = [e for e in hub.hub.store.events() if e.kind == "failover"]
        assert len(failovers) == 1 and "west.lb.test" in failovers[0].message
        eventually(lambda: receiver.messages, what="webhook")
        assert receiver.messages[0]["event"]["to"] == west.name and "text" in receiver.messages[0]

        # The old primary comes back: it does not fight, it scales its copy to zero.
        east.faults.api_down(False)
        eventually(lambda: available(east, 0), timeout=30, what="old primary standing down")
        time.sleep(3)
        assert available(west, 2) and hub.hub.store.failover_groups()["prod"].active == west.name

        # `fleet failback` returns the apps.
        result = CliRunner().invoke(main, ["failback", "prod"], env=env)
        assert result.exit_code == 0 and "epoch 2" in result.output, result.output
        eventually(lambda: available(east, 2), timeout=30, what="payments back on the primary")
        eventually(
            lambda: west.get_object("apps/v1", "Deployment", "payments", "payments") is None, what="standby cleaned"
        )
        assert record_value(moto_endpoint, zone) == "east.lb.test"
    finally:
        hub.stop()
        receiver.stop()


@pytest.mark.slow
def test_manual_policy_waits_for_a_person(
    make_clusters: Callable[..., list], fleet_repo: FleetRepo, moto_endpoint: Any, tmp_path: Path
) -> None:
    (east, east_kc), (west, west_kc) = make_clusters("east", "west")
    zone = moto_endpoint.create_hosted_zone("fleet.test.")
    files = {k: v.replace(", envFrom: [{secretRef: {name: registry-credentials}}]", "") for k, v in PAYMENTS.items()}
    fleet_repo.commit(
        {
            "fleet.yaml": settings(zone, east.name, west.name, "http://127.0.0.1:9/none", policy="manual"),
            f"clusters/{east.name}.yaml": cluster_file(east.name, east_kc, {}, "failover: {group: prod, role: primary}\n"),
            f"clusters/{west.name}.yaml": cluster_file(west.name, west_kc, {}, "failover: {group: prod, role: standby}\n"),
            **files,
        }
    )
    hub = RunningHub.start_new(fleet_repo.url, tmp_path / "hub", dispatch="local")
    env = {"FLEET_HUB": hub.url, "FLEET_TOKEN": hub.hub.admin_token}
    try:
        eventually(lambda: available(east, 2), timeout=45, what="payments on the primary")
        east.faults.api_down(True)
        eventually(
            lambda: any(e.kind == "failover.needed" for e in hub.hub.store.events()), timeout=30, what="needed event"
        )
        assert west.get_object("apps/v1", "Deployment", "payments", "payments") is None
        result = CliRunner().invoke(main, ["failover", "prod", "--to", west.name], env=env)
        assert result.exit_code == 0, result.output
        eventually(lambda: available(west, 2), timeout=30, what="payments on the standby")
        # a failed webhook is reported, never fatal
        assert any(e.kind == "failover.notify-failed" for e in hub.hub.store.events())
    finally:
        east.faults.api_down(False)
        hub.stop()


@pytest.mark.slow
def test_recovery_from_git(
    make_clusters: Callable[..., list], fleet_repo: FleetRepo, sops_key: None, tmp_path: Path
) -> None:
    (one, one_kc), (two, two_kc) = make_clusters("one", "two")
    copy_sops_example(fleet_repo)
    web = {k: v for k, v in PAYMENTS.items() if k.startswith("apps/web")}
    fleet_repo.commit(
        {
            "fleet.yaml": "pollInterval: 1s\nagent: {pollInterval: 1s, driftInterval: 2s}\n",
            f"clusters/{one.name}.yaml": cluster_file(one.name, one_kc, {"env": "prod"}),
            **web,
        }
    )
    hub = RunningHub.start_new(fleet_repo.url, tmp_path / "hub", dispatch="local")
    try:
        eventually(lambda: one.get_object("v1", "ConfigMap", "web", "c5"), timeout=45, what="one converged")

        # A brand-new cluster committed to clusters/ gets its full desired state, secrets included.
        fleet_repo.commit({f"clusters/{two.name}.yaml": cluster_file(two.name, two_kc, {"env": "prod"})}, "add two")
        secret = eventually(
            lambda: two.get_object("v1", "Secret", "web", "registry-credentials"), timeout=45, what="secret on two"
        )
        assert set(secret["data"]) == {"REGISTRY_USER", "REGISTRY_TOKEN"}
        eventually(lambda: two.get_object("v1", "ConfigMap", "web", "c5"), what="config on two")

        # A cluster that lost everything is rebuilt from Git by `fleet recover`.
        one.wipe()
        assert one.get_object("v1", "ConfigMap", "web", "c0") is None
        result = CliRunner().invoke(main, ["recover", one.name], env={"FLEET_HUB": hub.url, "FLEET_TOKEN": hub.hub.admin_token})
        assert result.exit_code == 0, result.output
        eventually(lambda: one.get_object("v1", "Secret", "web", "registry-credentials"), timeout=45, what="one rebuilt")
        eventually(lambda: one.get_object("v1", "ConfigMap", "web", "c5"), what="one's config rebuilt")
        snapshot = {name: two.get_object("v1", "ConfigMap", "web", name) for name in ("c0", "c5")}
    finally:
        hub.stop()

    # The hub loses its database: a new hub with an empty store rebuilds from Git,
    # agents re-bootstrap, and nothing is pruned while it rebuilds.
    (tmp_path / "hub" / "fleet.db").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / "hub" / f"fleet.db{suffix}").unlink(missing_ok=True)
    hub = RunningHub.start_new(fleet_repo.url, tmp_path / "hub", dispatch="local")
    try:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            for name in ("c0", "c5"):
                assert two.get_object("v1", "ConfigMap", "web", name) is not None, "pruned while rebuilding"
            rows = hub.hub.cluster_rows()
            if len(rows) == 2 and all(r.inSync and r.health == "Healthy" for r in rows):
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"not rebuilt: {[(r.name, r.health, r.inSync) for r in hub.hub.cluster_rows()]}")
        assert {name: two.get_object("v1", "ConfigMap", "web", name) for name in ("c0", "c5")} == snapshot
        assert sum(1 for e in hub.hub.store.events() if e.kind == "agent.bootstrapped") == 2
    finally:
        hub.stop()
