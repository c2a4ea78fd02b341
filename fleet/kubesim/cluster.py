"""One simulated cluster's API semantics: create, read, update, patch, apply, delete, list.

Runs on the simulator's event loop thread (no awaits inside an operation, so every
read-modify-write is atomic). HTTP details live in `server.py`; this module speaks in
objects and raises `ApiError`s.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fleet.kubesim import apply as ssa
from fleet.kubesim import errors, patches, schema, validation
from fleet.kubesim.controllers import Controllers
from fleet.kubesim.defaults import apply_defaults
from fleet.kubesim.objects import deep_copy, generate_suffix, new_uid, timestamp
from fleet.kubesim.resources import Registry, ResourceType, types_from_crd
from fleet.kubesim.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    format_label_selector,
    make_matcher,
    parse_field_selector,
    parse_label_selector,
    validate_field_selector,
)
from fleet.kubesim.storage import Store

Obj = dict[str, Any]

BUILTIN_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
CONTROLLER_MANAGER = "kube-controller-manager"
KUBERNETES_VERSION = "v1.32.4"


@dataclass
class RequestContext:
    """Per-request options that shape a write."""

    manager: str = ""
    dry_run: bool = False
    field_validation: str = "Ignore"  # Strict | Warn | Ignore
    warnings: list[str] = field(default_factory=list)


@dataclass
class ListResult:
    items: list[Obj]
    resource_version: str
    continue_token: str = ""
    remaining: int | None = None


class ClusterState:
    def __init__(self, name: str, controller_delay: float = 0.5, nodes: int = 3, watch_history: int = 1000) -> None:
        self.name = name
        self.store = Store(history=watch_history)
        self.registry = Registry()
        self.node_count = nodes
        self.stuck: set[tuple[str, str, str]] = set()  # (kind, namespace, name)
        self._service_ip = 1
        self.controllers = Controllers(self, controller_delay)
        self.bootstrap()

    # setup ---------------------------------------------------------------------
    def bootstrap(self) -> None:
        """The objects a fresh cluster has: namespaces, nodes, the kubernetes Service."""
        ctx = RequestContext(manager="kube-apiserver")
        namespaces = self.type_of("v1", "Namespace")
        for namespace in BUILTIN_NAMESPACES:
            self.create(namespaces, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, ctx)
        nodes = self.type_of("v1", "Node")
        for index in range(1, self.node_count + 1):
            self.create(nodes, "", self.controllers.node_object(index), RequestContext(manager="kubelet"))
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}]},
        }  # fmt: skip
        self.create(self.type_of("v1", "Service"), "default", service, ctx)
        storage_class = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "standard",
                         "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "kubesim.io/local",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        }  # fmt: skip
        self.create(self.type_of("storage.k8s.io/v1", "StorageClass"), "", storage_class, ctx)

    def wipe(self) -> None:
        """Lose every object and CRD, as if the cluster were rebuilt."""
        self.controllers.cancel_all()
        self.store.clear()
        self.registry.reset_custom()
        self.stuck.clear()
        self._service_ip = 1
        self.bootstrap()

    def type_of(self, api_version: str, kind: str) -> ResourceType:
        resource_type = self.registry.by_kind(api_version, kind)
        if resource_type is None:
            raise KeyError(f"{api_version} {kind} is not served")
        return resource_type

    # reads ---------------------------------------------------------------------
    def get(self, resource_type: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.store.get(resource_type.storage_key, namespace, name)
        if obj is None:
            raise errors.not_found(resource_type, name)
        return self.as_version(resource_type, obj)

    def as_version(self, resource_type: ResourceType, obj: Obj) -> Obj:
        """An object as served by `resource_type` (CRDs may serve one stored object in several versions)."""
        if obj.get("apiVersion") == resource_type.api_version:
            return obj
        return {**obj, "apiVersion": resource_type.api_version}

    def list_objects(
        self,
        resource_type: ResourceType,
        namespace: str | None,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
    ) -> ListResult:
        labels, fields = self.parse_selectors(resource_type, label_selector, field_selector)
        matches = make_matcher(labels, fields)
        start: tuple[str, str] | None = None
        if continue_token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                start = (str(decoded["start"][0]), str(decoded["start"][1]))
            except (ValueError, KeyError, IndexError, TypeError):
                raise errors.bad_request("continue key is not valid: invalid continue token") from None
        list_rv = str(self.store.rv)
        selected: list[Obj] = []
        candidates = self.store.list_objects(resource_type.storage_key, namespace)
        for obj in candidates:
            metadata = obj["metadata"]
            if start is not None and (metadata.get("namespace", ""), metadata["name"]) <= start:
                continue
            if (labels or fields) and not matches(obj):
                continue
            selected.append(obj)
        items = [self.as_version(resource_type, obj) for obj in selected]
        if limit and len(items) > limit:
            last = items[limit - 1]["metadata"]
            token = base64.urlsafe_b64encode(
                json.dumps({"rv": list_rv, "start": [last.get("namespace", ""), last["name"]]}).encode()
            ).decode()
            return ListResult(items[:limit], list_rv, token, len(items) - limit)
        return ListResult(items, list_rv)

    def parse_selectors(
        self, resource_type: ResourceType, label_selector: str, field_selector: str
    ) -> tuple[LabelSelector, FieldSelector]:
        try:
            labels = parse_label_selector(label_selector)
            fields = parse_field_selector(field_selector)
            validate_field_selector(fields, resource_type.kind if not resource_type.custom else "")
        except SelectorError as error:
            raise errors.bad_request(f"unable to parse requirement: {error}") from None
        return labels, fields

    # writes: entry points --------------------------------------------------------
    def create(self, resource_type: ResourceType, namespace: str, body: Any, ctx: RequestContext) -> Obj:
        obj = self._decode(resource_type, body, ctx)
        metadata = obj["metadata"]
        if resource_type.namespaced:
            body_namespace = metadata.get("namespace")
            if body_namespace and namespace and body_namespace != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            metadata["namespace"] = namespace or body_namespace or "default"
        else:
            metadata.pop("namespace", None)
        if metadata.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = f"{metadata['generateName']}{generate_suffix()}"
        entries = ssa.record_update([], {}, obj, ctx.manager, resource_type.api_version, self._scope(resource_type, ""),
                                    timestamp())  # fmt: skip
        return self._store_new(resource_type, obj, entries, ctx)

    def update(
        self,
        resource_type: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        ctx: RequestContext,
        subresource: str = "",
    ) -> Obj:
        obj = self._decode(resource_type, body, ctx)
        metadata = obj["metadata"]
        if metadata.get("name") and metadata["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({metadata['name']}) does not match the name on the URL ({name})"
            )
        if resource_type.namespaced and metadata.get("namespace") and metadata["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        live = self.store.get(resource_type.storage_key, namespace, name)
        if live is None:
            raise errors.not_found(resource_type, name)
        wanted_rv = metadata.get("resourceVersion")
        if wanted_rv and wanted_rv != live["metadata"]["resourceVersion"]:
            raise errors.conflict(resource_type, name)
        return self._write(resource_type, live, obj, ctx, subresource)

    def patch(
        self,
        resource_type: ResourceType,
        namespace: str,
        name: str,
        patch_type: str,
        body: Any,
        ctx: RequestContext,
        subresource: str = "",
        force: bool = False,
    ) -> Obj:
        if patch_type == "apply":
            return self.apply(resource_type, namespace, name, body, ctx, force, subresource)
        live = self.store.get(resource_type.storage_key, namespace, name)
        if live is None:
            raise errors.not_found(resource_type, name)
        current = self.as_version(resource_type, deep_copy(live))
        try:
            if patch_type == "json":
                patched = patches.json_patch(current, body)
            elif patch_type == "merge":
                patched = patches.merge_patch(current, body)
            else:
                root = schema.builtin_root(resource_type.group, resource_type.version, resource_type.kind)
                patched = patches.strategic_merge_patch(current, body, root)
        except patches.PatchError as error:
            raise errors.ApiError(422, "Invalid", str(error)) from None
        if not isinstance(patched, dict):
            raise errors.bad_request("patch result is not an object")
        self._check_types(resource_type, patched)
        self._check_strict(resource_type, patched, ctx)
        metadata = patched.get("metadata") or {}
        if metadata.get("name", name) != name:
            raise errors.bad_request(f"the name of the object ({metadata.get('name')}) does not match the name on the URL ({name})")
        wanted_rv = metadata.get("resourceVersion")
        if wanted_rv and wanted_rv != live["metadata"]["resourceVersion"]:
            raise errors.conflict(resource_type, name)
        return self._write(resource_type, live, patched, ctx, subresource)

    def apply(
        self,
        resource_type: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        ctx: RequestContext,
        force: bool,
        subresource: str = "",
    ) -> Obj:
        if not ctx.manager:
            raise errors.bad_request("PATCH, application/apply-patch+yaml requires fieldManager parameter")
        if not isinstance(body, dict):
            raise errors.bad_request("error decoding YAML: the applied configuration must be an object")
        if body.get("apiVersion") != resource_type.api_version or body.get("kind") != resource_type.kind:
            raise errors.bad_request(
                f"the API version in the data ({body.get('apiVersion')}) does not match the expected API version "
                f"({resource_type.api_version})"
                if body.get("apiVersion") != resource_type.api_version
                else f"the kind in the data ({body.get('kind')}) does not match the expected kind ({resource_type.kind})"
            )
        metadata = body.get("metadata")
        if not isinstance(metadata, dict):
            raise errors.bad_request("metadata must be an object")
        if metadata.get("name", name) != name:
            raise errors.bad_request(f"the name of the object ({metadata.get('name')}) does not match the name on the URL ({name})")
        if resource_type.namespaced and metadata.get("namespace") not in (None, "", namespace):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        applied = deep_copy(body)
        self._check_types(resource_type, applied)
        self._check_strict(resource_type, applied, ctx, apply=True)
        validation.prune_unknown(applied, self._root(resource_type))
        applied["metadata"].pop("managedFields", None)
        scope = self._scope(resource_type, subresource)
        live = self.store.get(resource_type.storage_key, namespace, name)
        now = timestamp()
        if live is None:
            if subresource:
                raise errors.not_found(resource_type, name)
            base: Obj = {"apiVersion": resource_type.api_version, "kind": resource_type.kind,
                         "metadata": {"name": name}}  # fmt: skip
            if resource_type.namespaced:
                base["metadata"]["namespace"] = namespace
            try:
                merged, entries = ssa.server_side_apply(
                    base, applied, [], ctx.manager, resource_type.api_version, force, scope, now
                )
            except ssa.ApplyConflictError as error:  # pragma: no cover - nothing to conflict with
                raise self._conflict_error(resource_type, name, error) from None
            merged["metadata"]["name"] = name
            return self._store_new(resource_type, merged, entries, ctx)
        current = self.as_version(resource_type, deep_copy(live))
        entries_before = ssa.parse_managed_fields(current["metadata"].get("managedFields"))
        try:
            merged, entries = ssa.server_side_apply(
                current, applied, entries_before, ctx.manager, resource_type.api_version, force, scope, now
            )
        except ssa.ApplyConflictError as error:
            raise self._conflict_error(resource_type, name, error) from None
        return self._write(resource_type, live, merged, ctx, subresource, entries=entries)

    def _conflict_error(self, resource_type: ResourceType, name: str, error: ssa.ApplyConflictError) -> errors.ApiError:
        causes = [
            {"type": "FieldManagerConflict",
             "message": f'conflict with "{c.manager}" using {c.api_version}', "field": ssa.format_path(c.path)}
            for c in error.conflicts
        ]  # fmt: skip
        details = {"name": name, "kind": resource_type.plural, "causes": causes}
        if resource_type.group:
            details["group"] = resource_type.group
        return errors.ApiError(409, "Conflict", str(error), details)

    # scale subresource -------------------------------------------------------------
    def get_scale(self, resource_type: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.get(resource_type, namespace, name)
        return self._scale_of(resource_type, obj)

    def _scale_of(self, resource_type: ResourceType, obj: Obj) -> Obj:
        metadata = obj["metadata"]
        spec_replicas = _dig(obj, resource_type.scale_spec_path)
        status_replicas = _dig(obj, resource_type.scale_status_path)
        if resource_type.custom:
            selector = _dig(obj, resource_type.scale_selector_path) if resource_type.scale_selector_path else None
        else:
            selector = format_label_selector((obj.get("spec") or {}).get("selector"))
        status: Obj = {"replicas": int(status_replicas or 0)}
        if selector:
            status["selector"] = selector
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: metadata[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in metadata},
            "spec": {"replicas": int(spec_replicas or 0)},
            "status": status,
        }  # fmt: skip

    def write_scale(
        self, resource_type: ResourceType, namespace: str, name: str, patch_type: str, body: Any, ctx: RequestContext
    ) -> Obj:
        live = self.store.get(resource_type.storage_key, namespace, name)
        if live is None:
            raise errors.not_found(resource_type, name)
        scale = self._scale_of(resource_type, live)
        try:
            if patch_type == "update":
                new_scale = body
            elif patch_type == "json":
                new_scale = patches.json_patch(scale, body)
            elif patch_type in ("merge", "strategic"):
                new_scale = patches.merge_patch(scale, body)
            else:
                raise errors.unsupported_media_type(patch_type, ["application/merge-patch+json"])
        except patches.PatchError as error:
            raise errors.ApiError(422, "Invalid", str(error)) from None
        if not isinstance(new_scale, dict):
            raise errors.bad_request("invalid Scale object")
        wanted_rv = (new_scale.get("metadata") or {}).get("resourceVersion")
        if patch_type == "update" and wanted_rv and wanted_rv != live["metadata"]["resourceVersion"]:
            raise errors.conflict(resource_type, name)
        replicas = (new_scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid(resource_type, name, [errors.cause("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")])
        updated = deep_copy(live)
        _set_path(updated, resource_type.scale_spec_path, replicas)
        result = self._write(resource_type, live, updated, ctx, "scale")
        return self._scale_of(resource_type, result)

    # delete ------------------------------------------------------------------------
    def delete(
        self,
        resource_type: ResourceType,
        namespace: str,
        name: str,
        ctx: RequestContext,
        options: dict[str, Any] | None = None,
    ) -> tuple[Obj, bool]:
        """Delete an object. Returns (object, removed); removed is False while finalizers hold it."""
        options = options or {}
        live = self.store.get(resource_type.storage_key, namespace, name)
        if live is None:
            raise errors.not_found(resource_type, name)
        preconditions = options.get("preconditions") or {}
        if preconditions.get("uid") and preconditions["uid"] != live["metadata"].get("uid"):
            raise errors.conflict(resource_type, name)
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != live["metadata"]["resourceVersion"]:
            raise errors.conflict(resource_type, name)
        propagation = str(options.get("propagationPolicy") or "Background")
        if options.get("orphanDependents") is True:
            propagation = "Orphan"
        metadata = live["metadata"]
        if resource_type.kind == "Namespace" and not resource_type.custom:
            if metadata["name"] in BUILTIN_NAMESPACES:
                raise errors.forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                                       resource_type, name)  # fmt: skip
            return self._terminate_namespace(resource_type, live, ctx), False
        if metadata.get("finalizers"):
            if metadata.get("deletionTimestamp"):
                return self.as_version(resource_type, live), False
            marked = deep_copy(live)
            marked["metadata"]["deletionTimestamp"] = timestamp()
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            if resource_type.has_generation:
                marked["metadata"]["generation"] = int(marked["metadata"].get("generation", 1)) + 1
            if ctx.dry_run:
                return self.as_version(resource_type, marked), False
            stored = self.store.put(resource_type.storage_key, marked, live)
            self.controllers.on_write(resource_type, stored, live)
            return self.as_version(resource_type, stored), False
        if ctx.dry_run:
            return self.as_version(resource_type, live), True
        final = self._remove(resource_type, live, propagation)
        return self.as_version(resource_type, final), True

    def delete_collection(
        self,
        resource_type: ResourceType,
        namespace: str | None,
        label_selector: str,
        field_selector: str,
        ctx: RequestContext,
        options: dict[str, Any] | None = None,
    ) -> list[Obj]:
        result = self.list_objects(resource_type, namespace, label_selector, field_selector)
        deleted = []
        for obj in result.items:
            metadata = obj["metadata"]
            try:
                final, _ = self.delete(resource_type, metadata.get("namespace", ""), metadata["name"], ctx, options)
                deleted.append(final)
            except errors.ApiError:
                continue
        return deleted

    def _remove(self, resource_type: ResourceType, live: Obj, propagation: str) -> Obj:
        final = self.store.remove(resource_type.storage_key, live)
        uid = live["metadata"].get("uid")
        if uid:
            self._collect_dependents(str(uid), live["metadata"].get("namespace", ""), propagation)
        self.controllers.on_delete(resource_type, final)
        if resource_type.namespaced:
            namespace = live["metadata"].get("namespace", "")
            self.controllers.namespace_content_removed(namespace)
        return final

    def _collect_dependents(self, owner_uid: str, namespace: str, propagation: str) -> None:
        """The garbage collector: delete (or orphan) objects owned by a deleted object."""
        ctx = RequestContext(manager="kube-controller-manager")
        for resource_type in list(self.registry.types()):
            if not resource_type.preferred:
                continue
            if namespace and not resource_type.namespaced:
                continue
            for obj in self.store.list_objects(resource_type.storage_key, namespace if resource_type.namespaced else None):
                owners = obj["metadata"].get("ownerReferences") or []
                if not any(owner.get("uid") == owner_uid for owner in owners):
                    continue
                metadata = obj["metadata"]
                if propagation == "Orphan":
                    orphaned = deep_copy(obj)
                    orphaned["metadata"]["ownerReferences"] = [o for o in owners if o.get("uid") != owner_uid]
                    if not orphaned["metadata"]["ownerReferences"]:
                        del orphaned["metadata"]["ownerReferences"]
                    self._write(resource_type, obj, orphaned, ctx)
                    continue
                try:
                    self.delete(resource_type, metadata.get("namespace", ""), metadata["name"], ctx)
                except errors.ApiError:
                    continue

    def _terminate_namespace(self, resource_type: ResourceType, live: Obj, ctx: RequestContext) -> Obj:
        if live["metadata"].get("deletionTimestamp"):
            return live
        marked = deep_copy(live)
        marked["metadata"]["deletionTimestamp"] = timestamp()
        marked["metadata"]["deletionGracePeriodSeconds"] = 0
        marked.setdefault("status", {})["phase"] = "Terminating"
        if ctx.dry_run:
            return marked
        stored = self.store.put(resource_type.storage_key, marked, live)
        self.controllers.namespace_terminating(stored["metadata"]["name"])
        return stored

    def finish_namespace(self, namespace: str) -> None:
        """Delete a terminating namespace's contents; remove it once nothing is left."""
        namespaces = self.type_of("v1", "Namespace")
        live = self.store.get(namespaces.storage_key, "", namespace)
        if live is None or not live["metadata"].get("deletionTimestamp"):
            return
        ctx = RequestContext(manager="kube-controller-manager")
        for resource_type in list(self.registry.types()):
            if not resource_type.namespaced or not resource_type.preferred:
                continue
            for obj in self.store.list_objects(resource_type.storage_key, namespace):
                if obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    self.delete(resource_type, namespace, obj["metadata"]["name"], ctx)
                except errors.ApiError:
                    continue
        still_there = sum(
            len(self.store.list_objects(t.storage_key, namespace)) for t in self.registry.types() if t.namespaced and t.preferred
        )
        if still_there == 0 and self.store.get(namespaces.storage_key, "", namespace) is not None:
            self.store.remove(namespaces.storage_key, self.store.get(namespaces.storage_key, "", namespace) or live)

    # the write pipeline -----------------------------------------------------------
    def _root(self, resource_type: ResourceType) -> schema.Node:
        if resource_type.custom:
            return resource_type.schema
        return schema.builtin_root(resource_type.group, resource_type.version, resource_type.kind)

    def _scope(self, resource_type: ResourceType, subresource: str) -> ssa.Scope:
        return ssa.Scope(
            root=self._root(resource_type),
            has_status="status" in resource_type.subresources,
            subresource=subresource,
        )

    def _decode(self, resource_type: ResourceType, body: Any, ctx: RequestContext) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request(f"{resource_type.kind} in version \"{resource_type.version}\" cannot be handled as a {resource_type.kind}: body must be a JSON object")
        kind = body.get("kind")
        api_version = body.get("apiVersion")
        if kind and kind != resource_type.kind:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({resource_type.kind})")
        if api_version and api_version != resource_type.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({resource_type.api_version})"
            )
        obj = deep_copy(body)
        obj["apiVersion"] = resource_type.api_version
        obj["kind"] = resource_type.kind
        if obj.get("metadata") is None:
            obj["metadata"] = {}
        self._check_types(resource_type, obj)
        self._check_strict(resource_type, obj, ctx)
        validation.prune_unknown(obj, self._root(resource_type))
        return obj

    def _check_types(self, resource_type: ResourceType, obj: Obj) -> None:
        """Wrong JSON types fail decoding on a real server (400), before any validation."""
        problems = validation.type_errors(obj, {"type": "object"} if resource_type.custom else self._root(resource_type))
        if not isinstance(obj.get("metadata"), dict):
            problems.insert(0, ("metadata", "object", validation.json_type_name(obj.get("metadata"))))
        if problems:
            path, expected, actual = problems[0]
            raise errors.bad_request(
                f'{resource_type.kind} in version "{resource_type.version}" cannot be handled as a {resource_type.kind}: '
                f"json: cannot unmarshal {actual} into Go struct field {path} of type {expected}"
            )

    def _check_strict(self, resource_type: ResourceType, obj: Obj, ctx: RequestContext, apply: bool = False) -> None:
        if ctx.field_validation not in ("Strict", "Warn"):
            return
        unknown = validation.unknown_fields(obj, self._root(resource_type))
        if not unknown:
            return
        if ctx.field_validation == "Warn":
            ctx.warnings.extend(f'unknown field "{path.lstrip(".")}"' for path in unknown)
            return
        if apply:
            raise errors.bad_request("; ".join(f"{path}: field not declared in schema" for path in unknown))
        listed = ", ".join(f'unknown field "{path.lstrip(".")}"' for path in unknown)
        raise errors.bad_request(
            f'{resource_type.kind} in version "{resource_type.version}" cannot be handled as a {resource_type.kind}: '
            f"strict decoding error: {listed}"
        )

    def _store_new(self, resource_type: ResourceType, obj: Obj, entries: list[ssa.ManagerEntry], ctx: RequestContext) -> Obj:
        metadata = obj["metadata"]
        name = str(metadata.get("name") or "")
        namespace = str(metadata.get("namespace") or "")
        name_problems = validation.validate_name(resource_type, name)
        if name_problems:
            raise errors.invalid(resource_type, name, name_problems)
        if self.store.get(resource_type.storage_key, namespace, name) is not None:
            raise errors.already_exists(resource_type, name)
        if resource_type.namespaced:
            ns = self.store.get("/namespaces", "", namespace)
            if ns is None:
                raise errors.namespace_not_found(namespace)
            if ns["metadata"].get("deletionTimestamp"):
                raise errors.forbidden(
                    f'{resource_type.plural} "{name}" is forbidden: unable to create new content in namespace '
                    f"{namespace} because it is being terminated",
                    resource_type,
                    name,
                )
        for server_field in ("deletionTimestamp", "deletionGracePeriodSeconds", "generation", "selfLink"):
            metadata.pop(server_field, None)
        metadata["uid"] = new_uid()
        metadata["creationTimestamp"] = timestamp()
        if resource_type.has_generation:
            metadata["generation"] = 1
        if "status" in resource_type.subresources and resource_type.kind not in ("Node", "Namespace", "Pod"):
            # Status is the controllers' business: a new object starts with an empty one.
            if resource_type.custom:
                obj.pop("status", None)
            else:
                obj["status"] = {}
        self._prepare(resource_type, obj, None)
        apply_defaults(resource_type.group if not resource_type.custom else "~", resource_type.kind, obj)
        problems = validation.validate_object(resource_type, obj)
        if problems:
            raise errors.invalid(resource_type, name, problems)
        if entries:
            metadata["managedFields"] = ssa.render_managed_fields(entries)
        else:
            metadata.pop("managedFields", None)
        obj = _ordered(obj)
        if ctx.dry_run:
            obj["metadata"].pop("resourceVersion", None)
            return obj
        stored = self.store.put(resource_type.storage_key, obj, None)
        self.controllers.on_write(resource_type, stored, None)
        return self.as_version(resource_type, stored)

    def _prepare(self, resource_type: ResourceType, obj: Obj, old: Obj | None) -> None:
        """Server-side fields some kinds get on create (a Service's cluster IP)."""
        if resource_type.kind == "Service" and not resource_type.custom:
            spec = obj.setdefault("spec", {})
            if old is not None:
                old_spec = old.get("spec") or {}
                for key in ("clusterIP", "clusterIPs"):
                    if key in old_spec and key not in spec:
                        spec[key] = old_spec[key]
            if spec.get("type") != "ExternalName" and not spec.get("clusterIP"):
                ip = self._next_service_ip()
                spec["clusterIP"] = ip
                spec["clusterIPs"] = [ip]
            elif spec.get("clusterIP") and not spec.get("clusterIPs"):
                spec["clusterIPs"] = [spec["clusterIP"]]

    def _next_service_ip(self) -> str:
        value = self._service_ip
        self._service_ip += 1
        return f"10.96.{value // 256 % 256}.{value % 256}"

    def _write(
        self,
        resource_type: ResourceType,
        live: Obj,
        new: Obj,
        ctx: RequestContext,
        subresource: str = "",
        entries: list[ssa.ManagerEntry] | None = None,
    ) -> Obj:
        """Turn a desired new version of a live object into the stored one (or a no-op)."""
        old = self.as_version(resource_type, live)
        old_meta = old["metadata"]
        new["apiVersion"] = resource_type.api_version
        new["kind"] = resource_type.kind
        has_status = "status" in resource_type.subresources
        if subresource == "status":
            candidate = {**old, "status": new.get("status")}
            if new.get("status") is None:
                candidate.pop("status", None)
            new = deep_copy(candidate)
        elif subresource == "scale":
            pass
        elif has_status:
            if "status" in old:
                new["status"] = deep_copy(old["status"])
            else:
                new.pop("status", None)
        metadata = new.setdefault("metadata", {})
        if subresource:
            metadata = new["metadata"] = deep_copy(old_meta)
        for server_field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
                             "name", "namespace"):  # fmt: skip
            if server_field in old_meta:
                metadata[server_field] = old_meta[server_field]
            else:
                metadata.pop(server_field, None)
        metadata["resourceVersion"] = old_meta["resourceVersion"]
        metadata.pop("selfLink", None)
        self._prepare(resource_type, new, old)
        apply_defaults(resource_type.group if not resource_type.custom else "~", resource_type.kind, new)
        if old_meta.get("deletionTimestamp"):
            added = set(metadata.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise errors.forbidden(
                    f"Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers "
                    f"{sorted(added)}",
                    resource_type,
                    old_meta["name"],
                )
        problems = validation.validate_object(resource_type, new)
        if problems:
            raise errors.invalid(resource_type, old_meta["name"], problems)
        if resource_type.has_generation and _spec_changed(old, new, has_status):
            metadata["generation"] = int(old_meta.get("generation", 1)) + 1
        scope = self._scope(resource_type, subresource)
        if entries is None:
            before = ssa.parse_managed_fields(old_meta.get("managedFields"))
            entries = ssa.record_update(before, old, new, ctx.manager, resource_type.api_version, scope, timestamp())
        rendered = ssa.render_managed_fields(entries)
        if rendered:
            metadata["managedFields"] = rendered
        else:
            metadata.pop("managedFields", None)
        new = _ordered(new)
        if new == old:
            return old  # nothing changed: no new resourceVersion, no watch event
        if ctx.dry_run:
            return new
        if old_meta.get("deletionTimestamp") and not metadata.get("finalizers"):
            stored = self.store.put(resource_type.storage_key, new, live)
            final = self._remove(resource_type, stored, "Background")
            return self.as_version(resource_type, final)
        stored = self.store.put(resource_type.storage_key, new, live)
        self.controllers.on_write(resource_type, stored, live)
        return self.as_version(resource_type, stored)

    # CRDs ---------------------------------------------------------------------------
    def establish_crd(self, crd: Obj) -> None:
        types = types_from_crd(crd)
        self.registry.register_custom(crd["metadata"]["name"], types)

    def remove_crd(self, crd: Obj) -> None:
        old_types = self.registry.unregister_custom(crd["metadata"]["name"])
        for storage_key in {t.storage_key for t in old_types}:
            self.store.drop_storage(storage_key)

    # direct access for the controllers ---------------------------------------------------
    def controller_status_write(
        self, resource_type: ResourceType, live: Obj, status: Obj, manager: str = CONTROLLER_MANAGER
    ) -> Obj:
        new = deep_copy(live)
        new["status"] = status
        subresource = "status" if "status" in resource_type.subresources else ""
        return self._write(resource_type, live, new, RequestContext(manager=manager), subresource)

    def controller_write(self, resource_type: ResourceType, live: Obj | None, new: Obj, manager: str = CONTROLLER_MANAGER) -> Obj:
        ctx = RequestContext(manager=manager)
        if live is None:
            return self.create(resource_type, new["metadata"].get("namespace", ""), new, ctx)
        return self._write(resource_type, live, new, ctx)

    def objects_of(self, resource_type: ResourceType, namespace: str | None = None) -> Iterable[Obj]:
        return self.store.list_objects(resource_type.storage_key, namespace)


def _spec_changed(old: Obj, new: Obj, has_status: bool) -> bool:
    ignored = {"metadata", "apiVersion", "kind"} | ({"status"} if has_status else set())
    old_rest = {k: v for k, v in old.items() if k not in ignored}
    new_rest = {k: v for k, v in new.items() if k not in ignored}
    return old_rest != new_rest


_TOP_ORDER = {"apiVersion": 0, "kind": 1, "metadata": 2}
_META_ORDER = ["name", "generateName", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
               "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
               "finalizers", "managedFields"]  # fmt: skip


def _ordered(obj: Obj) -> Obj:
    """Field order like the real server's JSON (apiVersion, kind, metadata, spec..., status last)."""
    metadata = obj.get("metadata") or {}
    ordered_meta = {k: metadata[k] for k in _META_ORDER if k in metadata}
    ordered_meta.update({k: v for k, v in metadata.items() if k not in ordered_meta})
    keys = sorted(obj, key=lambda k: (_TOP_ORDER.get(k, 3 if k != "status" else 4), k))
    result = {k: obj[k] for k in keys}
    result["metadata"] = ordered_meta
    return result


def _dig(obj: Obj, dotted: str) -> Any:
    current: Any = obj
    for part in dotted.strip(".").split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def _set_path(obj: Obj, dotted: str, value: Any) -> None:
    parts = dotted.strip(".").split(".")
    current = obj
    for part in parts[:-1]:
        current = current.setdefault(part, {})
    current[parts[-1]] = value

