"""Admin HTTP endpoint: drive faults and read counters of a running simulator from elsewhere.

Plain HTTP on loopback with its own bearer token (recorded in the kubeconfig's
`kubesim` extension). Routes:
  GET  /clusters                         names, URLs, whether each API is down
  GET  /clusters/{name}/counters         requests per verb
  POST /clusters/{name}/counters/reset
  POST /clusters/{name}/faults           {"api_down": bool} | {"latency": s} | {"error_rate": r}
                                         | {"node_ready": {"node": n, "ready": bool}}
                                         | {"stuck": {"kind", "namespace", "name", "stuck": bool}}
  POST /clusters/{name}/wipe
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleet.kubesim.simulator import SimCluster, Simulator

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class AdminError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class AdminApp:
    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body") or len(body) > 65536:
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        try:
            auth = headers.get("authorization", "")
            expected = f"Bearer {self.simulator.admin_token}"
            if not hmac.compare_digest(auth.encode(), expected.encode()):
                raise AdminError(401, "unauthorized")
            result = await self._handle(scope["method"], scope["path"], body)
            await self._respond(send, 200, result)
        except AdminError as error:
            await self._respond(send, error.code, {"error": str(error)})
        except (KeyError, ValueError, TypeError) as error:
            await self._respond(send, 400, {"error": str(error)})

    async def _respond(self, send: Send, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    def _cluster(self, name: str) -> SimCluster:
        cluster = self.simulator.clusters.get(name)
        if cluster is None:
            raise AdminError(404, f"no cluster named {name!r}")
        return cluster

    async def _handle(self, method: str, path: str, body: bytes) -> Any:
        parts = [p for p in path.split("/") if p]
        if parts == ["clusters"] and method == "GET":
            return {
                name: {"url": c.url, "port": c.port, "api_down": c.faults.down,
                       "latency": c.faults.added_latency, "error_rate": c.faults.failure_rate}
                for name, c in self.simulator.clusters.items()
            }  # fmt: skip
        if len(parts) < 3 or parts[0] != "clusters":
            raise AdminError(404, "not found")
        cluster = self._cluster(parts[1])
        action = parts[2:]
        if action == ["counters"] and method == "GET":
            return cluster.counters()
        if action == ["counters", "reset"] and method == "POST":
            cluster.reset_counters()
            return cluster.counters()
        if action == ["wipe"] and method == "POST":
            cluster.wipe()
            return {"wiped": cluster.name}
        if action == ["faults"] and method == "POST":
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise AdminError(400, "expected a JSON object")
            await self._fault(cluster, request)
            return {"ok": True}
        raise AdminError(404, "not found")

    async def _fault(self, cluster: SimCluster, request: dict[str, Any]) -> None:
        if "api_down" in request:
            await cluster.set_down_async(bool(request["api_down"]))
        if "latency" in request:
            cluster.faults.latency(float(request["latency"]))
        if "error_rate" in request:
            cluster.faults.error_rate(float(request["error_rate"]))
        if "node_ready" in request:
            spec = request["node_ready"]
            cluster.faults.node_ready(str(spec["node"]), bool(spec.get("ready", True)))
        if "stuck" in request:
            spec = request["stuck"]
            cluster.faults.stuck(str(spec["kind"]), str(spec.get("namespace", "")), str(spec["name"]),
                                 bool(spec.get("stuck", True)))  # fmt: skip
