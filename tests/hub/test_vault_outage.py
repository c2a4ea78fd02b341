"""A Vault outage never rejects a revision for good and never touches the last good state."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.gitrepo import FleetRepo
from tests.hub.helpers import kubeconfig_cluster, make_hub


def test_vault_outage_defers_the_revision_then_it_applies(
    fleet_repo: FleetRepo, tmp_path: Path, vault_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_ADDR", vault_server.addr)
    monkeypatch.setenv("VAULT_TOKEN", vault_server.root_token)
    path = f"shared/db-{uuid.uuid4().hex[:8]}"
    vault_server.client().secrets.kv.v2.create_or_update_secret(path=path, secret={"password": "pw-1"}, mount_point="kv")
    fleet_repo.commit(
        {
            "clusters/dev.yaml": kubeconfig_cluster("dev", {}),
            "apps/db/fleet.yaml": "namespace: db\ntargets: [{clusterSelector: {}}]\n",
            "apps/db/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n",
        }
    )
    hub = make_hub(fleet_repo, tmp_path / "data")
    assert hub.reconciler.poll().action == "applied"
    good = hub.store.desired("dev")
    fleet_repo.commit(
        {"apps/db/secret.yaml": f"apiVersion: v1\nkind: Secret\nmetadata: {{name: db}}\nstringData:\n  password: vault:kv/{path}#password\n"}
    )
    with vault_server.sealed():
        first = hub.reconciler.poll()
        assert first.action == "deferred", first
        assert hub.reconciler.poll().action == "deferred"
        assert hub.store.desired("dev") == good  # last good state untouched: nothing to prune
        assert [e.kind for e in hub.store.events()].count("revision.deferred") == 1
        assert "pw-1" not in first.message
    applied = hub.reconciler.poll()
    assert applied.action == "applied", applied
    assert any(o["kind"] == "Secret" for o in hub.store.desired("dev").bundle["objects"])  # type: ignore[union-attr]
    hub.close()
