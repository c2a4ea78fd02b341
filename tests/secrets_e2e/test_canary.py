"""The no-leak canary: a random value planted in SOPS and in Vault shows up nowhere but in the
target agent's own decryption of its sealed payload.

A full cycle on a real data dir (SQLite file database) with the hub served over HTTP
by uvicorn: first delivery, a rotation to another canary (API) and a third (CLI,
from stdin), and failing paths: a tampered SOPS commit, Vault sealed, a bad agent
credential, and one cluster's agent asking for another's state. Everything
observable is captured and searched: logs (caplog at DEBUG, and a handler set up
as `fleet hub run` sets its own), every HTTP response body (admin and agent,
the target agent's included), CLI output, events, and the raw bytes of every
file in the data dir and the fleet repo.
"""

from __future__ import annotations

import base64
import io
import logging
import secrets
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from fleet.cli import main as fleet_cli
from fleet.hub.daemon import HubDaemon
from fleet.hub.rotation import SecretsController
from fleet.protocol import SealedSecrets
from fleet.secrets.envelope import generate_identity
from fleet.secrets.sops import SopsKeys, encrypt
from tests.fixtures.gitrepo import FleetRepo
from tests.fixtures.vault import BaoServer
from tests.hub.helpers import kubeconfig_cluster, make_hub
from tests.secrets_e2e.conftest import Served
from tests.secrets_e2e.helpers import SimAgent, payments_app, web_app

SOPS_FILE = "secrets/common/registry.yaml"
REGISTRY_KEY = "/Secret/web/registry-credentials"
PAYMENTS_KEY = "/Secret/payments/payments-db"


