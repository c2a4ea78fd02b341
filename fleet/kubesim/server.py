"""The HTTP side of one simulated cluster: a raw ASGI app speaking the Kubernetes REST API.

Raw ASGI rather than a framework: the API is one catch-all router, and request overhead
matters for the scale runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import random
import time
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import yaml

from fleet.kubesim import errors, openapi, protobuf, tables
from fleet.kubesim.cluster import KUBERNETES_VERSION, ClusterState, RequestContext
from fleet.kubesim.errors import ApiError
from fleet.kubesim.faults import Counters, Faults
from fleet.kubesim.resources import ResourceType
from fleet.kubesim.selectors import make_matcher
from fleet.kubesim.storage import ExpiredError, Watcher, WatchEvent

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

logger = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024
DEFAULT_WATCH_TIMEOUT = 1800.0
BOOKMARK_INTERVAL = 10.0
AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}
PUBLIC_PATHS = {"/version", "/healthz", "/livez", "/readyz"}

VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": KUBERNETES_VERSION,
    "gitCommit": "kubesim",
    "gitTreeState": "clean",
    "buildDate": "2025-04-22T00:00:00Z",
    "goVersion": "go1.23.8",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def param(self, name: str, default: str = "") -> str:
        return self.query.get(name, default)

    @property
    def wants_table(self) -> bool:
        return "as=Table" in self.headers.get("accept", "")


@dataclass
class Target:
    """What a resource URL points at."""

    resource_type: ResourceType
    namespace: str | None  # None: all namespaces (or cluster-scoped)
    name: str = ""
    subresource: str = ""


class ClusterApp:
    """ASGI application serving one cluster."""

    def __init__(self, state: ClusterState, token: str, faults: Faults, counters: Counters) -> None:
        self.state = state
        self.token = token
        self.faults = faults
        self.counters = counters
        self._watch_tasks: set[asyncio.Event] = set()

    # ASGI entry ------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        raw_query = scope.get("query_string", b"").decode("latin-1")
        query = {k: v[-1] for k, v in parse_qs(raw_query, keep_blank_values=True).items()} if raw_query else {}
        try:
            body = await self._read_body(receive, scope["method"], headers)
        except ApiError as error:
            await self._send_error(send, error)
            return
        request = Request(scope["method"], scope["path"], query, headers, body)
        if self.faults.added_latency > 0:
            await asyncio.sleep(self.faults.added_latency)
        try:
            if request.path not in PUBLIC_PATHS:
                self._authenticate(request)
            if self.faults.should_fail():
                raise random.choice([
                    ApiError(500, "InternalError", "Internal error occurred: injected fault", {}),
                    ApiError(503, "ServiceUnavailable", "the server is currently unable to handle the request", {}),
                ])  # fmt: skip
            await self._route(request, receive, send)
        except ApiError as error:
            await self._send_error(send, error)
        except Exception as error:  # a simulator bug: answer like an apiserver would, keep serving
            # Only the exception type and frames are logged: messages may quote object data.
            frames = "".join(traceback.format_tb(error.__traceback__))
            logger.error("kubesim: internal error on %s %s: %s\n%s", request.method, request.path,
                         type(error).__name__, frames)  # fmt: skip
            with contextlib.suppress(Exception):
                await self._send_error(send, ApiError(500, "InternalError", "Internal error occurred", {}))

    async def _read_body(self, receive: Receive, method: str, headers: dict[str, str]) -> bytes:
        # Always drain the request messages, so a later receive() only returns on disconnect.
        length = headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY:
            raise errors.too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                raise errors.too_large()
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip().encode(), self.token.encode()):
            raise errors.unauthorized()

    # responses ---------------------------------------------------------------------------------
    async def _send_json(
        self, send: Send, status: int, payload: Any, content_type: str = "application/json",
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:  # fmt: skip
        body = payload if isinstance(payload, bytes) else _dumps(payload)
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
                   (b"cache-control", b"no-cache, private")]  # fmt: skip
        if extra_headers:
            headers += extra_headers
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _send_error(self, send: Send, error: ApiError) -> None:
        extra = [(k.encode(), v.encode()) for k, v in error.headers.items()]
        await self._send_json(send, error.code, error.status(), extra_headers=extra)

    @staticmethod
    def _warning_headers(ctx: RequestContext) -> list[tuple[bytes, bytes]]:
        return [(b"warning", f'299 - "{w}"'.encode()) for w in ctx.warnings]

    # routing ---------------------------------------------------------------------------------------
    async def _route(self, request: Request, receive: Receive, send: Send) -> None:
        path = request.path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz"):
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        if path == "/version":
            await self._send_json(send, 200, VERSION_INFO)
            return
        parts = [p for p in path.split("/") if p]
        if not parts:
            await self._send_json(send, 200, {"paths": ["/api", "/api/v1", "/apis", "/healthz", "/openapi/v3", "/version"]})
            return
        if parts[0] == "openapi":
            await self._openapi(request, parts, send)
            return
        if parts[0] == "api":
            if len(parts) == 1:
                await self._discovery(request, send, core=True)
                return
            if parts[1] != "v1":
                raise errors.path_not_found()
            group, version, rest = "", "v1", parts[2:]
        elif parts[0] == "apis":
            if len(parts) == 1:
                await self._discovery(request, send, core=False)
                return
            if len(parts) == 2:
                group_doc = self.state.registry.api_group(parts[1])
                if group_doc is None:
                    raise errors.path_not_found()
                self.counters.count("discovery")
                await self._send_json(send, 200, group_doc)
                return
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise errors.path_not_found()
        if not rest:
            resource_list = self.state.registry.resource_list(group, version)
            if resource_list is None:
                raise errors.path_not_found()
            self.counters.count("discovery")
            await self._send_json(send, 200, resource_list)
            return
        watch_path = False
        if rest[0] == "watch":
            watch_path, rest = True, rest[1:]
        target = self._target(group, version, rest)
        await self._resource(request, target, watch_path, receive, send)

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        lookup = self.state.registry.lookup
        if rest[0] == "namespaces" and len(rest) >= 3:
            resource_type = lookup(group, version, rest[2])
            if resource_type is not None and resource_type.namespaced:
                if len(rest) > 5:
                    raise errors.path_not_found()
                return Target(resource_type, rest[1], rest[3] if len(rest) > 3 else "", rest[4] if len(rest) > 4 else "")
        resource_type = lookup(group, version, rest[0])
        if resource_type is None or len(rest) > 3:
            raise errors.path_not_found()
        if resource_type.namespaced and len(rest) > 1:
            raise errors.path_not_found()
        return Target(resource_type, None, rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else "")

    # discovery -------------------------------------------------------------------------------------
    async def _discovery(self, request: Request, send: Send, core: bool) -> None:
        self.counters.count("discovery")
        accept = request.headers.get("accept", "")
        registry = self.state.registry
        for option in accept.split(","):
            if "as=APIGroupDiscoveryList" in option and "v=v2" in option and "v=v2beta1" not in option:
                await self._send_json(send, 200, registry.aggregated(core), AGGREGATED_CONTENT_TYPE)
                return
            if option.strip().startswith("application/json") and "as=" not in option:
                break
        await self._send_json(send, 200, registry.api_versions() if core else registry.api_group_list())

    async def _openapi(self, request: Request, parts: list[str], send: Send) -> None:
        self.counters.count("discovery")
        if parts[1:2] != ["v3"]:
            raise errors.path_not_found()
        if len(parts) == 2:
            await self._send_json(send, 200, openapi.index(self.state.registry))
            return
        rest = parts[2:]
        if rest[0] == "api" and len(rest) == 2:
            document = openapi.group_version_document(self.state.registry, "", rest[1])
        elif rest[0] == "apis" and len(rest) == 3:
            document = openapi.group_version_document(self.state.registry, rest[1], rest[2])
        else:
            document = None
        if document is None:
            raise errors.path_not_found()
        await self._send_json(send, 200, document)

    # resources ---------------------------------------------------------------------------------------
    def _context(self, request: Request) -> RequestContext:
        dry_run = request.param("dryRun")
        if dry_run and dry_run != "All":
            raise errors.bad_request(f'Invalid dry run value: "{dry_run}" (supported: "All")')
        manager = request.param("fieldManager")
        if len(manager) > 128:
            raise errors.bad_request("fieldManager: Too long: may not be longer than 128")
        if not manager:
            agent = request.headers.get("user-agent", "")
            manager = agent.split("/", 1)[0] if agent else "unknown"
        validation = request.param("fieldValidation") or "Warn"
        if validation not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(
                f'fieldValidation: Unsupported value: "{validation}": supported values: "Ignore", "Strict", "Warn"'
            )
        return RequestContext(manager=manager, dry_run=bool(dry_run), field_validation=validation)

    def _decode_body(self, request: Request, allow_yaml: bool = True) -> Any:
        if not request.body:
            raise errors.bad_request("the request body is empty")
        content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
        if content_type == "application/vnd.kubernetes.protobuf":
            try:
                return protobuf.decode(request.body)
            except (protobuf.ProtobufError, UnicodeDecodeError, ValueError):
                raise errors.unsupported_media_type(content_type, ["application/json", "application/yaml"]) from None
        if "protobuf" in content_type or "cbor" in content_type:
            raise errors.unsupported_media_type(content_type, ["application/json", "application/yaml"])
        try:
            return json.loads(request.body)
        except ValueError:
            if not allow_yaml and "yaml" not in content_type:
                raise errors.bad_request("the body of the request could not be decoded as JSON") from None
        try:
            return yaml.load(request.body, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
        except yaml.YAMLError:
            raise errors.bad_request("error decoding the request body: invalid JSON or YAML") from None

    async def _resource(self, request: Request, target: Target, watch_path: bool, receive: Receive, send: Send) -> None:
        resource_type = target.resource_type
        namespace = target.namespace
        state = self.state
        method = request.method
        if target.namespace is None and resource_type.namespaced and target.name:
            raise errors.path_not_found()
        if target.subresource and target.subresource not in resource_type.subresources:
            raise errors.path_not_found()
        ns = namespace or ""

        if method == "GET" and (watch_path or request.param("watch") in ("true", "1")):
            self.counters.count("watch")
            field_selector = request.param("fieldSelector")
            if target.name:
                name_selector = f"metadata.name={target.name}"
                field_selector = f"{field_selector},{name_selector}" if field_selector else name_selector
            await self._watch(request, resource_type, namespace, field_selector, receive, send)
            return

        if not target.name:
            if method == "GET":
                self.counters.count("list")
                await self._list(request, resource_type, namespace, send)
                return
            if method == "POST":
                self.counters.count("create")
                ctx = self._context(request)
                created = state.create(resource_type, ns, self._decode_body(request), ctx)
                await self._send_json(send, 201, created, extra_headers=self._warning_headers(ctx))
                return
            if method == "DELETE":
                self.counters.count("delete")
                ctx = self._context(request)
                options = self._delete_options(request)
                deleted = state.delete_collection(
                    resource_type, namespace, request.param("labelSelector"), request.param("fieldSelector"), ctx, options
                )
                await self._send_json(send, 200, {
                    "kind": resource_type.list_kind, "apiVersion": resource_type.api_version,
                    "metadata": {"resourceVersion": str(state.store.rv)}, "items": deleted,
                })  # fmt: skip
                return
            raise errors.method_not_allowed()

        name = target.name
        if method == "GET":
            self.counters.count("get")
            if target.subresource == "scale":
                await self._send_json(send, 200, state.get_scale(resource_type, ns, name))
                return
            obj = state.get(resource_type, ns, name)
            if request.wants_table:
                obj = tables.table(resource_type, [obj], request.param("includeObject", "Metadata"),
                                   {"resourceVersion": obj["metadata"].get("resourceVersion", "")})  # fmt: skip
            await self._send_json(send, 200, obj)
            return
        if method == "PUT":
            self.counters.count("update")
            ctx = self._context(request)
            body = self._decode_body(request)
            if target.subresource == "scale":
                result = state.write_scale(resource_type, ns, name, "update", body, ctx)
            else:
                result = state.update(resource_type, ns, name, body, ctx, target.subresource)
            await self._send_json(send, 200, result, extra_headers=self._warning_headers(ctx))
            return
        if method == "PATCH":
            self.counters.count("patch")
            ctx = self._context(request)
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            patch_type = PATCH_TYPES.get(content_type)
            accepted = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
            if not resource_type.custom:
                accepted.insert(2, "application/strategic-merge-patch+json")
            if patch_type is None or (patch_type == "strategic" and resource_type.custom):
                raise errors.unsupported_media_type(content_type, accepted)
            force = request.param("force") in ("true", "1")
            if request.param("force") and patch_type != "apply":
                raise errors.bad_request("force flag is only allowed for apply patches")
            body = self._decode_body(request, allow_yaml=patch_type == "apply")
            existed = state.store.get(resource_type.storage_key, ns, name) is not None
            if target.subresource == "scale":
                result = state.write_scale(resource_type, ns, name, patch_type, body, ctx)
            else:
                result = state.patch(resource_type, ns, name, patch_type, body, ctx, target.subresource, force)
            status = 201 if patch_type == "apply" and not existed and not ctx.dry_run else 200
            await self._send_json(send, status, result, extra_headers=self._warning_headers(ctx))
            return
        if method == "DELETE":
            self.counters.count("delete")
            ctx = self._context(request)
            obj, removed = state.delete(resource_type, ns, name, ctx, self._delete_options(request))
            if removed and resource_type.kind not in ("Namespace", "Pod"):
                details: dict[str, Any] = {"name": name, "kind": resource_type.plural,
                                           "uid": obj["metadata"].get("uid", "")}  # fmt: skip
                if resource_type.group:
                    details["group"] = resource_type.group
                await self._send_json(send, 200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                                  "status": "Success", "details": details})  # fmt: skip
            else:
                # still there (finalizers, a terminating namespace) or a Pod: the object itself
                await self._send_json(send, 200, obj)
            return
        raise errors.method_not_allowed()

    def _delete_options(self, request: Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if request.body:
            try:
                decoded = json.loads(request.body)
            except ValueError:
                raise errors.bad_request("invalid DeleteOptions body") from None
            if isinstance(decoded, dict):
                options.update(decoded)
        if request.param("propagationPolicy"):
            options["propagationPolicy"] = request.param("propagationPolicy")
        policy = options.get("propagationPolicy")
        if policy and policy not in ("Orphan", "Background", "Foreground"):
            raise errors.bad_request(f'propagationPolicy: Unsupported value: "{policy}"')
        grace = request.param("gracePeriodSeconds")
        if grace and not grace.lstrip("-").isdigit():
            raise errors.bad_request("gracePeriodSeconds must be an integer")
        return options

    # list ------------------------------------------------------------------------------------------
    async def _list(self, request: Request, resource_type: ResourceType, namespace: str | None, send: Send) -> None:
        limit_text = request.param("limit")
        limit = int(limit_text) if limit_text.isdigit() else 0
        result = self.state.list_objects(
            resource_type, namespace, request.param("labelSelector"), request.param("fieldSelector"), limit,
            request.param("continue"),
        )  # fmt: skip
        metadata: dict[str, Any] = {"resourceVersion": result.resource_version}
        if result.continue_token:
            metadata["continue"] = result.continue_token
            metadata["remainingItemCount"] = result.remaining
        if request.wants_table:
            payload = tables.table(resource_type, result.items, request.param("includeObject", "Metadata"), metadata)
        else:
            payload = {"kind": resource_type.list_kind, "apiVersion": resource_type.api_version, "metadata": metadata,
                       "items": result.items}  # fmt: skip
        await self._send_json(send, 200, payload)

    # watch -----------------------------------------------------------------------------------------
    async def _watch(
        self,
        request: Request,
        resource_type: ResourceType,
        namespace: str | None,
        field_selector: str,
        receive: Receive,
        send: Send,
    ) -> None:
        state = self.state
        labels, fields = state.parse_selectors(resource_type, request.param("labelSelector"), field_selector)
        matches = make_matcher(labels, fields)
        timeout_text = request.param("timeoutSeconds")
        timeout = float(timeout_text) if timeout_text.replace(".", "", 1).isdigit() else DEFAULT_WATCH_TIMEOUT
        bookmarks = request.param("allowWatchBookmarks") in ("true", "1")
        as_table = request.wants_table
        include = request.param("includeObject", "Metadata")
        rv_text = request.param("resourceVersion")
        send_initial = request.param("sendInitialEvents") in ("true", "1")

        watcher = Watcher(resource_type.storage_key, namespace)
        initial: list[dict[str, Any]] = []
        backlog: list[WatchEvent] = []
        expired: ExpiredError | None = None
        if rv_text in ("", "0") or send_initial:
            initial = [o for o in state.store.list_objects(resource_type.storage_key, namespace) if matches(o)]
            backlog = state.store.subscribe(watcher, None)
        else:
            try:
                since = int(rv_text)
            except ValueError:
                raise errors.bad_request(f"invalid resource version: {rv_text!r}") from None
            try:
                backlog = state.store.subscribe(watcher, since)
            except ExpiredError as error:
                expired = error

        headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-cache, private")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        stopped = asyncio.Event()
        self._watch_tasks.add(stopped)
        disconnected = asyncio.ensure_future(receive())

        def encode(event_type: str, obj: dict[str, Any]) -> bytes:
            if as_table and event_type != "BOOKMARK" and event_type != "ERROR":
                obj = tables.table(resource_type, [obj], include, {"resourceVersion": obj["metadata"]["resourceVersion"]})
            return _dumps({"type": event_type, "object": obj}) + b"\n"

        def bookmark(extra_annotations: dict[str, str] | None = None) -> bytes:
            metadata: dict[str, Any] = {"resourceVersion": str(state.store.rv)}
            if extra_annotations:
                metadata["annotations"] = extra_annotations
            return _dumps({"type": "BOOKMARK", "object": {"kind": resource_type.kind,
                                                          "apiVersion": resource_type.api_version,
                                                          "metadata": metadata}}) + b"\n"  # fmt: skip

        async def write(chunk: bytes) -> None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        try:
            if expired is not None:
                status = errors.gone(str(expired)).status()
                await write(_dumps({"type": "ERROR", "object": status}) + b"\n")
                return
            for obj in initial:
                await write(encode("ADDED", state.as_version(resource_type, obj)))
            if send_initial and bookmarks:
                await write(bookmark({"k8s.io/initial-events-end": "true"}))
            for event in backlog:
                chunk = self._event_chunk(event, matches, resource_type, encode)
                if chunk:
                    await write(chunk)
            deadline = time.monotonic() + timeout
            while not stopped.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if bookmarks:
                        await write(bookmark())
                    break
                getter = asyncio.ensure_future(watcher.queue.get())
                done, _ = await asyncio.wait(
                    {getter, disconnected}, timeout=min(remaining, BOOKMARK_INTERVAL), return_when=asyncio.FIRST_COMPLETED
                )
                if disconnected in done:
                    getter.cancel()
                    break
                if getter not in done:
                    getter.cancel()
                    if bookmarks and time.monotonic() < deadline:
                        await write(bookmark())
                    continue
                next_event = getter.result()
                if next_event is None:
                    break
                chunk = self._event_chunk(next_event, matches, resource_type, encode)
                if chunk:
                    await write(chunk)
        finally:
            state.store.unsubscribe(watcher)
            self._watch_tasks.discard(stopped)
            if not disconnected.done():
                disconnected.cancel()
            with contextlib.suppress(Exception):  # the client may already be gone
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _event_chunk(
        self,
        event: WatchEvent,
        matches: Callable[[dict[str, Any]], bool],
        resource_type: ResourceType,
        encode: Callable[[str, dict[str, Any]], bytes],
    ) -> bytes | None:
        obj = self.state.as_version(resource_type, event.obj)
        now_matches = matches(event.obj)
        if event.type == "ADDED":
            return encode("ADDED", obj) if now_matches else None
        if event.type == "DELETED":
            return encode("DELETED", obj) if now_matches or (event.old is not None and matches(event.old)) else None
        was_matching = event.old is not None and matches(event.old)
        if now_matches and was_matching:
            return encode("MODIFIED", obj)
        if now_matches:
            return encode("ADDED", obj)
        if was_matching:
            return encode("DELETED", obj)
        return None

    def stop_watches(self) -> None:
        for stopped in list(self._watch_tasks):
            stopped.set()
        self.state.store.close_watchers()
