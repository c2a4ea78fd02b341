from __future__ import annotations

import hashlib
import hmac
import json
import stat
from pathlib import Path

from click.testing import CliRunner
from fastapi.testclient import TestClient

from fleet.cli import main
from fleet.hub.app import create_app
from tests.fixtures.gitrepo import FleetRepo
from tests.hub.helpers import kubeconfig_cluster, make_hub


def test_git_webhook_is_hmac_signed_and_size_limited(fleet_repo: FleetRepo, tmp_path: Path) -> None:
    fleet_repo.commit({"clusters/dev.yaml": kubeconfig_cluster("dev", {})})
    hub = make_hub(fleet_repo, tmp_path / "data")
    triggered: list[int] = []
    client = TestClient(create_app(hub, trigger_poll=lambda: triggered.append(1)))
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    good = "sha256=" + hmac.new(hub.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    assert client.post("/v1/hooks/git", content=body).status_code == 401
    assert client.post("/v1/hooks/git", content=body, headers={"X-Hub-Signature-256": "sha256=00"}).status_code == 401
    assert client.post("/v1/hooks/git", content=body + b" ", headers={"X-Hub-Signature-256": good}).status_code == 401
    assert triggered == []
    assert client.post("/v1/hooks/git", content=body, headers={"X-Hub-Signature-256": good}).status_code == 202
    assert triggered == [1]
    big = b"x" * (300 * 1024)
    assert client.post("/v1/hooks/git", content=big, headers={"X-Hub-Signature-256": good}).status_code == 413
    hub.close()


def test_data_dir_secrets_are_private(fleet_repo: FleetRepo, tmp_path: Path) -> None:
    fleet_repo.commit({"clusters/dev.yaml": kubeconfig_cluster("dev", {})})
    hub = make_hub(fleet_repo, tmp_path / "data")
    for name in ("admin.token", "webhook.secret", "hub.key"):
        mode = stat.S_IMODE((tmp_path / "data" / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    # the CLI finds the token in the data dir
    result = CliRunner().invoke(main, ["source", "status", "--hub", "http://127.0.0.1:9", "--data-dir", str(tmp_path / "data")])
    assert "cannot reach the hub" in result.output
    hub.close()


def test_schema_command_publishes_json_schemas() -> None:
    for kind, required in (("cluster", {"name", "provider"}), ("app", set()), ("settings", set())):
        result = CliRunner().invoke(main, ["schema", kind])
        assert result.exit_code == 0, result.output
        schema = json.loads(result.output)
        assert schema["$schema"].startswith("https://json-schema.org/")
        assert set(schema.get("required", [])) == required
        assert schema["additionalProperties"] is False
