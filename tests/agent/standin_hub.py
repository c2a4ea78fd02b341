"""A stand-in for the hub's agent API, serving fleet.protocol from in-memory state.

Real HTTP (uvicorn on a free loopback port) so the agent's client, retries and
headers are exercised; real sealing (fleet.secrets.envelope.seal) to the
public key the agent registered. Secret values are sealed at serve time and
nowhere else, like the real hub.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Header, HTTPException, Request, Response

from fleet.protocol import (
    AppPolicy,
    BootstrapRequest,
    BootstrapResponse,
    DesiredState,
    PrunePolicy,
    StatusReport,
)
from fleet.secrets.envelope import seal
from tests.fixtures.ports import free_port, wait_for_port


@dataclass
class ClusterEntry:
    objects: list[dict[str, Any]] = field(default_factory=list)
    revision: str = "r0"
    epoch: int = 0
    apps: list[AppPolicy] = field(default_factory=list)
    prune: PrunePolicy = field(default_factory=PrunePolicy)
    poll_interval: int = 15
    drift_interval: int = 30
    # objectKey -> {dataKey: plaintext}; sealed per request, never sent in the clear
    secret_values: dict[str, dict[str, str]] = field(default_factory=dict)
    recipient: str | None = None
    has_desired: bool = False

    def digest(self) -> str:
        material = json.dumps(
            [self.objects, self.revision, self.epoch, [a.model_dump() for a in self.apps], self.prune.model_dump(),
             self.poll_interval, self.drift_interval,
             {k: sorted(v) for k, v in self.secret_values.items()}],
            sort_keys=True,
        )
        values = json.dumps(self.secret_values, sort_keys=True)
        return hashlib.sha256((material + hashlib.sha256(values.encode()).hexdigest()).encode()).hexdigest()[:32]


class StandInHub:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.clusters: dict[str, ClusterEntry] = {}
        self.tokens: dict[str, tuple[str, bool]] = {}  # token -> (cluster, used)
        self.credentials: dict[str, str] = {}  # credential -> cluster
        self.reports: dict[str, list[StatusReport]] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self.desired_failure: int | None = None  # e.g. 503: the hub cannot resolve
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = self._build_app()

    # ------------------------------------------------------------ control

    def cluster(self, name: str) -> ClusterEntry:
        return self.clusters.setdefault(name, ClusterEntry())

    def issue_token(self, cluster: str) -> str:
        token = secrets.token_urlsafe(24)
        self.tokens[token] = (cluster, False)
        self.cluster(cluster)
        return token

    def revoke_credentials(self, cluster: str) -> None:
        for credential, owner in list(self.credentials.items()):
            if owner == cluster:
                del self.credentials[credential]

    def set_desired(self, cluster: str, objects: list[dict[str, Any]], **changes: Any) -> str:
        entry = self.cluster(cluster)
        entry.objects = [json.loads(json.dumps(o)) for o in objects]
        for name, value in changes.items():
            setattr(entry, name, value)
        entry.has_desired = True
        return entry.digest()

    def requests_to(self, suffix: str) -> int:
        return sum(1 for _, path, _ in self.requests if path.endswith(suffix))

    def last_report(self, cluster: str) -> StatusReport:
        return self.reports[cluster][-1]

    # ------------------------------------------------------------ server

    def start(self) -> StandInHub:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_for_port(self.port, what="stand-in hub")
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server, self._thread = None, None
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # the port must really be closed for "hub down" tests
                try:
                    wait_for_port(self.port, timeout=0.05)
                except RuntimeError:
                    break

    # ------------------------------------------------------------ API

    def _authenticate(self, cluster: str, authorization: str | None) -> None:
        if not authorization or not authorization.startswith("Bearer "):
            raise HTTPException(401, "missing agent credential")
        owner = self.credentials.get(authorization.removeprefix("Bearer "))
        if owner is None:
            raise HTTPException(401, "unknown agent credential")
        if owner != cluster:
            raise HTTPException(403, "this credential belongs to another cluster")

    def _build_app(self) -> FastAPI:
        app = FastAPI()
        hub = self

        @app.middleware("http")
        async def record(request: Request, call_next: Any) -> Any:
            response = await call_next(request)
            hub.requests.append((request.method, request.url.path, response.status_code))
            return response

        @app.post("/v1/agents/{cluster}/bootstrap")
        def bootstrap(cluster: str, body: BootstrapRequest) -> BootstrapResponse:
            owner, used = hub.tokens.get(body.token, ("", True))
            if owner != cluster or used:
                raise HTTPException(401, "bootstrap token is invalid, expired or already used")
            hub.tokens[body.token] = (cluster, True)
            credential = "cred-" + secrets.token_urlsafe(24)
            hub.credentials[credential] = cluster
            hub.cluster(cluster).recipient = body.publicKey
            return BootstrapResponse(cluster=cluster, credential=credential)

        @app.get("/v1/agents/{cluster}/desired")
        def desired(
            cluster: str,
            authorization: Annotated[str | None, Header()] = None,
            if_none_match: Annotated[str | None, Header()] = None,
        ) -> Response:
            hub._authenticate(cluster, authorization)
            if hub.desired_failure is not None:
                raise HTTPException(hub.desired_failure, "secrets could not be resolved: vault is down")
            entry = hub.cluster(cluster)
            if not entry.has_desired:
                raise HTTPException(404, "no desired state yet")
            etag = f'"{entry.digest()}"'
            if if_none_match == etag:
                return Response(status_code=304, headers={"ETag": etag})
            sealed = None
            if entry.secret_values:
                assert entry.recipient is not None
                values = {
                    key: {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
                    for key, data in entry.secret_values.items()
                }
                sealed = seal(values, entry.recipient)
            state = DesiredState(
                cluster=cluster,
                revision=entry.revision,
                digest=entry.digest(),
                epoch=entry.epoch,
                generatedAt=datetime.now(UTC),
                objects=entry.objects,
                apps=entry.apps,
                prune=entry.prune,
                pollInterval=entry.poll_interval,
                driftInterval=entry.drift_interval,
                secrets=sealed,
            )
            return Response(state.model_dump_json(), media_type="application/json", headers={"ETag": etag})

        @app.post("/v1/agents/{cluster}/status", status_code=204)
        def status(
            cluster: str, report: StatusReport, authorization: Annotated[str | None, Header()] = None
        ) -> Response:
            hub._authenticate(cluster, authorization)
            hub.reports.setdefault(cluster, []).append(report)
            return Response(status_code=204)

        return app
