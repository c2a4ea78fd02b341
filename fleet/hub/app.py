"""The hub's HTTP API (FastAPI): agent protocol, admin API for the CLI, Git webhook.

Every request is size-limited and authenticated (agents by their per-cluster
credential, the CLI by the admin token, webhooks by an HMAC signature), and
request models reject unknown fields.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleet import __version__
from fleet.hub.core import Hub, HubError
from fleet.hub.views import ClusterDetail, ClusterRow, EventRow, FailoverGroupRow, FleetStatus, SourceRow
from fleet.protocol import BootstrapRequest, BootstrapResponse, DesiredState, StatusReport

WEBHOOK_MAX_BYTES = 256 * 1024


class BodyLimit:
    """Reject request bodies over `max_bytes` with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = WEBHOOK_MAX_BYTES if scope.get("path", "").startswith("/v1/hooks/") else self.max_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await JSONResponse({"detail": f"request body over {limit} bytes"}, status_code=413)(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge as exc:
            await JSONResponse({"detail": f"request body over {exc.limit} bytes"}, status_code=413)(scope, receive, send)


class _TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]


def bearer(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return None


def require_admin(hub: HubDep, authorization: Annotated[str | None, Header()] = None) -> Hub:
    token = bearer(authorization)
    if token is None or not hmac.compare_digest(token.encode(), hub.admin_token.encode()):
        raise HubError(401, "admin token required (FLEET_TOKEN or the hub's data dir)", {"WWW-Authenticate": "Bearer"})
    return hub


AdminDep = Annotated[Hub, Depends(require_admin)]


def agent_for(cluster: str, hub: HubDep, authorization: Annotated[str | None, Header()] = None) -> Hub:
    hub.authenticate_agent(cluster, bearer(authorization))
    return hub


AgentDep = Annotated[Hub, Depends(agent_for)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenRequest(Strict):
    ttlSeconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)


class TokenResponse(Strict):
    cluster: str
    token: str
    expiresAt: str
    hub: str


class AcceptRequest(Strict):
    sha: str = Field(pattern=r"^[0-9a-f]{7,40}$")


class SyncResponse(Strict):
    action: str
    sha: str | None = None
    message: str = ""
    problems: list[str] = []


# ------------------------------------------------------------------ agents

agents = APIRouter(prefix="/v1/agents", tags=["agents"])


@agents.post("/{cluster}/bootstrap", response_model=BootstrapResponse)
def bootstrap(cluster: str, body: BootstrapRequest, hub: HubDep) -> BootstrapResponse:
    """Exchange a one-time bootstrap token (and the agent's age public key) for a per-cluster credential."""
    return hub.bootstrap(cluster, body)


@agents.get(
    "/{cluster}/desired",
    response_model=DesiredState,
    responses={304: {"description": "unchanged since the digest in If-None-Match"}},
)
def desired(
    cluster: str, hub: AgentDep, response: Response, if_none_match: Annotated[str | None, Header()] = None
) -> Any:
    """The cluster's desired state. Secret values come only sealed to this agent's key. Also a heartbeat."""
    answer = hub.desired(cluster, if_none_match)
    if answer.not_modified:
        return Response(status_code=304, headers={"ETag": answer.etag})
    response.headers["ETag"] = answer.etag
    response.headers["Cache-Control"] = "no-store"
    return answer.state


@agents.post("/{cluster}/status", status_code=204)
def status(cluster: str, body: StatusReport, hub: AgentDep) -> Response:
    """Applied revision and digest, per-object health, drift and errors; also the heartbeat."""
    hub.report_status(cluster, body)
    return Response(status_code=204)


# ------------------------------------------------------------------ admin

admin = APIRouter(prefix="/v1/admin", tags=["admin"])


@admin.get("/status", response_model=FleetStatus)
def fleet_status(hub: AdminDep) -> FleetStatus:
    return hub.fleet_status()


@admin.get("/clusters", response_model=list[ClusterRow])
def list_clusters(hub: AdminDep) -> list[ClusterRow]:
    return hub.cluster_rows()


@admin.get("/clusters/{name}", response_model=ClusterDetail)
def show_cluster(name: str, hub: AdminDep, events: int = Query(20, ge=0, le=500)) -> ClusterDetail:
    return hub.cluster_detail(name, events)


class DesiredView(Strict):
    cluster: str
    revision: str
    digest: str
    epoch: int
    appliedDigest: str | None
    objects: list[dict[str, Any]]


@admin.get("/clusters/{name}/desired", response_model=DesiredView)
def cluster_desired(name: str, hub: AdminDep) -> DesiredView:
    """The cluster's desired bundle as stored: secret placeholders only, never values."""
    record = hub.store.desired(name)
    cluster = hub.store.cluster(name)
    if record is None or cluster is None:
        raise HubError(404, f"no desired state for {name!r}")
    return DesiredView(
        cluster=name,
        revision=record.revision,
        digest=record.digest,
        epoch=record.epoch,
        appliedDigest=cluster.applied_digest,
        objects=list(record.bundle.get("objects", [])),
    )


@admin.post("/clusters/{name}/tokens", response_model=TokenResponse)
def issue_token(name: str, body: TokenRequest, hub: AdminDep) -> TokenResponse:
    token, expires = hub.issue_bootstrap_token(name, timedelta(seconds=body.ttlSeconds))
    return TokenResponse(cluster=name, token=token, expiresAt=expires.isoformat(), hub=hub.config.url)


class InstallRequest(Strict):
    hubUrl: str | None = Field(default=None, description="URL the in-cluster agent uses to reach the hub")
    image: str | None = None


class InstallResponse(Strict):
    cluster: str
    applied: list[str]


@admin.post("/clusters/{name}/install", response_model=InstallResponse)
async def install_agent(name: str, body: InstallRequest, hub: AdminDep) -> InstallResponse:
    hub.require_leader()
    applied = await run_in_threadpool(hub.install_agent, name, body.hubUrl, body.image)
    return InstallResponse(cluster=name, applied=applied)


class RecoverResponse(Strict):
    cluster: str
    method: str
    applied: list[str]


@admin.post("/clusters/{name}/recover", response_model=RecoverResponse)
async def recover_cluster(name: str, body: InstallRequest, hub: AdminDep) -> RecoverResponse:
    """Re-bootstrap the agent of a cluster that lost everything; it then restores the cluster from Git."""
    hub.require_leader()
    method, applied = await run_in_threadpool(hub.recover, name, body.hubUrl, body.image)
    return RecoverResponse(cluster=name, method=method, applied=applied)


@admin.get("/events", response_model=list[EventRow])
def list_events(
    hub: AdminDep,
    limit: int = Query(100, ge=1, le=1000),
    cluster: str | None = None,
    after: int | None = Query(None, ge=0),
) -> list[EventRow]:
    return hub.events(limit, cluster, after)


@admin.get("/source", response_model=SourceRow)
def source_status(hub: AdminDep) -> SourceRow:
    return hub.source_row()


@admin.post("/source/accept", response_model=SyncResponse)
async def source_accept(body: AcceptRequest, hub: AdminDep) -> SyncResponse:
    """Let a held revision (force-push, large inventory shrink) through, then poll at once."""
    hub.require_leader()
    sha = body.sha
    state = hub.store.source_state()
    for candidate in (state.held_sha, state.remote_sha):
        if candidate and candidate.startswith(sha):
            sha = candidate
            break
    if len(sha) != 40:
        raise HubError(404, f"no held or fetched revision starts with {body.sha}")
    hub.reconciler.accept(sha)
    result = await run_in_threadpool(hub.reconciler.poll)
    return SyncResponse(action=result.action, sha=result.sha, message=result.message, problems=result.problems)


@admin.post("/source/sync", response_model=SyncResponse)
async def source_sync(hub: AdminDep) -> SyncResponse:
    """Poll the fleet repo now."""
    hub.require_leader()
    result = await run_in_threadpool(hub.reconciler.poll)
    return SyncResponse(action=result.action, sha=result.sha, message=result.message, problems=result.problems)


class FailoverRequest(Strict):
    to: str | None = Field(default=None, description="member to move to; default: the best healthy standby")


class FailoverResponse(Strict):
    group: str
    active: str
    epoch: int
    reason: str


def _controller(hub: Hub) -> Any:
    if hub.failover is None:
        raise HubError(503, "the failover controller is not running")
    return hub.failover


@admin.get("/failover", response_model=list[FailoverGroupRow])
def failover_groups(hub: AdminDep) -> list[FailoverGroupRow]:
    return hub.failover_rows()


@admin.post("/failover/{group}", response_model=FailoverResponse)
async def failover(group: str, body: FailoverRequest, hub: AdminDep) -> FailoverResponse:
    hub.require_leader()
    state = await run_in_threadpool(_controller(hub).failover, group, body.to)
    return FailoverResponse(group=group, active=state.active, epoch=state.epoch, reason=state.reason)


@admin.post("/failback/{group}", response_model=FailoverResponse)
async def failback(group: str, hub: AdminDep) -> FailoverResponse:
    hub.require_leader()
    state = await run_in_threadpool(_controller(hub).failback, group)
    return FailoverResponse(group=group, active=state.active, epoch=state.epoch, reason=state.reason)


# ------------------------------------------------------------------ webhooks

hooks = APIRouter(prefix="/v1/hooks", tags=["hooks"])


@hooks.post("/git", status_code=202)
async def git_hook(
    request: Request, hub: HubDep, x_hub_signature_256: Annotated[str | None, Header()] = None
) -> dict[str, str]:
    """A push happened: poll now. The body must be signed (GitHub-style `X-Hub-Signature-256`)."""
    body = await request.body()
    expected = "sha256=" + hmac.new(hub.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    if x_hub_signature_256 is None or not hmac.compare_digest(expected, x_hub_signature_256.strip()):
        raise HubError(401, "missing or wrong X-Hub-Signature-256")
    trigger: Callable[[], None] | None = getattr(request.app.state, "trigger_poll", None)
    if trigger is not None:
        trigger()
    return {"status": "poll scheduled"}


# ------------------------------------------------------------------ app


def create_app(hub: Hub, trigger_poll: Callable[[], None] | None = None) -> FastAPI:
    app = FastAPI(
        title="fleet hub",
        version=__version__,
        description="Desired state for pull agents, and the admin API behind the `fleet` CLI.",
    )
    app.state.hub = hub
    app.state.trigger_poll = trigger_poll
    app.include_router(agents)
    app.include_router(admin)
    app.include_router(hooks)
    from fleet.hub.api_secrets import router as secrets_router  # imports this module: load it late

    app.include_router(secrets_router)

    @app.exception_handler(HubError)
    async def hub_error(_request: Request, exc: HubError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", response_class=PlainTextResponse, tags=["meta"])
    def metrics() -> str:
        rows = hub.cluster_rows()
        lines = [
            "# TYPE fleet_clusters gauge",
            *(
                f'fleet_clusters{{health="{health}"}} {sum(1 for r in rows if r.health == health)}'
                for health in ("Healthy", "Progressing", "Degraded", "Unreachable", "Unknown")
            ),
            "# TYPE fleet_cluster_in_sync gauge",
            *(f'fleet_cluster_in_sync{{cluster="{r.name}"}} {int(r.inSync)}' for r in rows),
            "# TYPE fleet_cluster_drifted_objects gauge",
            *(f'fleet_cluster_drifted_objects{{cluster="{r.name}"}} {r.driftedObjects}' for r in rows),
        ]
        return "\n".join(lines) + "\n"

    app.add_middleware(BodyLimit, max_bytes=hub.config.max_body_bytes)
    return app
