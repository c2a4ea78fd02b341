"""Issue: fleet status and local agent dispatch, tried as a new user would."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fleet.cli import main
from tests.e2e.conftest import FAST_SETTINGS, cluster_file
from tests.e2e.harness import RunningHub, eventually
from tests.fixtures.gitrepo import FleetRepo

APP = {
    "apps/web/fleet.yaml": "namespace: web\ntargets: [{clusterSelector: {}}]\n",
    "apps/web/deploy.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 1\n"
        "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: web, image: 'nginx:1.27'}]}\n"
    ),
}


def status(hub: RunningHub, *args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(
        main, ["status", *args, "-o", "json"], env={"FLEET_HUB": hub.url, "FLEET_TOKEN": hub.hub.admin_token}
    )
    return result.exit_code, json.loads(result.output)


def health(hub: RunningHub) -> dict[str, str]:
    return {c["name"]: c["health"] for c in status(hub)[1]["clusters"]}


@pytest.mark.slow
def test_dispatch_restarts_status_and_hub_restart(
    make_clusters: Callable[..., list], fleet_repo: FleetRepo, tmp_path: Path
) -> None:
    (east, east_kc), (west, west_kc) = make_clusters("east", "west")
    fleet_repo.commit(
        {
            "fleet.yaml": FAST_SETTINGS,
            f"clusters/{east.name}.yaml": cluster_file(east.name, east_kc, {"env": "prod"}),
            f"clusters/{west.name}.yaml": cluster_file(west.name, west_kc, {"env": "prod"}),
            **APP,
        }
    )
    hub = RunningHub.start_new(fleet_repo.url, tmp_path / "hub", dispatch="local")
    try:
        eventually(lambda: status(hub)[0] == 0, timeout=45, what="fleet converged (status exit 0)")
        code, fleet = status(hub)
        assert fleet["summary"] == {
            "total": 2, "byHealth": {"Healthy": 2}, "inSync": 2, "outOfSync": 0, "drifted": 0, "ok": True
        }  # fmt: skip
        table = CliRunner().invoke(main, ["status"], env={"FLEET_HUB": hub.url, "FLEET_TOKEN": hub.hub.admin_token})
        assert table.exit_code == 0 and "2 clusters: 2 Healthy; 2 in sync" in table.output
        code, detail = status(hub, east.name)
        assert code == 0 and {o["key"] for o in detail["objects"]} >= {"apps/Deployment/web/web", "/Namespace//web"}

        # Kill one agent process: the hub restarts it.
        dispatcher = hub.daemon.dispatcher
        old_pid = dispatcher.pids()[east.name]
        os.kill(old_pid, signal.SIGKILL)
        new_pid = eventually(
            lambda: (pid := dispatcher.pids().get(east.name)) and pid != old_pid and pid, what="agent restarted"
        )
        assert new_pid != old_pid
        assert any(e.kind == "agent.restarted" and e.cluster == east.name for e in hub.hub.store.events())

        # An agent that stops heartbeating shows as Unreachable within three poll intervals.
        os.kill(dispatcher.pids()[west.name], signal.SIGSTOP)
        stopped = time.monotonic()
        eventually(lambda: health(hub)[west.name] == "Unreachable", timeout=10, what="west Unreachable")
        assert time.monotonic() - stopped < 3 * 1 + 3  # three 1 s intervals, plus a poll of slack
        code, _ = status(hub)
        assert code == 2  # CI can gate on it
        os.kill(dispatcher.pids()[west.name], signal.SIGCONT)
        eventually(lambda: health(hub)[west.name] == "Healthy", what="west back")

        # A cluster whose API is down is reported Unreachable by its (running) agent.
        east.faults.api_down(True)
        eventually(lambda: health(hub)[east.name] == "Unreachable", what="east API down")
        east.faults.api_down(False)
        eventually(lambda: status(hub)[0] == 0, what="fleet healthy again")
        revision = hub.hub.store.source_state().current_sha
        bootstraps = sum(1 for e in hub.hub.store.events() if e.kind == "agent.bootstrapped")
    finally:
        hub.stop()

    # Hub stopped: the clusters stay as they are.
    deploy = east.get_object("apps/v1", "Deployment", "web", "web")
    time.sleep(2)
    assert east.get_object("apps/v1", "Deployment", "web", "web") == deploy

    # Hub restarted on the same data dir: its state is intact; agents come back with their credentials.
    hub = RunningHub.start_new(fleet_repo.url, tmp_path / "hub", dispatch="local")
    try:
        assert hub.hub.store.source_state().current_sha == revision
        eventually(lambda: status(hub)[0] == 0, what="fleet healthy after restart")
        assert sum(1 for e in hub.hub.store.events() if e.kind == "agent.bootstrapped") == bootstraps
    finally:
        hub.stop()
