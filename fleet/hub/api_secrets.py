"""Admin API for secrets: rollout status per source, and rotation (`fleet secrets status|rotate`).

A rotation's value goes straight to Vault: it is parsed here by hand so that a
malformed request is answered without echoing its input (FastAPI's default
422 body repeats the offending input), and no response ever carries it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field, ValidationError
from starlette.concurrency import run_in_threadpool

from fleet.hub.app import AdminDep, Strict
from fleet.hub.core import Hub, HubError
from fleet.hub.rotation import MAX_VALUE_CHARS, SecretsController, SourceStatus, as_utc, version_label


class RotateRequest(Strict):
    ref: str = Field(max_length=512, description="vault:<mount>/<path>#<key>, unpinned")
    generate: int | None = Field(default=None, ge=8, le=4096, description="length of a generated value")
    value: str | None = Field(
        default=None, min_length=1, max_length=MAX_VALUE_CHARS, repr=False, description="the new value (write-only)"
    )
    destroyOld: bool = Field(default=False, description="destroy the replaced version once every target runs the new one")


class RotateResponse(Strict):
    ref: str
    oldVersion: int | None
    newVersion: int
    destroyOld: bool
    rendered: bool
    message: str
    targets: list[str]


class ObjectHealthRow(Strict):
    key: str
    health: str


class ClusterSecretRow(Strict):
    cluster: str
    expected: str
    applied: str | None
    onCurrent: bool
    healthy: bool
    objects: list[ObjectHealthRow]
    reportedAt: datetime | None


class SecretStatusRow(Strict):
    ref: str
    kind: str
    current: str | None = Field(description="the version being rolled out: a Vault version, or a SOPS file's hash")
    fingerprint: str
    previous: str | None
    state: str = Field(description="rolling | complete | stalled")
    targets: list[str]
    onCurrent: list[str]
    behind: list[str]
    destroyPending: list[int]
    destroyed: list[int]
    rotatedAt: datetime | None
    rotatedBy: str | None
    rolloutStartedAt: datetime | None
    completedAt: datetime | None
    policy: str | None = Field(description="cron schedule of the rotation policy, if any")
    nextRotation: datetime | None


class SecretDetail(SecretStatusRow):
    clusters: list[ClusterSecretRow]


def _controller(hub: Hub) -> SecretsController:
    if not isinstance(hub.rotation, SecretsController):
        raise HubError(503, "the secrets controller is not running")
    return hub.rotation


def _row(status: SourceStatus) -> dict[str, Any]:
    record = status.record
    state = status.rollout.state
    return {
        "ref": status.source,
        "kind": status.kind,
        "current": version_label(status.rollout.current),
        "fingerprint": status.rollout.current,
        "previous": version_label(record.previous_version) if record else None,
        "state": status.phase,
        "targets": [c.cluster for c in status.rollout.clusters],
        "onCurrent": list(state.on_version),
        "behind": list(state.behind),
        "destroyPending": list(record.destroy_pending) if record else [],
        "destroyed": list(record.destroyed) if record else [],
        "rotatedAt": as_utc(record.rotated_at) if record else None,
        "rotatedBy": record.rotated_by if record else None,
        "rolloutStartedAt": as_utc(record.rollout_started_at) if record else None,
        "completedAt": as_utc(record.rollout_completed_at) if record and status.phase == "complete" else None,
        "policy": status.policy.schedule if status.policy else None,
        "nextRotation": status.next_rotation,
    }


def _detail(status: SourceStatus) -> SecretDetail:
    on = set(status.rollout.state.on_version)
    clusters = [
        ClusterSecretRow(
            cluster=c.cluster,
            expected=c.expected,
            applied=c.applied,
            onCurrent=c.cluster in on,
            healthy=c.healthy,
            objects=[ObjectHealthRow(key=o.key, health=o.health) for o in c.objects],
            reportedAt=c.reported_at,
        )
        for c in status.rollout.clusters
    ]
    return SecretDetail(**_row(status), clusters=clusters)


router = APIRouter(prefix="/v1/admin/secrets", tags=["secrets"])


@router.get("", response_model=list[SecretStatusRow])
def list_secrets(hub: AdminDep) -> list[SecretStatusRow]:
    """Every secret source in force (Vault references and SOPS files) with its rollout."""
    return [SecretStatusRow(**_row(s)) for s in _controller(hub).status()]


@router.post(
    "/rotate",
    response_model=RotateResponse,
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": RotateRequest.model_json_schema()}}}
    },
)
async def rotate_secret(request: Request, hub: AdminDep) -> RotateResponse:
    """Write a new Vault version (generated, or the given value) and roll it out at once."""
    hub.require_leader()
    try:
        body = RotateRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False, include_context=False)
        )
        raise HubError(422, f"invalid rotation request: {problems}") from None
    if body.value is not None:
        hub.secrets.redactor.register(body.value)  # from here on, the hub's log filter knows it
    controller = _controller(hub)
    outcome = await run_in_threadpool(
        lambda: controller.rotate(
            body.ref, generate=body.generate, value=body.value, destroy_old_version=body.destroyOld
        )
    )
    return RotateResponse(
        ref=outcome.ref,
        oldVersion=outcome.old_version,
        newVersion=outcome.new_version,
        destroyOld=outcome.destroy_old,
        rendered=outcome.rendered,
        message=outcome.message,
        targets=list(outcome.targets),
    )


@router.get("/{ref:path}", response_model=SecretDetail)
def show_secret(ref: str, hub: AdminDep) -> SecretDetail:
    """One source's rollout per cluster: expected and applied version, and the health of its consumers."""
    return _detail(_controller(hub).detail(ref))
