"""`fleet hub run` as a process: it stops its local agents on SIGTERM, and a hub that died
without stopping them reaps the orphan on its next start, so a cluster never has two agents."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

from fleet.demo.services import HubProcess
from tests.e2e.conftest import FAST_SETTINGS, cluster_file
from tests.e2e.harness import eventually
from tests.fixtures.gitrepo import FleetRepo
from tests.fixtures.ports import free_port


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def agent_pid(data_dir: Path, cluster: str) -> int | None:
    try:
        return int((data_dir / "agents" / cluster / "agent.pid").read_text())
    except (OSError, ValueError):
        return None


def test_hub_process_stops_and_reaps_its_agents(
    make_clusters: Callable[..., list], fleet_repo: FleetRepo, tmp_path: Path
) -> None:
    [(cluster, kubeconfig)] = make_clusters("proc")
    fleet_repo.commit({"fleet.yaml": FAST_SETTINGS, f"clusters/{cluster.name}.yaml": cluster_file(cluster.name, kubeconfig, {})})
    data = tmp_path / "hub"

    def start() -> HubProcess:
        args = ["--repo", fleet_repo.url, "--data-dir", str(data), "--dispatch", "local"]
        return HubProcess(args, dict(os.environ), tmp_path / "hub.log", free_port()).start()

    hub = start()
    first = eventually(lambda: (pid := agent_pid(data, cluster.name)) and alive(pid) and pid, what="agent started")
    assert hub.process is not None
    hub.process.send_signal(signal.SIGTERM)
    hub.process.wait(20)
    assert hub.process.returncode == 0, (tmp_path / "hub.log").read_text()[-2000:]
    assert not alive(first), "the hub left its agent running"

    hub = start()
    second = eventually(lambda: (pid := agent_pid(data, cluster.name)) and alive(pid) and pid, what="agent restarted")
    assert hub.process is not None
    hub.process.kill()  # dies without stopping its agent
    hub.process.wait(10)
    assert alive(second)

    hub = start()
    try:
        third = eventually(
            lambda: (pid := agent_pid(data, cluster.name)) and pid != second and alive(pid) and pid, what="new agent"
        )
        assert not alive(second), "the orphaned agent was not reaped"
        assert third != second
    finally:
        hub.stop()
    if alive(second):
        os.kill(second, signal.SIGKILL)
