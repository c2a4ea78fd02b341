"""The Kubernetes wrapper against a real kubesim cluster."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet.agent.kube import Kube, KubeError, KubeUnreachable, UnknownKind, _ThrottledRefresh
from fleet.kubesim import SimCluster
from fleet.protocol import FIELD_MANAGER, LABEL_CLUSTER, LABEL_MANAGED_BY
from tests.agent import bundle


@pytest.fixture
def kube(sim_cluster: SimCluster, sim_kubeconfig: Path) -> Iterator[Kube]:
    client = Kube.from_kubeconfig(str(sim_kubeconfig), sim_cluster.name)
    try:
        yield client
    finally:
        client.close()


def _cm(name: str, cluster: str, owned: bool = True) -> dict[str, Any]:
    obj = bundle.configmap(name)
    obj["metadata"]["namespace"] = "default"
    if owned:
        obj["metadata"]["labels"] = {LABEL_MANAGED_BY: "fleet", LABEL_CLUSTER: cluster}
    return obj


def test_apply_get_list_owned_delete(kube: Kube, sim_cluster: SimCluster) -> None:
    live = kube.apply(_cm("a", sim_cluster.name))
    assert [m["manager"] for m in live["metadata"]["managedFields"]] == [FIELD_MANAGER]
    kube.apply(_cm("b", sim_cluster.name, owned=False))
    kube.apply(_cm("c", "other-cluster"))
    got = kube.get("v1", "ConfigMap", "default", "a")
    assert got is not None and got["data"] == {"greeting": "hello"}
    owned = kube.list_owned(sim_cluster.name, [("v1", "ConfigMap"), ("example.com/v1", "Widget")])
    assert list(owned) == ["/ConfigMap/default/a"]
    assert owned["/ConfigMap/default/a"]["kind"] == "ConfigMap"
    assert kube.delete("v1", "ConfigMap", "default", "a") is True
    assert kube.delete("v1", "ConfigMap", "default", "a") is False
    assert kube.get("v1", "ConfigMap", "default", "a") is None
    assert len(kube.list_nodes()) >= 1


def test_apply_takes_fields_back_from_other_managers(kube: Kube, sim_cluster: SimCluster) -> None:
    kube.apply(_cm("a", sim_cluster.name))
    other = _cm("a", sim_cluster.name)
    other["data"] = {"greeting": "from kubectl"}
    kube.apply(other, field_manager="kubectl")  # forced: now owned by "kubectl"
    live = kube.apply(_cm("a", sim_cluster.name))
    assert live["data"]["greeting"] == "hello"


def test_new_crd_kind_resolves_after_discovery_refresh(kube: Kube) -> None:
    with pytest.raises(UnknownKind):
        kube.resource("example.com/v1", "Widget")
    kube.apply(bundle.crd())
    deadline = time.monotonic() + 10
    while True:  # served once the CRD is established; every miss refreshes discovery
        try:
            assert kube.resource("example.com/v1", "Widget").namespaced
            break
        except UnknownKind:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_api_errors_carry_the_servers_message(kube: Kube) -> None:
    bad = _cm("a", "x")
    bad["metadata"]["namespace"] = "does-not-exist"
    with pytest.raises(KubeError) as raised:
        kube.apply(bad)
    assert raised.value.status == 404 and "does-not-exist" in str(raised.value)


def test_unreachable_api(kube: Kube, sim_cluster: SimCluster) -> None:
    kube.list_nodes()
    sim_cluster.faults.api_down(True)
    try:
        with pytest.raises(KubeUnreachable):
            kube.list_nodes()
    finally:
        sim_cluster.faults.api_down(False)
    assert kube.list_nodes()


def test_token_refresh_hook_is_throttled_and_follows_reinstalls() -> None:
    class Config:
        refresh_api_key_hook: Any = None

    calls: list[int] = []
    config = Config()

    def make_hook(generation: int) -> Any:
        def hook(configuration: Any) -> None:
            calls.append(generation)
            configuration.refresh_api_key_hook = make_hook(generation + 1)  # like the kubeconfig loader
        return hook

    throttled = _ThrottledRefresh(make_hook(0), every=3600)
    config.refresh_api_key_hook = throttled
    for _ in range(5):
        config.refresh_api_key_hook(config)
    assert calls == [0] and config.refresh_api_key_hook is throttled
    throttled._last -= 7200
    config.refresh_api_key_hook(config)
    assert calls == [0, 1] and config.refresh_api_key_hook is throttled
