"""Cycle timing: poll jitter, backoff after hub errors, drift deadline. No I/O."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client as k8s_client

from fleet.agent.hubclient import HubClient
from fleet.agent.kube import Kube
from fleet.agent.loop import Agent, AgentConfig
from fleet.protocol import DesiredState
from tests.agent.harness import FakeClock


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    kube = Kube(k8s_client.ApiClient(k8s_client.Configuration()))
    hub = HubClient("http://127.0.0.1:9", "c1")
    runner = Agent(AgentConfig(cluster="c1", state_dir=tmp_path), kube, hub, clock=FakeClock())
    try:
        yield runner
    finally:
        runner.close()
        hub.close()
        kube.close()


def _desired(poll: int, drift: int) -> DesiredState:
    return DesiredState(cluster="c1", revision="r", digest="d", generatedAt=datetime.now(UTC), objects=[],
                        pollInterval=poll, driftInterval=drift)


def test_poll_interval_with_ten_percent_jitter(agent: Agent) -> None:
    delays = [agent.next_delay() for _ in range(200)]
    assert all(13.5 <= d <= 16.5 for d in delays) and max(delays) - min(delays) > 0.5
    agent.desired = _desired(poll=60, drift=3600)
    assert all(54 <= agent.next_delay() <= 66 for _ in range(50))


def test_backoff_after_hub_errors_grows_and_is_capped(agent: Agent) -> None:
    agent.desired = _desired(poll=20, drift=3600)
    agent.hub_failures = 1
    assert 0.9 <= agent.next_delay() <= 1.1
    agent.hub_failures = 4
    assert 7.2 <= agent.next_delay() <= 8.8
    agent.hub_failures = 50
    assert 72 <= agent.next_delay() <= 88  # at most 4 poll intervals


def test_next_cycle_never_misses_a_drift_check(agent: Agent) -> None:
    assert isinstance(agent.clock, FakeClock)
    agent.desired = _desired(poll=60, drift=30)
    agent.next_drift_at = agent.clock() + 5
    assert agent.next_delay() == pytest.approx(5)
