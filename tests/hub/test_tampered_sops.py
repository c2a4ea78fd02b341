"""A commit with a tampered SOPS file is refused with a clear error; clusters keep their last good state."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.fixtures.gitrepo import FleetRepo
from tests.hub.helpers import kubeconfig_cluster, make_hub

ROOT = Path(__file__).resolve().parents[2]
SECRET = "secrets/common/registry-credentials.yaml"


def test_tampered_sops_file_is_refused(fleet_repo: FleetRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(ROOT / "demo" / "age.key"))
    shutil.copytree(ROOT / "secrets", fleet_repo.work_path / "secrets")
    shutil.copy(ROOT / ".sops.yaml", fleet_repo.work_path / ".sops.yaml")
    fleet_repo.commit({"clusters/dev.yaml": kubeconfig_cluster("dev", {})}, "with secrets")
    hub = make_hub(fleet_repo, tmp_path / "data")
    assert hub.reconciler.poll().action == "applied"
    good = hub.store.desired("dev")
    assert good is not None and any(o["kind"] == "Secret" for o in good.bundle["objects"])

    text = (fleet_repo.work_path / SECRET).read_text()
    # flip one character inside an encrypted value: the MAC no longer verifies
    tampered = re.sub(r"(REGISTRY_TOKEN: ENC\[AES256_GCM,data:)(.)", lambda m: m.group(1) + ("A" if m.group(2) != "A" else "B"), text)
    assert tampered != text
    sha = fleet_repo.commit({SECRET: tampered}, "tampered")
    result = hub.reconciler.poll()
    assert result.action == "rejected", result
    message = "\n".join(result.problems)
    assert SECRET in message
    assert "age1" in message  # the recipients that could decrypt it
    assert "demo-registry-token" not in message and "AGE-SECRET-KEY" not in message
    assert hub.store.desired("dev") == good
    [event] = [e for e in hub.store.events() if e.kind == "revision.rejected"]
    assert event.commit == sha and SECRET in event.message
    hub.close()
