"""Rotation and rollout against real OpenBao and Git, with agents speaking the real protocol."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from fleet.hub.rotation import cron_day_of_week, cron_trigger
from fleet.protocol import SealedSecrets
from fleet.secrets.envelope import open_sealed
from fleet.secrets.errors import SecretError
from fleet.secrets.vault import VaultClient
from tests.secrets_e2e.conftest import FLEET_YAML, World, fleet_files
from tests.secrets_e2e.helpers import checksum

SECRET_KEY = "/Secret/payments/payments-db"
DEPLOYMENT_KEY = "apps/Deployment/payments/payments"


def test_rotation_rolls_out_and_destroys_the_old_version_only_once_complete(world: World) -> None:
    east, west = world.agents["east"], world.agents["west"]
    first = east.desired()
    old_value = east.values(first)[SECRET_KEY]["password"]
    assert old_value == world.vault_value(1).encode()
    old_checksum = checksum(first, "payments")
    world.report_all()
    world.controller.tick()
    row = world.row()
    assert (row["current"], row["state"], row["targets"], row["behind"]) == ("1", "complete", ["east", "west"], [])
    before = world.digests()

    response = world.admin.post("/v1/admin/secrets/rotate", json={"ref": world.ref, "generate": 40, "destroyOld": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["oldVersion"], body["newVersion"], body["rendered"], body["destroyOld"]) == (1, 2, True, True)
    assert body["targets"] == ["east", "west"]

    # Only the bundles using the reference change.
    after = world.digests()
    assert after["east"] != before["east"] and after["west"] != before["west"]
    assert after["dev"] == before["dev"]

    # The target agent gets the new value sealed to it, and its Deployment rolls.
    second = east.desired()
    new_value = east.values(second)[SECRET_KEY]["password"]
    assert len(new_value) == 40 and new_value != old_value
    assert new_value == world.vault_value(2).encode()
    assert second["secretVersions"][world.ref] == world.fingerprint(2)
    assert checksum(second, "payments") not in (None, old_checksum)
    with pytest.raises(SecretError):
        open_sealed(SealedSecrets.model_validate(second["secrets"]), west.identity)
    assert new_value.decode() not in response.text

    world.controller.tick()
    row = world.row()
    assert (row["current"], row["previous"], row["state"]) == ("2", "1", "rolling")
    assert row["behind"] == ["east", "west"] and row["destroyPending"] == [1]

    # east confirms; west applies but its Deployment is still rolling: not done, nothing destroyed.
    east.report(second)
    west_state = west.desired()
    west.report(west_state, health={DEPLOYMENT_KEY: "Progressing"})
    world.controller.tick()
    row = world.row()
    assert (row["onCurrent"], row["behind"], row["state"]) == (["east"], ["west"], "rolling")
    assert world.vault_versions()["1"]["destroyed"] is False
    detail = world.admin.get(f"/v1/admin/secrets/{world.ref.replace('#', '%23')}").json()
    west_row = next(c for c in detail["clusters"] if c["cluster"] == "west")
    assert west_row["applied"] == world.fingerprint(2) and west_row["healthy"] is False
    assert {"key": DEPLOYMENT_KEY, "health": "Progressing"} in west_row["objects"]
    assert "secret.destroyed" not in world.event_kinds()

    # A restarted controller finds the pending destroy in the store.
    from fleet.hub.rotation import SecretsController

    world.hub.rotation = world.controller = SecretsController(world.hub, now=world.clock)
    west.report(west_state)
    world.controller.tick()
    row = world.row()
    assert (row["state"], row["onCurrent"], row["behind"]) == ("complete", ["east", "west"], [])
    assert (row["destroyPending"], row["destroyed"]) == ([], [1])
    versions = world.vault_versions()
    assert versions["1"]["destroyed"] is True and versions["2"]["destroyed"] is False
    kinds = world.event_kinds()
    assert kinds.index("secret.rotated") < kinds.index("secret.rollout-complete") < kinds.index("secret.destroyed")
    world.controller.tick()
    assert world.event_kinds().count("secret.destroyed") == 1


def test_a_stalled_rollout_keeps_the_old_version(world: World) -> None:
    world.report_all()
    world.controller.tick()
    outcome = world.controller.rotate(world.ref, generate=32, destroy_old_version=True)
    assert (outcome.old_version, outcome.new_version, outcome.rendered) == (1, 2, True)
    east = world.agents["east"]
    east.report(east.desired())  # west never reports
    world.controller.tick()
    assert world.row()["state"] == "rolling"

    world.clock.advance(minutes=11)
    world.controller.tick()
    world.controller.tick()
    row = world.row()
    assert (row["state"], row["behind"], row["destroyPending"], row["destroyed"]) == ("stalled", ["west"], [1], [])
    assert world.vault_versions()["1"]["destroyed"] is False
    stalled = [e for e in world.hub.store.events(limit=500) if e.kind == "secret.rollout-stalled"]
    assert len(stalled) == 1 and stalled[0].severity == "warning"
    assert "behind: west" in stalled[0].message and "keeping old version(s) 1" in stalled[0].message
    assert "secret.destroyed" not in world.event_kinds()


def test_vault_down_when_writing_changes_nothing(world: World) -> None:
    before = world.digests()
    with world.vault.sealed():
        response = world.admin.post("/v1/admin/secrets/rotate", json={"ref": world.ref, "generate": 32})
        assert response.status_code == 503, response.text
        assert "nothing changed" in response.json()["detail"] and "sealed" in response.json()["detail"]
    assert list(world.vault_versions()) == ["1"]
    assert world.digests() == before
    [failed] = [e for e in world.hub.store.events(limit=500) if e.kind == "secret.rotation-failed"]
    assert failed.severity == "error"


def test_vault_down_during_the_rerender_keeps_every_cluster_on_its_last_good_state(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    east = world.agents["east"]
    last_good = east.desired()
    etag = f'"{last_good["digest"]}"'
    before = world.digests()
    original_write = VaultClient.write

    def write_then_seal(self: VaultClient, mount: str, path: str, data: dict[str, str]) -> int:
        version = original_write(self, mount, path, data)
        world.vault.seal()  # Vault goes down right after accepting the new version
        return version

    monkeypatch.setattr(VaultClient, "write", write_then_seal)
    try:
        response = world.admin.post("/v1/admin/secrets/rotate", json={"ref": world.ref, "generate": 32})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["newVersion"], body["rendered"]) == (2, False)
        assert "last good state" in body["message"]
        assert world.digests() == before
        assert "render.failed" in world.event_kinds()
        # The serve path cannot seal values: 503, no values, and the last good state still stands.
        refused = east.fetch()
        assert refused.status_code == 503 and "Retry-After" in refused.headers
        assert "ciphertext" not in refused.text and "objects" not in refused.text
        assert east.fetch(etag).status_code == 304
    finally:
        monkeypatch.setattr(VaultClient, "write", original_write)
        world.vault.unseal()

    # Vault is back: version polling notices the version the bundles do not carry yet.
    assert world.controller.poll_versions(force=True) == [world.ref]
    after = world.digests()
    assert after["east"] != before["east"] and after["dev"] == before["dev"]
    assert east.values(east.desired())[SECRET_KEY]["password"] == world.vault_value(2).encode()


def test_version_polling_picks_up_a_version_written_outside_fleet(world: World) -> None:
    assert world.controller.poll_versions(force=True) == []
    before = world.digests()
    renders = world.event_kinds().count("render.updated")
    by_hand = "by-hand-" + secrets.token_hex(8)
    world.vault.client().secrets.kv.v2.create_or_update_secret(
        path=world.path, secret={"password": by_hand}, mount_point="kv"
    )
    assert world.controller.poll_versions() == []  # not due yet: polled a moment ago
    world.clock.advance(seconds=5)
    assert world.controller.poll_versions() == [world.ref]
    after = world.digests()
    assert after["east"] != before["east"] and after["west"] != before["west"] and after["dev"] == before["dev"]
    east = world.agents["east"]
    assert east.values(east.desired())[SECRET_KEY]["password"] == by_hand.encode()
    [changed] = [e for e in world.hub.store.events(limit=500) if e.kind == "secret.version-changed"]
    assert world.ref in changed.message and "version 2" in changed.message and by_hand not in changed.message
    world.clock.advance(seconds=5)
    assert world.controller.poll_versions() == []
    assert world.event_kinds().count("render.updated") == renders + 1


def test_rotation_policies_are_cron_jobs(world: World) -> None:
    scheduler = BackgroundScheduler(timezone=UTC)  # never started: jobs are called by hand
    world.controller.scheduler = scheduler
    policies = (
        "  rotation:\n"
        f"    - {{ref: '{world.ref}', schedule: '* * * * *', generate: 24, destroyOld: true}}\n"
        "    - {ref: 'vault:kv/shared/other/db#password', schedule: '0 3 * *'}\n"
    )
    world.repo.commit(fleet_files(world.path, FLEET_YAML + policies), "rotate every minute")
    assert world.hub.reconciler.poll().action == "applied"
    world.controller.tick()

    job = scheduler.get_job(f"secret-rotation:{world.ref}")
    assert job is not None and isinstance(job.trigger, CronTrigger)
    assert str(job.trigger) == "cron[month='*', day='*', day_of_week='*', hour='*', minute='*']"
    assert str(job.trigger.timezone) == "UTC"
    now = datetime.now(UTC)
    assert job.trigger.get_next_fire_time(None, now) - now <= timedelta(minutes=1)
    assert [j.id for j in scheduler.get_jobs()] == [job.id]
    [invalid] = [e for e in world.hub.store.events(limit=500) if e.kind == "secret.policy-invalid"]
    assert "vault:kv/shared/other/db#password" in invalid.message and "5 fields" in invalid.message

    outcome = job.func(*job.args)
    assert (outcome.old_version, outcome.new_version, outcome.destroy_old) == (1, 2, True)
    east = world.agents["east"]
    assert len(east.values(east.desired())[SECRET_KEY]["password"]) == 24
    row = world.row()
    assert row["policy"] == "* * * * *" and row["nextRotation"] is not None and row["destroyPending"] == [1]
    assert row["rotatedBy"] == "rotation policy (* * * * *)"

    world.controller.tick()  # same revision: the job stays as it is
    assert scheduler.get_job(job.id) is not None
    world.repo.commit(fleet_files(world.path), "no more rotation")
    assert world.hub.reconciler.poll().action == "applied"
    world.controller.tick()
    assert scheduler.get_jobs() == []


def test_cron_day_of_week_counts_from_sunday() -> None:
    assert cron_day_of_week("*") == "*"
    assert cron_day_of_week("0") == cron_day_of_week("7") == "sun"
    assert cron_day_of_week("1-5") == "mon,tue,wed,thu,fri"
    assert cron_day_of_week("*/2") == "sun,tue,thu,sat"
    assert cron_day_of_week("sat,SUN") == "sun,sat"
    assert cron_day_of_week("5-7") == "sun,fri,sat"
    with pytest.raises(ValueError):
        cron_day_of_week("8")
    with pytest.raises(ValueError):
        cron_day_of_week("5-1")
    sunday = cron_trigger("0 3 * * 0").get_next_fire_time(None, datetime(2026, 1, 1, tzinfo=UTC))
    assert sunday is not None and sunday.strftime("%A %H:%M") == "Sunday 03:00"


def test_rotate_api_refuses_bad_requests_without_echoing_values(world: World) -> None:
    value = "never-echo-" + secrets.token_hex(12)
    cases = [
        ({"ref": world.ref, "generate": 32, "value": value}, 400, "exactly one"),
        ({"ref": world.ref}, 400, "exactly one"),
        ({"ref": world.ref + "?version=1", "value": value}, 400, "pinned"),
        ({"ref": "vault:kv/shared/nobody/db#password", "value": value}, 404, "not used by any cluster"),
        ({"ref": "vault:kv/../etc#password", "value": value}, 400, "not allowed"),
        ({"ref": world.ref, "value": value, "surprise": value}, 422, "surprise"),
        ({"ref": world.ref, "value": [value]}, 422, "value"),
        ({"ref": world.ref, "value": value * 10000}, 422, "at most"),
        ({"ref": world.ref, "generate": 4}, 422, "generate"),
    ]
    for body, status, hint in cases:
        response = world.admin.post("/v1/admin/secrets/rotate", json=body)
        assert response.status_code == status, (body.keys(), response.text)
        assert hint in response.json()["detail"], response.text
        assert value not in response.text
    garbled = world.admin.post(
        "/v1/admin/secrets/rotate", content=b'{"ref": "x", "value": "' + value.encode(), headers={"Content-Type": "application/json"}
    )
    assert garbled.status_code == 422 and value not in garbled.text
    anonymous = world.admin.post(
        "/v1/admin/secrets/rotate", json={"ref": world.ref, "value": value}, headers={"Authorization": ""}
    )
    assert anonymous.status_code == 401 and value not in anonymous.text
    assert list(world.vault_versions()) == ["1"]

    detail = world.admin.get("/v1/admin/secrets/" + world.ref.replace("#", "%23"))
    assert detail.status_code == 200 and [c["cluster"] for c in detail.json()["clusters"]] == ["east", "west"]
    assert world.admin.get("/v1/admin/secrets/vault:kv/shared/nobody/db%23password").status_code == 404
    assert world.admin.get("/openapi.json").json()["paths"]["/v1/admin/secrets/rotate"]["post"]["requestBody"]


def test_old_version_waits_for_every_user_of_the_path(world: World) -> None:
    """Vault versions a whole path: rotating #password bumps #user too, so the old version is
    destroyed only once the cluster reading #user also runs the new one."""
    world.vault.client().secrets.kv.v2.patch(path=world.path, secret={"user": "app"}, mount_point="kv")  # version 2
    files = fleet_files(world.path)
    files["apps/web/user.yaml"] = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-user\n"
        f"stringData:\n  user: vault:kv/{world.path}#user\n"
    )
    world.repo.commit(files, "dev reads the user name from the same path")
    assert world.hub.reconciler.poll().action == "applied"
    world.report_all()
    world.controller.tick()

    outcome = world.controller.rotate(world.ref, generate=32, destroy_old_version=True)
    assert (outcome.old_version, outcome.new_version, outcome.targets) == (2, 3, ("east", "west"))
    user_ref = f"vault:kv/{world.path}#user"
    dev = world.agents["dev"]
    dev_state = dev.desired()
    assert dev_state["secretVersions"][user_ref] == world.fingerprint(3)
    assert dev.values(dev_state)["/Secret/web/db-user"] == {"user": b"app"}
    for name in ("east", "west"):
        world.agents[name].report(world.agents[name].desired())
    world.controller.tick()
    assert world.row()["state"] == "complete"
    assert world.vault_versions()["2"]["destroyed"] is False and "secret.destroyed" not in world.event_kinds()

    dev.report(dev_state)
    world.controller.tick()
    versions = world.vault_versions()
    assert versions["2"]["destroyed"] is True and versions["1"]["destroyed"] is False
    assert world.row()["destroyed"] == [2]


def test_the_daemon_runs_the_controller(world: World) -> None:
    from fleet.hub.daemon import HubDaemon
    from fleet.hub.rotation import SecretsController

    policy = f"  rotation:\n    - {{ref: '{world.ref}', schedule: '0 3 * * 0'}}\n"
    world.repo.commit(fleet_files(world.path, FLEET_YAML + policy), "weekly rotation")
    assert world.hub.reconciler.poll().action == "applied"
    daemon = HubDaemon(world.hub)
    assert isinstance(world.hub.rotation, SecretsController) and world.hub.rotation is daemon.rotation
    daemon.start_background()
    try:
        ids = {job.id for job in daemon.scheduler.get_jobs()}
        assert {"secret-rollouts", "secret-version-poll", f"secret-rotation:{world.ref}"} <= ids
        weekly = daemon.scheduler.get_job(f"secret-rotation:{world.ref}")
        assert weekly is not None and weekly.next_run_time.strftime("%A %H:%M") == "Sunday 03:00"
    finally:
        daemon.stop_background()
