"""The failover controller judges heartbeats only from when the hub could hear them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fleet.hub.failover import FailoverController
from tests.fixtures.gitrepo import FleetRepo
from tests.hub.helpers import kubeconfig_cluster, make_hub

GROUP = "failover: {{group: prod, role: {role}}}\n"


def test_hub_downtime_is_not_a_cluster_failure(fleet_repo: FleetRepo, tmp_path: Path) -> None:
    fleet_repo.commit(
        {
            "fleet.yaml": "agent: {pollInterval: 5s}\nfailover: {groups: {prod: {policy: auto, holdDown: 1s}}}\n",
            "clusters/east.yaml": kubeconfig_cluster("east", {}, extra=GROUP.format(role="primary")),
            "clusters/west.yaml": kubeconfig_cluster("west", {}, extra=GROUP.format(role="standby")),
        }
    )
    hub = make_hub(fleet_repo, tmp_path / "data")
    assert hub.reconciler.poll().action == "applied"
    clock = [datetime(2026, 1, 1, 12, 0, tzinfo=UTC)]
    controller = FailoverController(hub, now=lambda: clock[0])
    hub.failover = controller
    # both agents were last heard 10 minutes before this hub (re)started
    for name in ("east", "west"):
        hub.store.heartbeat(name, clock[0] - timedelta(minutes=10))

    controller.tick()
    assert "prod" not in hub.store.failover_groups()  # no move: the silence was the hub's own downtime

    clock[0] += timedelta(seconds=10)
    hub.store.heartbeat("west", clock[0])
    controller.tick()
    assert "prod" not in hub.store.failover_groups()  # east silent 10 s since the hub started: < 3 x 5 s

    clock[0] += timedelta(seconds=10)
    hub.store.heartbeat("west", clock[0])
    controller.tick()
    group = hub.store.failover_groups()["prod"]  # east silent 20 s > 15 s: it has failed
    assert group.active == "west" and group.epoch == 1 and "missed 3 heartbeats" in group.reason
    hub.close()