def forms(value: str) -> list[bytes]:
    """The value, its base64 form, and the base64 runs it leaves inside longer encoded data
    (each of the three alignments, minus the characters its neighbours share)."""
    raw = value.encode()
    found = [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw)]
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw)
        found.append(encoded[(offset * 4 + 2) // 3 + 1 : -4])
    return found


class Recorder:
    """Keeps every response body an httpx client receives, with what was asked."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, bytes]] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.bodies.append((f"{response.request.method} {response.request.url.path} -> {response.status_code}", response.content))


def test_canary_appears_only_in_the_target_agents_decryption(
    fleet_repo: FleetRepo,
    tmp_path: Path,
    vault_server: BaoServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    serve: Served,
) -> None:
    canary = "canary-" + secrets.token_hex(16)
    rotated = "canary-rotated-" + secrets.token_hex(16)
    from_stdin = "canary-stdin-" + secrets.token_hex(16)
    caplog.set_level(logging.DEBUG)

    # ---- the fleet: a SOPS file and a Vault value, both holding the canary
    identity, recipient = generate_identity()
    key_file = tmp_path / "age" / "keys.txt"
    key_file.parent.mkdir()
    key_file.write_text(identity + "\n")
    key_file.chmod(0o600)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    monkeypatch.setenv("VAULT_ADDR", vault_server.addr)
    monkeypatch.setenv("VAULT_TOKEN", vault_server.root_token)
    vault_path = f"shared/canary-{secrets.token_hex(4)}/db"
    vault_server.client().secrets.kv.v2.create_or_update_secret(
        path=vault_path, secret={"password": canary}, mount_point="kv"
    )
    ref = f"vault:kv/{vault_path}#password"
    sops_config = {
        "creation_rules": [
            {"path_regex": r"^secrets/.*\.ya?ml$", "encrypted_regex": "^(data|stringData)$", "age": recipient}
        ]
    }
    fleet_repo.write({".sops.yaml": yaml.safe_dump(sops_config)})
    plaintext = yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "registry-credentials", "namespace": "web"},
            "stringData": {"token": canary},
        }
    ).encode()
    encrypted = encrypt(plaintext, SOPS_FILE, fleet_repo.work_path, SopsKeys(age_key_file=key_file))
    missing = Path("/nonexistent/kubeconfig")
    fleet_repo.commit(
        {
            "fleet.yaml": "pollInterval: 5s\n",
            "clusters/east.yaml": kubeconfig_cluster("east", {"env": "prod"}, missing),
            "clusters/dev.yaml": kubeconfig_cluster("dev", {"env": "dev"}, missing),
            **payments_app(vault_path),
            **web_app("registry-credentials"),
            SOPS_FILE: encrypted,
        },
        "fleet with a canary",
    )

    # ---- the hub on a real data dir, served over HTTP, logging as `fleet hub run` does
    data_dir = tmp_path / "data"
    hub = make_hub(fleet_repo, data_dir)
    hub_log = io.StringIO()
    handler = logging.StreamHandler(hub_log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(hub.secrets.redactor.filter())
    logging.getLogger().addHandler(handler)
    try:
        daemon = HubDaemon(hub)
        assert isinstance(hub.rotation, SecretsController) and hub.rotation is daemon.rotation
        controller = hub.rotation
        url = serve(daemon.app)
        recorder = Recorder()
        hooks = {"response": [recorder]}
        admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {hub.admin_token}"}, event_hooks=hooks)
        http = httpx.Client(base_url=url, event_hooks=hooks)
        cli_output: list[str] = []

        def cli(*args: str, stdin: str | None = None) -> str:
            result = CliRunner().invoke(
                fleet_cli, [*args, "--hub", url], env={"FLEET_TOKEN": hub.admin_token}, input=stdin
            )
            assert result.exception is None or isinstance(result.exception, SystemExit), result.output
            text = result.output + (result.stderr if result.stderr_bytes is not None else "")
            cli_output.append(text)
            return text

        # first delivery
        assert admin.post("/v1/admin/source/sync").json()["action"] == "applied"
        east = SimAgent.bootstrap(admin, http, "east")
        dev = SimAgent.bootstrap(admin, http, "dev")
        east_state = east.desired()
        opened = east.values(east_state)
        assert opened[PAYMENTS_KEY]["password"] == canary.encode()
        assert opened[REGISTRY_KEY]["token"] == canary.encode()
        ciphertext = base64.b64decode(SealedSecrets.model_validate(east_state["secrets"]).ciphertext)
        assert not any(form in ciphertext for form in forms(canary))
        dev_state = dev.desired()
        assert dev.values(dev_state) == {REGISTRY_KEY: {"token": canary.encode()}}
        east.report(east_state)
        dev.report(dev_state)
        controller.tick()

        # rotation through the API, with a value of our own
        response = admin.post("/v1/admin/secrets/rotate", json={"ref": ref, "value": rotated, "destroyOld": True})
        assert response.status_code == 200 and response.json()["newVersion"] == 2, response.text
        east_state = east.desired()
        assert east.values(east_state)[PAYMENTS_KEY]["password"] == rotated.encode()
        east.report(east_state)
        controller.tick()
        assert vault_server.client().secrets.kv.v2.read_secret_metadata(path=vault_path, mount_point="kv")[
            "data"
        ]["versions"]["1"]["destroyed"]

        # rotation through the CLI, the value on stdin
        output = cli("secrets", "rotate", ref, "--value-from-stdin", stdin=from_stdin + "\n")
        assert "version 2 -> 3" in output
        east_state = east.desired()
        assert east.values(east_state)[PAYMENTS_KEY]["password"] == from_stdin.encode()
        east.report(east_state)
        controller.tick()

        # failing paths
        tampered = encrypted.replace(b"data:", b"data:A", 1)
        fleet_repo.commit({SOPS_FILE: tampered}, "tamper with the SOPS file")
        sync = admin.post("/v1/admin/source/sync").json()
        assert sync["action"] == "rejected" and SOPS_FILE in sync["message"]
        assert east.fetch(f'"{east_state["digest"]}"').status_code == 304
        assert http.get("/v1/agents/east/desired", headers={"Authorization": "Bearer fac-east-forged"}).status_code == 401
        assert http.get("/v1/agents/east/desired").status_code == 401
        assert http.get("/v1/agents/east/desired", headers=dev.auth).status_code == 403
        assert http.post("/v1/agents/east/status", headers=dev.auth, json={}).status_code == 403
        assert http.post(
            "/v1/agents/east/bootstrap", json={"token": "fbt-" + "x" * 40, "publicKey": generate_identity()[1]}
        ).status_code == 401
        with vault_server.sealed():
            assert east.fetch().status_code == 503
            assert admin.post("/v1/admin/secrets/rotate", json={"ref": ref, "value": rotated}).status_code == 503
            assert controller.poll_versions(force=True) == []
            cli("secrets", "status")
        assert controller.poll_versions(force=True) == []

        # everything an operator can look at
        cli("status")
        cli("events", "--limit", "500")
        cli("events", "-o", "json", "--limit", "500")
        cli("secrets", "status")
        cli("secrets", "status", "-o", "yaml")
        assert "complete" in cli("secrets", "status", ref)
        cli("clusters", "show", "east")
        cli("clusters", "show", "dev", "-o", "json")
        for path in (
            "/v1/admin/status", "/v1/admin/clusters", "/v1/admin/clusters/east", "/v1/admin/clusters/east/desired",
            "/v1/admin/clusters/dev/desired", "/v1/admin/source", "/v1/admin/secrets", "/v1/admin/failover",
            "/v1/admin/events?limit=1000", "/metrics",
        ):
            assert admin.get(path).status_code == 200, path
        kinds = {e.kind for e in hub.store.events(limit=10000)}
        assert {"secret.rotated", "secret.rollout-complete", "secret.destroyed", "revision.rejected"} <= kinds
        assert {"secret.rotation-failed", "secrets.unavailable", "secret.poll-failed"} <= kinds
        events = "\n".join(f"{e.kind} {e.message} {e.commit} {e.author}" for e in hub.store.events(limit=10000))
        admin.close()
        http.close()
    finally:
        logging.getLogger().removeHandler(handler)

    serve.stop()

    # ---- the search
    files_open = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}
    assert any(name.endswith("fleet.db-wal") for name in files_open), sorted(files_open)
    hub.close()
    files_closed = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}
    repo_files = {
        p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in fleet_repo.base.rglob("*") if p.is_file()
    }
    assert any("checkouts/" in name for name in files_open)
    assert caplog.text and hub_log.getvalue() and recorder.bodies and cli_output

    haystacks: dict[str, bytes] = {
        "caplog": caplog.text.encode(),
        "hub log handler": hub_log.getvalue().encode(),
        "events": events.encode(),
        **{f"response {what} #{i}": body for i, (what, body) in enumerate(recorder.bodies)},
        **{f"cli #{i}": text.encode() for i, text in enumerate(cli_output)},
        **{f"file (hub running) {name}": content for name, content in files_open.items()},
        **{f"file (hub closed) {name}": content for name, content in files_closed.items()},
        **{f"repo {name}": content for name, content in repo_files.items()},
    }
    needles = {value: forms(value) for value in (canary, rotated, from_stdin)}
    leaks = [
        f"{where} holds {'the canary' if value == canary else 'a rotated canary'} ({form!r})"
        for where, haystack in haystacks.items()
        for value, value_forms in needles.items()
        for form in value_forms
        if form in haystack
    ]
    assert not leaks, "\n".join(leaks)
    # The search is able to find what it looks for.
    assert all(form in b"x" + form + b"y" for value_forms in needles.values() for form in value_forms)
    assert forms(canary)[-1] in base64.b64encode(b"ab" + canary.encode() + b"cd")
