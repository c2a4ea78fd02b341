"""Issue: Git inventory, cluster registration and the hub store, tried as a new user would.

A Git repo with a kubesim cluster (kubeconfig) and an EKS cluster served by moto; the hub
runs on SQLite and on PostgreSQL; the CLI talks to it over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fleet.cli import main
from tests.e2e.conftest import cluster_file
from tests.e2e.harness import RunningHub, eventually
from tests.fixtures.gitrepo import FleetRepo
from tests.fixtures.gpg import GpgKey

SETTINGS = "pollInterval: 1s\n"


def aws_cluster(name: str, account: str, eks_name: str) -> str:
    return (
        f"name: {name}\nprovider:\n  type: aws\n  account: '{account}'\n  region: us-east-1\n  cluster: {eks_name}\n"
        "labels: {env: prod, region: us-east-1}\n"
    )


def cli(hub: RunningHub, *args: str) -> Any:
    result = CliRunner().invoke(main, list(args), env={"FLEET_HUB": hub.url, "FLEET_TOKEN": hub.hub.admin_token})
    return result


def clusters_json(hub: RunningHub) -> dict[str, dict[str, Any]]:
    result = cli(hub, "clusters", "list", "-o", "json")
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.output)}


@pytest.mark.slow
def test_registration_bad_commits_signing_and_restart(
    database_url: str,
    make_clusters: Callable[..., list],
    moto_endpoint: Any,
    fleet_repo: FleetRepo,
    gpg_key: GpgKey,
    tmp_path: Path,
) -> None:
    (kube, kube_kc), (third, third_kc) = make_clusters("kube", "third")
    eks = moto_endpoint.create_eks_cluster("prod-eks", version="1.31")
    fleet_repo.commit(
        {
            "fleet.yaml": SETTINGS,
            f"clusters/{kube.name}.yaml": cluster_file(kube.name, kube_kc, {"env": "dev"}),
            "clusters/aws-prod.yaml": aws_cluster("aws-prod", moto_endpoint.account, "prod-eks"),
        },
        "two clusters",
    )
    hub = RunningHub.start_new(fleet_repo.url, tmp_path / "hub", database_url=database_url)
    try:
        rows = eventually(
            lambda: (r := clusters_json(hub)) and all(c["state"] == "registered" for c in r.values()) and len(r) == 2 and r,
            what="two clusters registered",
        )
        assert rows["aws-prod"]["endpoint"] == eks["endpoint"].rstrip("/")
        assert rows["aws-prod"]["kubernetesVersion"] == "1.31"
        assert rows[kube.name]["endpoint"] == kube.url
        assert rows[kube.name]["kubernetesVersion"].startswith("v1.32")

        # A third cluster committed appears within a poll interval, with endpoint and version.
        fleet_repo.commit({f"clusters/{third.name}.yaml": cluster_file(third.name, third_kc, {"env": "dev"})}, "third")
        rows = eventually(
            lambda: (r := clusters_json(hub)).get(third.name, {}).get("state") == "registered" and r,
            timeout=10,
            what="third cluster registered",
        )
        assert rows[third.name]["endpoint"] == third.url and rows[third.name]["kubernetesVersion"]
        good = fleet_repo.head()

        # A broken cluster file: a clear error naming the file and the field; the clusters stay.
        fleet_repo.commit(
            {"clusters/broken.yaml": "name: broken\nprovider:\n  type: kubeconfig\n  contxt: x\n"}, "broken cluster"
        )
        events = eventually(
            lambda: [e for e in json.loads(cli(hub, "events", "-o", "json").output) if e["kind"] == "revision.rejected"],
            what="rejection event",
        )
        assert "clusters/broken.yaml:4: provider.contxt: unknown field" in events[-1]["message"]
        assert "clusters/broken.yaml" in events[-1]["message"] and "provider.context" in events[-1]["message"]
        listing = cli(hub, "clusters", "list")
        assert "clusters/broken.yaml:4: provider.contxt: unknown field" in listing.output
        assert {n for n, r in clusters_json(hub).items() if r["state"] == "registered"} == {"aws-prod", kube.name, third.name}
        assert hub.hub.store.source_state().current_sha == good

        # A force-push of an older commit is held with an event until accepted.
        fixed = fleet_repo.commit({"clusters/broken.yaml": None}, "remove the broken file")
        eventually(lambda: hub.hub.store.source_state().current_sha == fixed, what="fix applied")
        fleet_repo.reset_hard(good)
        fleet_repo.push(force=True)
        held = eventually(
            lambda: [e for e in json.loads(cli(hub, "events", "-o", "json").output) if e["kind"] == "source.held"],
            what="hold event",
        )
        assert good[:12] in held[-1]["message"] and "fleet source accept" in held[-1]["message"]
        assert hub.hub.store.source_state().current_sha == fixed
        status = cli(hub, "source", "status")
        assert "held" in status.output and good[:12] in status.output
        accepted = cli(hub, "source", "accept", good[:12])
        assert accepted.exit_code == 0, accepted.output
        assert hub.hub.store.source_state().current_sha == good
        events_before = hub.hub.store.count_events()
    finally:
        hub.stop()

    # Restart with signing enforced: nothing lost; an unsigned commit does not move the hub.
    hub = RunningHub.start_new(
        fleet_repo.url,
        tmp_path / "hub",
        database_url=database_url,
        signing_mode="enforce",
        trusted_keys=(gpg_key.fingerprint,),
        gnupghome=gpg_key.home,
    )
    try:
        assert set(clusters_json(hub)) == {"aws-prod", kube.name, third.name}
        assert hub.hub.store.count_events() >= events_before
        assert hub.hub.store.source_state().current_sha == good
        signed = fleet_repo.commit({"README.md": "signed\n"}, "signed change", sign_with=gpg_key)
        eventually(lambda: hub.hub.store.source_state().current_sha == signed, what="signed commit applied")
        unsigned = fleet_repo.commit({"README.md": "unsigned\n"}, "unsigned change")
        refused = eventually(
            lambda: [e for e in hub.hub.store.events() if e.kind == "source.unverified" and e.commit == unsigned],
            what="unverified event",
        )
        assert "not signed" in refused[0].message or "unsigned" in refused[0].message, refused[0].message
        assert hub.hub.store.source_state().current_sha == signed
    finally:
        hub.stop()
