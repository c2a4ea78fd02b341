"""A kubeconfig cluster for real: kubesim over HTTPS, cross-checked with kubectl."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml

from fleet.inventory.models import ClusterSpec
from fleet.providers import ProviderConfig, ProviderRegistry


@pytest.fixture
def simulator() -> Iterator[Any]:
    try:
        from fleet.kubesim import Simulator
    except ImportError as err:
        raise AssertionError(f"fleet.kubesim.Simulator is needed for this test and could not be imported: {err}") from err
    sim = Simulator(tls=True)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def test_identity_and_access_of_a_kubesim_cluster(simulator: Any, tmp_path: Path) -> None:
    simulator.add_cluster("edge-1")
    path = tmp_path / "kubeconfig"
    simulator.write_kubeconfig(path)
    document = yaml.safe_load(path.read_text())
    context = next(entry["name"] for entry in document["contexts"] if "edge-1" in entry["name"])
    spec = ClusterSpec.model_validate({"name": "edge-1", "provider": {"type": "kubeconfig", "context": context}})
    registry = ProviderRegistry(ProviderConfig(default_kubeconfig=path))

    identity = registry.identity(spec)

    kubectl = subprocess.run(
        ["kubectl", "--kubeconfig", str(path), "--context", context, "version", "-o", "json"],
        capture_output=True, text=True, timeout=30,
    )
    assert kubectl.returncode == 0, kubectl.stderr
    assert identity.kubernetes_version == json.loads(kubectl.stdout)["serverVersion"]["gitVersion"]
    assert identity.endpoint.startswith("https://127.0.0.1:")
    assert identity.provider_id == f"kubeconfig://{context}@{identity.endpoint}"
    assert identity.ca_fingerprint is not None and identity.ca_fingerprint.startswith("sha256:")

    # The access works for ordinary API calls too, and its kubeconfig works for kubectl.
    access = registry.access(spec)
    with access.kubernetes_client() as api:
        names = [ns.metadata.name for ns in kubernetes.client.CoreV1Api(api).list_namespace().items]
    assert "default" in names
    exported = tmp_path / "exported"
    exported.write_text(yaml.safe_dump(access.kubeconfig("exported")))
    exported.chmod(0o600)
    listed = subprocess.run(
        ["kubectl", "--kubeconfig", str(exported), "get", "namespaces", "-o", "name"],
        capture_output=True, text=True, timeout=30,
    )
    assert listed.returncode == 0, listed.stderr
    assert "namespace/default" in listed.stdout.split()
