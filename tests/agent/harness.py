"""Wiring an Agent to a kubesim cluster and the stand-in hub for one test."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleet.agent.hubclient import HubClient, RetryPolicy
from fleet.agent.kube import Kube
from fleet.agent.loop import Agent, AgentConfig, CycleOutcome
from fleet.kubesim import SimCluster
from tests.agent.standin_hub import StandInHub

FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)
WRITE_VERBS = ("create", "update", "patch", "delete")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Harness:
    hub: StandInHub
    sim: SimCluster
    kubeconfig: Path
    state_dir: Path
    token_file: Path
    clock: FakeClock = field(default_factory=FakeClock)
    agents: list[Agent] = field(default_factory=list)
    closers: list[Any] = field(default_factory=list)

    @property
    def cluster(self) -> str:
        return self.sim.name

    def new_token(self) -> str:
        token = self.hub.issue_token(self.cluster)
        self.token_file.write_text(token + "\n")
        return token

    def agent(self, **config: Any) -> Agent:
        kube = Kube.from_kubeconfig(str(self.kubeconfig), self.cluster, pool_size=12)
        hub_client = HubClient(self.hub.url, self.cluster, timeout=3, retry=FAST_RETRY)
        settings: dict[str, Any] = {
            "cluster": self.cluster,
            "token_file": self.token_file,
            "state_dir": self.state_dir,
            "crd_timeout": 10.0,
            **config,
        }
        agent = Agent(AgentConfig(**settings), kube, hub_client, clock=self.clock)
        self.agents.append(agent)
        self.closers += [agent.close, hub_client.close, kube.close]
        return agent

    def close(self) -> None:
        for close in self.closers:
            close()

    def live(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        meta = obj["metadata"]
        return self.sim.get_object(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])

    def writes(self) -> int:
        counters = self.sim.counters()
        return sum(counters.get(verb, 0) for verb in WRITE_VERBS)

    def kubectl(self, *args: str) -> str:
        result = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), "--context", self.cluster, *args],
            capture_output=True, text=True, timeout=30,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def converge(self, agent: Agent, timeout: float = 10.0) -> CycleOutcome:
        """Run cycles until every object is Healthy and the report has been sent."""
        deadline = time.monotonic() + timeout
        while True:
            outcome = agent.run_once(check_drift=False)
            report = outcome.report
            assert report is not None
            if (
                report.objects
                and all(o.health == "Healthy" for o in report.objects)
                and not agent.needs_apply
                and agent._last_report is not None
                and report.model_dump(mode="json", exclude={"drift", "pruned"}) == agent._last_report
            ):
                return outcome
            assert time.monotonic() < deadline, f"did not converge: {report.model_dump_json(indent=1)[:3000]}"
            time.sleep(0.05)
