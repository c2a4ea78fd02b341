from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fleet.kubesim import SimCluster, Simulator
from fleet.kubesim import kubeconfig as kubeconfig_module


@pytest.fixture
def make_clusters(simulator: Simulator, tmp_path: Path) -> Iterator[Callable[..., list[tuple[SimCluster, Path]]]]:
    """Fresh kubesim clusters, each with its own kubeconfig file (context name == cluster name)."""
    made: list[str] = []

    def make(*suffixes: str) -> list[tuple[SimCluster, Path]]:
        out = []
        for suffix in suffixes:
            name = f"{suffix}-{uuid.uuid4().hex[:6]}"
            cluster = simulator.add_cluster(name)
            made.append(name)
            out.append((cluster, kubeconfig_module.write(cluster.kubeconfig(), tmp_path / f"{name}.kubeconfig")))
        return out

    yield make
    for name in made:
        if name in simulator.clusters:
            simulator.remove_cluster(name)


def cluster_file(name: str, kubeconfig: Path, labels: dict[str, str], extra: str = "") -> str:
    label_text = "".join(f"\n  {k}: {v}" for k, v in labels.items())
    return (
        f"name: {name}\nprovider:\n  type: kubeconfig\n  context: {name}\n  path: {kubeconfig}\n"
        f"labels:{label_text or ' {}'}\n{extra}"
    )


FAST_SETTINGS = "pollInterval: 1s\nagent:\n  pollInterval: 1s\n  driftInterval: 2s\n"
