"""Server-side `Table` output (what `kubectl get` prints), per kind, like the real printers."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fleet.kubesim.objects import human_duration, parse_timestamp
from fleet.kubesim.resources import ResourceType
from fleet.kubesim.selectors import format_label_selector

Obj = Mapping[str, Any]
Column = tuple[str, str, int]  # (name, type, priority)

NAME: Column = ("Name", "string", 0)
AGE: Column = ("Age", "string", 0)


def _age(obj: Obj) -> str:
    created = parse_timestamp((obj.get("metadata") or {}).get("creationTimestamp"))
    if created is None:
        return "<unknown>"
    return human_duration(time.time() - created.timestamp())


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _containers(obj: Obj) -> list[Obj]:
    return list(((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or [])


def _deployment(obj: Obj) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers = _containers(obj)
    return [
        _name(obj),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(obj),
        ",".join(str(c.get("name", "")) for c in containers),
        ",".join(str(c.get("image", "")) for c in containers),
        format_label_selector(spec.get("selector")),
    ]


def _replicaset(obj: Obj) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers = _containers(obj)
    return [
        _name(obj), spec.get("replicas", 1), status.get("replicas", 0), status.get("readyReplicas", 0), _age(obj),
        ",".join(str(c.get("name", "")) for c in containers), ",".join(str(c.get("image", "")) for c in containers),
        format_label_selector(spec.get("selector")),
    ]  # fmt: skip


def _statefulset(obj: Obj) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers = _containers(obj)
    return [
        _name(obj), f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}", _age(obj),
        ",".join(str(c.get("name", "")) for c in containers), ",".join(str(c.get("image", "")) for c in containers),
    ]  # fmt: skip


def _daemonset(obj: Obj) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    containers = _containers(obj)
    return [
        _name(obj), status.get("desiredNumberScheduled", 0), status.get("currentNumberScheduled", 0),
        status.get("numberReady", 0), status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0),
        ",".join(f"{k}={v}" for k, v in node_selector.items()) or "<none>", _age(obj),
        ",".join(str(c.get("name", "")) for c in containers), ",".join(str(c.get("image", "")) for c in containers),
        format_label_selector(spec.get("selector")),
    ]  # fmt: skip


def _job(obj: Obj) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if conditions.get("Complete") == "True":
        state = "Complete"
    elif conditions.get("Failed") == "True":
        state = "Failed"
    elif spec.get("suspend"):
        state = "Suspended"
    else:
        state = "Running"
    started = parse_timestamp(status.get("startTime"))
    finished = parse_timestamp(status.get("completionTime"))
    duration = ""
    if started is not None:
        end = finished.timestamp() if finished else time.time()
        duration = human_duration(end - started.timestamp())
    return [_name(obj), state, f"{status.get('succeeded', 0)}/{spec.get('completions', 1)}", duration, _age(obj)]


def _cronjob(obj: Obj) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    last = parse_timestamp(status.get("lastScheduleTime"))
    return [
        _name(obj), spec.get("schedule", ""), spec.get("timeZone") or "<none>", bool(spec.get("suspend", False)),
        len(status.get("active") or []), human_duration(time.time() - last.timestamp()) if last else "<none>",
        _age(obj),
    ]  # fmt: skip


def _pod(obj: Obj) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers = spec.get("containers") or []
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    phase = status.get("reason") or status.get("phase") or "Pending"
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        phase = "Terminating"
    return [
        _name(obj), f"{ready}/{len(containers)}", phase, restarts, _age(obj), status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>", "<none>",
    ]  # fmt: skip


def _node(obj: Obj) -> list[Any]:
    status = obj.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    state = {"True": "Ready", "False": "NotReady"}.get(str(conditions.get("Ready")), "Unknown")
    if (obj.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = (obj.get("metadata") or {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    info = status.get("nodeInfo") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    return [
        _name(obj), state, ",".join(roles) or "<none>", _age(obj), info.get("kubeletVersion", ""),
        addresses.get("InternalIP", "<none>"), addresses.get("ExternalIP", "<none>"), info.get("osImage", ""),
        info.get("kernelVersion", ""), info.get("containerRuntimeVersion", ""),
    ]  # fmt: skip


def _namespace(obj: Obj) -> list[Any]:
    return [_name(obj), (obj.get("status") or {}).get("phase", "Active"), _age(obj)]


def _service(obj: Obj) -> list[Any]:
    spec = obj.get("spec") or {}
    ports = []
    for port in spec.get("ports") or []:
        text = f"{port.get('port')}"
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        ports.append(f"{text}/{port.get('protocol', 'TCP')}")
    external = ",".join(spec.get("externalIPs") or []) or (
        spec.get("externalName") if spec.get("type") == "ExternalName" else "<none>"
    )
    if spec.get("type") == "LoadBalancer" and external == "<none>":
        ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress) or "<pending>"
    selector = spec.get("selector") or {}
    return [
        _name(obj), spec.get("type", "ClusterIP"), spec.get("clusterIP") or "<none>", external,
        ",".join(ports) or "<none>", _age(obj), ",".join(f"{k}={v}" for k, v in selector.items()) or "<none>",
    ]  # fmt: skip


def _configmap(obj: Obj) -> list[Any]:
    return [_name(obj), len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), _age(obj)]


def _secret(obj: Obj) -> list[Any]:
    return [_name(obj), obj.get("type", "Opaque"), len(obj.get("data") or {}), _age(obj)]


def _crd(obj: Obj) -> list[Any]:
    return [_name(obj), (obj.get("metadata") or {}).get("creationTimestamp", "")]


def _ingress(obj: Obj) -> list[Any]:
    spec = obj.get("spec") or {}
    hosts = [r.get("host") for r in spec.get("rules") or [] if r.get("host")]
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    address = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress)
    ports = "80, 443" if spec.get("tls") else "80"
    return [_name(obj), spec.get("ingressClassName") or "<none>", ",".join(hosts) or "*", address, ports, _age(obj)]


def _pvc(obj: Obj) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    capacity = (status.get("capacity") or {}).get("storage", "")
    return [
        _name(obj), status.get("phase", "Pending"), spec.get("volumeName", ""), capacity,
        ",".join(spec.get("accessModes") or []), spec.get("storageClassName") or "<unset>",
        spec.get("volumeAttributesClassName") or "<unset>", _age(obj), spec.get("volumeMode", "Filesystem"),
    ]  # fmt: skip


def _serviceaccount(obj: Obj) -> list[Any]:
    return [_name(obj), len(obj.get("secrets") or []), _age(obj)]


def _storageclass(obj: Obj) -> list[Any]:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    name = _name(obj)
    if annotations.get("storageclass.kubernetes.io/is-default-class") == "true":
        name += " (default)"
    return [name, obj.get("provisioner", ""), obj.get("reclaimPolicy", "Delete"),
            obj.get("volumeBindingMode", "Immediate"), bool(obj.get("allowVolumeExpansion", False)), _age(obj)]  # fmt: skip


def _lease(obj: Obj) -> list[Any]:
    return [_name(obj), (obj.get("spec") or {}).get("holderIdentity", ""), _age(obj)]


S, INT, B = "string", "integer", "boolean"

PRINTERS: dict[str, tuple[list[Column], Callable[[Obj], list[Any]]]] = {
    "apps/Deployment": ([NAME, ("Ready", S, 0), ("Up-to-date", INT, 0), ("Available", INT, 0), AGE,
                         ("Containers", S, 1), ("Images", S, 1), ("Selector", S, 1)], _deployment),
    "apps/ReplicaSet": ([NAME, ("Desired", INT, 0), ("Current", INT, 0), ("Ready", INT, 0), AGE, ("Containers", S, 1),
                         ("Images", S, 1), ("Selector", S, 1)], _replicaset),
    "apps/StatefulSet": ([NAME, ("Ready", S, 0), AGE, ("Containers", S, 1), ("Images", S, 1)], _statefulset),
    "apps/DaemonSet": ([NAME, ("Desired", INT, 0), ("Current", INT, 0), ("Ready", INT, 0), ("Up-to-date", INT, 0),
                        ("Available", INT, 0), ("Node Selector", S, 0), AGE, ("Containers", S, 1), ("Images", S, 1),
                        ("Selector", S, 1)], _daemonset),
    "batch/Job": ([NAME, ("Status", S, 0), ("Completions", S, 0), ("Duration", S, 0), AGE], _job),
    "batch/CronJob": ([NAME, ("Schedule", S, 0), ("Timezone", S, 0), ("Suspend", B, 0), ("Active", INT, 0),
                       ("Last Schedule", S, 0), AGE], _cronjob),
    "/Pod": ([NAME, ("Ready", S, 0), ("Status", S, 0), ("Restarts", S, 0), AGE, ("IP", S, 1), ("Node", S, 1),
              ("Nominated Node", S, 1), ("Readiness Gates", S, 1)], _pod),
    "/Node": ([NAME, ("Status", S, 0), ("Roles", S, 0), AGE, ("Version", S, 0), ("Internal-IP", S, 1),
               ("External-IP", S, 1), ("OS-Image", S, 1), ("Kernel-Version", S, 1), ("Container-Runtime", S, 1)], _node),
    "/Namespace": ([NAME, ("Status", S, 0), AGE], _namespace),
    "/Service": ([NAME, ("Type", S, 0), ("Cluster-IP", S, 0), ("External-IP", S, 0), ("Port(s)", S, 0), AGE,
                  ("Selector", S, 1)], _service),
    "/ConfigMap": ([NAME, ("Data", INT, 0), AGE], _configmap),
    "/Secret": ([NAME, ("Type", S, 0), ("Data", INT, 0), AGE], _secret),
    "/ServiceAccount": ([NAME, ("Secrets", INT, 0), AGE], _serviceaccount),
    "/PersistentVolumeClaim": ([NAME, ("Status", S, 0), ("Volume", S, 0), ("Capacity", S, 0),
                                ("Access Modes", S, 0), ("StorageClass", S, 0), ("VolumeAttributesClass", S, 0),
                                AGE, ("VolumeMode", S, 1)], _pvc),
    "networking.k8s.io/Ingress": ([NAME, ("Class", S, 0), ("Hosts", S, 0), ("Address", S, 0), ("Ports", S, 0), AGE],
                                  _ingress),
    "coordination.k8s.io/Lease": ([NAME, ("Holder", S, 0), AGE], _lease),
    "storage.k8s.io/StorageClass": ([NAME, ("Provisioner", S, 0), ("ReclaimPolicy", S, 0),
                                     ("VolumeBindingMode", S, 0), ("AllowVolumeExpansion", B, 0), AGE], _storageclass),
    "apiextensions.k8s.io/CustomResourceDefinition": ([NAME, ("Created At", "date", 0)], _crd),
}  # fmt: skip


def _json_path(obj: Obj, path: str) -> Any:
    current: Any = obj
    for part in path.strip().lstrip(".").split("."):
        if not part:
            continue
        if part.endswith("]") and "[" in part:
            name, _, index = part[:-1].partition("[")
            current = current.get(name) if isinstance(current, Mapping) else None
            try:
                current = current[int(index)] if isinstance(current, list) else None
            except (ValueError, IndexError):
                return None
        else:
            current = current.get(part) if isinstance(current, Mapping) else None
        if current is None:
            return None
    return current


def _custom_printer(resource_type: ResourceType) -> tuple[list[Column], Callable[[Obj], list[Any]]]:
    extra = [c for c in resource_type.printer_columns if c.get("name") and c.get("jsonPath")]
    columns: list[Column] = [NAME] + [
        (str(c["name"]), str(c.get("type", "string")), int(c.get("priority", 0))) for c in extra
    ]
    has_age = any(str(c.get("jsonPath")) == ".metadata.creationTimestamp" for c in extra)
    if not has_age:
        columns.append(AGE)

    def cells(obj: Obj) -> list[Any]:
        row: list[Any] = [_name(obj)]
        for column in extra:
            value = _json_path(obj, str(column["jsonPath"]))
            if str(column["jsonPath"]) == ".metadata.creationTimestamp" and value:
                value = _age(obj)
            row.append(value)
        if not has_age:
            row.append(_age(obj))
        return row

    return columns, cells


def printer_for(resource_type: ResourceType) -> tuple[list[Column], Callable[[Obj], list[Any]]]:
    if resource_type.custom:
        return _custom_printer(resource_type)
    return PRINTERS.get(f"{resource_type.group}/{resource_type.kind}", ([NAME, AGE], lambda o: [_name(o), _age(o)]))


def _row_object(obj: Obj, include: str) -> Any:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def table(
    resource_type: ResourceType,
    objects: Sequence[Obj],
    include_object: str = "Metadata",
    list_metadata: dict[str, Any] | None = None,
    with_columns: bool = True,
) -> dict[str, Any]:
    columns, cells = printer_for(resource_type)
    definitions = [
        {"name": name, "type": kind, "format": "name" if name == "Name" else "", "description": "", "priority": p}
        for name, kind, p in columns
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata or {},
        "columnDefinitions": definitions if with_columns else [],
        "rows": [{"cells": cells(obj), "object": _row_object(obj, include_object)} for obj in objects],
    }
