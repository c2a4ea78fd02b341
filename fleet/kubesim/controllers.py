"""Simulated controllers: workloads become ready, Jobs complete, CRDs get Established, Nodes report.

Event-driven: a write schedules one delayed reconcile for that object (coalesced); nothing
polls, so an idle simulator with thousands of objects costs nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fleet.kubesim.objects import timestamp
from fleet.kubesim.resources import ResourceType
from fleet.kubesim.selectors import labels_match, selector_from_label_selector_object

if TYPE_CHECKING:
    from fleet.kubesim.cluster import ClusterState

Obj = dict[str, Any]
TaskKey = tuple[str, str, str, str]  # (what, storage key, namespace, name)

KUBELET_VERSION = "v1.32.4"


def _condition(kind: str, status: str, reason: str, message: str, previous: list[Obj], now: str,
               with_update_time: bool = True) -> Obj:  # fmt: skip
    """A status condition that keeps lastTransitionTime while its status does not change."""
    old = next((c for c in previous if c.get("type") == kind), None)
    transition = old.get("lastTransitionTime", now) if old and old.get("status") == status else now
    condition: Obj = {"type": kind, "status": status}
    if with_update_time:
        same = old is not None and old.get("status") == status and old.get("reason") == reason
        condition["lastUpdateTime"] = old.get("lastUpdateTime", now) if same and old else now
    condition.update(lastTransitionTime=transition, reason=reason, message=message)
    return condition


def template_hash(template: Any) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    number = int(digest[:16], 16)
    chars = []
    for _ in range(10):
        number, index = divmod(number, len(alphabet))
        chars.append(alphabet[index])
    return "".join(chars)


class Controllers:
    def __init__(self, cluster: ClusterState, delay: float) -> None:
        self.cluster = cluster
        self.delay = delay
        self._timers: dict[TaskKey, asyncio.TimerHandle | None] = {}
        self._deadline_at: dict[tuple[str, str], float] = {}

    # scheduling -------------------------------------------------------------------
    def _loop(self) -> asyncio.AbstractEventLoop | None:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def schedule(self, key: TaskKey, delay: float, action: Callable[[], None]) -> None:
        if key in self._timers:
            return
        loop = self._loop()
        if loop is None:
            # No loop yet (objects created before the simulator starts): settle at once.
            self._timers[key] = None
            try:
                action()
            finally:
                self._timers.pop(key, None)
            return

        def run() -> None:
            self._timers.pop(key, None)
            action()

        self._timers[key] = loop.call_later(delay, run)

    def cancel_all(self) -> None:
        for handle in self._timers.values():
            if handle is not None:
                handle.cancel()
        self._timers.clear()
        self._deadline_at.clear()

    # events from the API -----------------------------------------------------------------
    def on_write(self, resource_type: ResourceType, obj: Obj, old: Obj | None) -> None:
        if resource_type.custom:
            return
        kind = f"{resource_type.group}/{resource_type.kind}"
        handler = {
            "apps/Deployment": self._reconcile_deployment,
            "apps/ReplicaSet": self._reconcile_replicaset,
            "apps/StatefulSet": self._reconcile_statefulset,
            "apps/DaemonSet": self._reconcile_daemonset,
            "batch/Job": self._reconcile_job,
            "/PersistentVolumeClaim": self._reconcile_pvc,
            "/Service": self._reconcile_load_balancer,
            "networking.k8s.io/Ingress": self._reconcile_load_balancer,
            "apiextensions.k8s.io/CustomResourceDefinition": self._reconcile_crd,
        }.get(kind)
        metadata = obj["metadata"]
        if handler is not None:
            if kind == "apiextensions.k8s.io/CustomResourceDefinition" and metadata.get("deletionTimestamp"):
                return
            delay = min(self.delay, 0.05) if kind.endswith("CustomResourceDefinition") else self.delay
            key = (kind, resource_type.storage_key, metadata.get("namespace", ""), metadata["name"])
            self.schedule(key, delay, lambda: handler(resource_type, metadata.get("namespace", ""), metadata["name"]))
        if kind == "/Namespace" and old is None:
            self._namespace_defaults(metadata["name"])
        if kind == "/Node":
            old_ready = _node_ready(old) if old is not None else None
            if old_ready != _node_ready(obj):
                self._all_daemonsets()
        if kind == "apps/ReplicaSet":
            self._notify_owner(obj)

    def on_delete(self, resource_type: ResourceType, obj: Obj) -> None:
        if resource_type.custom:
            return
        kind = f"{resource_type.group}/{resource_type.kind}"
        if kind == "apiextensions.k8s.io/CustomResourceDefinition":
            self.cluster.remove_crd(obj)
        elif kind == "/Node":
            self._all_daemonsets()

    def namespace_terminating(self, namespace: str) -> None:
        key = ("namespace", "/namespaces", "", namespace)
        self.schedule(key, min(self.delay, 0.05), lambda: self.cluster.finish_namespace(namespace))

    def namespace_content_removed(self, namespace: str) -> None:
        live = self.cluster.store.get("/namespaces", "", namespace)
        if live is not None and live["metadata"].get("deletionTimestamp"):
            self.namespace_terminating(namespace)

    def refresh(self, kind: str, namespace: str, name: str) -> None:
        """Reconcile one workload again (after a fault toggled)."""
        resource_type = self._builtin(kind)
        if resource_type is None:
            return
        live = self.cluster.store.get(resource_type.storage_key, namespace, name)
        if live is not None:
            self.on_write(resource_type, live, live)
            if resource_type.kind == "Deployment":
                for rs in self._owned_replicasets(live):
                    self.on_write(self._builtin("ReplicaSet"), rs, rs)  # type: ignore[arg-type]

    # helpers -------------------------------------------------------------------------
    def _builtin(self, kind: str) -> ResourceType | None:
        for resource_type in self.cluster.registry.types():
            if resource_type.kind == kind and not resource_type.custom and resource_type.preferred:
                return resource_type
        return None

    def _is_stuck(self, kind: str, namespace: str, name: str) -> bool:
        return (kind, namespace, name) in self.cluster.stuck

    def _live(self, resource_type: ResourceType, namespace: str, name: str) -> Obj | None:
        return self.cluster.store.get(resource_type.storage_key, namespace, name)

    def _write_status(self, resource_type: ResourceType, live: Obj, status: Obj) -> None:
        if live.get("status") == status:
            return
        self.cluster.controller_status_write(resource_type, live, status)

    def _notify_owner(self, rs: Obj) -> None:
        for owner in rs["metadata"].get("ownerReferences") or []:
            if owner.get("kind") == "Deployment" and owner.get("controller"):
                deployments = self._builtin("Deployment")
                if deployments is None:
                    return
                live = self._live(deployments, rs["metadata"].get("namespace", ""), str(owner.get("name")))
                if live is not None and live["metadata"].get("uid") == owner.get("uid"):
                    namespace, name = live["metadata"]["namespace"], live["metadata"]["name"]
                    key = ("apps/Deployment", deployments.storage_key, namespace, name)
                    self.schedule(key, 0.0, self._deployment_task(deployments, namespace, name))

    def _deployment_task(self, resource_type: ResourceType, namespace: str, name: str) -> Callable[[], None]:
        return lambda: self._reconcile_deployment(resource_type, namespace, name)

    def _owned_replicasets(self, deployment: Obj) -> list[Obj]:
        replicasets = self._builtin("ReplicaSet")
        if replicasets is None:
            return []
        uid = deployment["metadata"].get("uid")
        return [
            rs for rs in self.cluster.objects_of(replicasets, deployment["metadata"].get("namespace", ""))
            if any(o.get("uid") == uid for o in rs["metadata"].get("ownerReferences") or [])
        ]  # fmt: skip

    # Deployments -------------------------------------------------------------------------
    def _reconcile_deployment(self, resource_type: ResourceType, namespace: str, name: str) -> None:
        live = self._live(resource_type, namespace, name)
        if live is None or live["metadata"].get("deletionTimestamp"):
            return
        replicasets = self._builtin("ReplicaSet")
        if replicasets is None:
            return
        spec = live.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        pod_hash = template_hash(template)
        rs_name = f"{name}-{pod_hash}"[:253]
        owned = self._owned_replicasets(live)
        current = next((rs for rs in owned if rs["metadata"]["name"] == rs_name), None)
        labels = {**((template.get("metadata") or {}).get("labels") or {}), "pod-template-hash": pod_hash}
        selector = json.loads(json.dumps(spec.get("selector") or {}))
        selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
        desired_rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": namespace,
                "labels": labels,
                "annotations": {
                    "deployment.kubernetes.io/desired-replicas": str(replicas),
                    "deployment.kubernetes.io/max-replicas": str(replicas + 1),
                    "deployment.kubernetes.io/revision": str(self._revision(owned, current)),
                },
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": live["metadata"]["uid"],
                    "controller": True, "blockOwnerDeletion": True,
                }],
            },
            "spec": {
                "replicas": replicas,
                "selector": selector,
                "template": {**template, "metadata": {**(template.get("metadata") or {}), "labels": labels}},
            },
        }  # fmt: skip
        created = False
        if current is None:
            current = self.cluster.controller_write(replicasets, None, desired_rs)
            created = True
        elif (current.get("spec") or {}).get("replicas") != replicas:
            updated = json.loads(json.dumps(current))
            updated["spec"]["replicas"] = replicas
            updated["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/desired-replicas"] = str(replicas)
            current = self.cluster.controller_write(replicasets, current, updated)
        for old_rs in owned:
            if old_rs["metadata"]["name"] != rs_name and (old_rs.get("spec") or {}).get("replicas", 0) != 0:
                scaled = json.loads(json.dumps(old_rs))
                scaled["spec"]["replicas"] = 0
                self.cluster.controller_write(replicasets, old_rs, scaled)
        live = self._live(resource_type, namespace, name)
        if live is None:
            return
        rs_status = current.get("status") or {}
        ready = int(rs_status.get("readyReplicas", 0)) if rs_status.get("observedGeneration") else 0
        if (rs_status.get("replicas") or 0) != replicas:
            ready = min(ready, replicas)
        now = timestamp()
        previous = (live.get("status") or {}).get("conditions") or []
        available = ready >= replicas - _max_unavailable(spec, replicas)
        stuck_key = (namespace, name)
        if available:
            self._deadline_at.pop(stuck_key, None)
            progressing = _condition("Progressing", "True", "NewReplicaSetAvailable",
                                     f'ReplicaSet "{rs_name}" has successfully progressed.', previous, now)  # fmt: skip
        else:
            loop = self._loop()
            clock = loop.time() if loop else 0.0
            deadline = self._deadline_at.setdefault(stuck_key, clock + max(3 * self.delay, 0.2))
            if clock >= deadline and self._is_stuck("Deployment", namespace, name):
                progressing = _condition("Progressing", "False", "ProgressDeadlineExceeded",
                                         f'ReplicaSet "{rs_name}" has timed out progressing.', previous, now)  # fmt: skip
            else:
                reason, message = (
                    ("NewReplicaSetCreated", f'Created new replica set "{rs_name}"') if created
                    else ("ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
                )  # fmt: skip
                progressing = _condition("Progressing", "True", reason, message, previous, now)
                if self._is_stuck("Deployment", namespace, name):
                    key = ("deadline", resource_type.storage_key, namespace, name)
                    self.schedule(key, max(deadline - clock, 0.0) + 0.01,
                                  lambda: self._reconcile_deployment(resource_type, namespace, name))  # fmt: skip
        available_condition = (
            _condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.",
                       previous, now)
            if available
            else _condition("Available", "False", "MinimumReplicasUnavailable",
                            "Deployment does not have minimum availability.", previous, now)
        )  # fmt: skip
        status: Obj = {
            "observedGeneration": live["metadata"].get("generation", 1),
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": [available_condition, progressing],
        }
        if replicas - ready > 0:
            status["unavailableReplicas"] = replicas - ready
        if ready == 0:
            del status["readyReplicas"]
            del status["availableReplicas"]
        if replicas == 0:
            status = {k: v for k, v in status.items() if k in ("observedGeneration", "conditions")}
        self._write_status(resource_type, live, status)

    @staticmethod
    def _revision(owned: list[Obj], current: Obj | None) -> int:
        if current is not None:
            return int(((current["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision")) or 1)
        revisions = [
            int((rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", 0) or 0)
            for rs in owned
        ]
        return max(revisions, default=0) + 1

    # ReplicaSets / StatefulSets ---------------------------------------------------------------
    def _reconcile_replicaset(self, resource_type: ResourceType, namespace: str, name: str) -> None:
        live = self._live(resource_type, namespace, name)
        if live is None or live["metadata"].get("deletionTimestamp"):
            return
        replicas = int((live.get("spec") or {}).get("replicas", 1))
        owner = next((o for o in live["metadata"].get("ownerReferences") or [] if o.get("kind") == "Deployment"), None)
        stuck = self._is_stuck("ReplicaSet", namespace, name) or (
            owner is not None and self._is_stuck("Deployment", namespace, str(owner.get("name")))
        )
        ready = 0 if stuck else replicas
        status: Obj = {"replicas": replicas, "fullyLabeledReplicas": replicas, "readyReplicas": ready,
                       "availableReplicas": ready, "observedGeneration": live["metadata"].get("generation", 1)}  # fmt: skip
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        self._write_status(resource_type, live, status)

    def _reconcile_statefulset(self, resource_type: ResourceType, namespace: str, name: str) -> None:
        live = self._live(resource_type, namespace, name)
        if live is None or live["metadata"].get("deletionTimestamp"):
            return
        spec = live.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        ready = 0 if self._is_stuck("StatefulSet", namespace, name) else replicas
        revision = f"{name}-{template_hash(spec.get('template'))}"
        status: Obj = {
            "observedGeneration": live["metadata"].get("generation", 1),
            "replicas": replicas,
            "readyReplicas": ready,
            "currentReplicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": ready,
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }
        if ready == 0:
            del status["readyReplicas"]
        self._write_status(resource_type, live, status)

    # DaemonSets -------------------------------------------------------------------------------
    def _all_daemonsets(self) -> None:
        daemonsets = self._builtin("DaemonSet")
        if daemonsets is None:
            return
        for ds in list(self.cluster.objects_of(daemonsets)):
            self.on_write(daemonsets, ds, ds)

    def _reconcile_daemonset(self, resource_type: ResourceType, namespace: str, name: str) -> None:
        live = self._live(resource_type, namespace, name)
        if live is None or live["metadata"].get("deletionTimestamp"):
            return
        nodes_type = self._builtin("Node")
        node_selector = (((live.get("spec") or {}).get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
        requirements = selector_from_label_selector_object({"matchLabels": node_selector})
        nodes = [
            n for n in (self.cluster.objects_of(nodes_type) if nodes_type else [])
            if labels_match(requirements, n["metadata"].get("labels"))
        ]  # fmt: skip
        desired = len(nodes)
        ready = 0 if self._is_stuck("DaemonSet", namespace, name) else sum(1 for n in nodes if _node_ready(n))
        status: Obj = {
            "currentNumberScheduled": desired,
            "desiredNumberScheduled": desired,
            "numberAvailable": ready,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "observedGeneration": live["metadata"].get("generation", 1),
            "updatedNumberScheduled": desired,
        }
        if desired - ready > 0:
            status["numberUnavailable"] = desired - ready
        if ready == 0:
            del status["numberAvailable"]
        self._write_status(resource_type, live, status)

    # Jobs ------------------------------------------------------------------------------------
    def _reconcile_job(self, resource_type: ResourceType, namespace: str, name: str) -> None:
        live = self._live(resource_type, namespace, name)
        if live is None or live["metadata"].get("deletionTimestamp"):
            return
        spec = live.get("spec") or {}
        status = dict(live.get("status") or {})
        if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in status.get("conditions") or []):
            return
        if spec.get("suspend"):
            return
        now = timestamp()
        completions = int(spec.get("completions") or 1)
        if self._is_stuck("Job", namespace, name):
            status.update(startTime=status.get("startTime", now), active=int(spec.get("parallelism") or 1), ready=0,
                          terminating=0, uncountedTerminatedPods={})  # fmt: skip
            self._write_status(resource_type, live, status)
            return
        previous = status.get("conditions") or []
        status = {
            "conditions": [
                _condition("SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of succeeded pods",
                           previous, now, with_update_time=False),
                _condition("Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods",
                           previous, now, with_update_time=False),
            ],
            "startTime": status.get("startTime", now),
            "completionTime": now,
            "succeeded": completions,
            "ready": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {},
        }  # fmt: skip
        for condition in status["conditions"]:
            condition["lastProbeTime"] = now
        self._write_status(resource_type, live, status)

    # PersistentVolumeClaims: bound by a pretend provisioner ----------------------------------------
    def _reconcile_pvc(self, resource_type: ResourceType, namespace: str, name: str) -> None:
        live = self._live(resource_type, namespace, name)
        if live is None or live["metadata"].get("deletionTimestamp"):
            return
        if (live.get("status") or {}).get("phase") == "Bound":
            return
        spec = live.get("spec") or {}
        if not spec.get("volumeName"):
            bound = json.loads(json.dumps(live))
            bound["spec"]["volumeName"] = f"pvc-{live['metadata']['uid']}"
            annotations = bound["metadata"].setdefault("annotations", {})
            annotations["pv.kubernetes.io/bind-completed"] = "yes"
            annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
            live = self.cluster.controller_write(resource_type, live, bound)
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        status = {"phase": "Bound", "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
                  "capacity": {"storage": storage}}  # fmt: skip
        self._write_status(resource_type, live, status)

    # LoadBalancer Services and Ingresses get an address, as a cloud or ingress controller gives -------
    def _reconcile_load_balancer(self, resource_type: ResourceType, namespace: str, name: str) -> None:
        live = self._live(resource_type, namespace, name)
        if live is None or live["metadata"].get("deletionTimestamp"):
            return
        if resource_type.kind == "Service" and (live.get("spec") or {}).get("type") != "LoadBalancer":
            return
        status = dict(live.get("status") or {})
        if (status.get("loadBalancer") or {}).get("ingress"):
            return
        digest = int(hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:4], 16)
        address = {"ip": f"172.18.{200 + digest % 50}.{digest % 250 + 1}"}
        if resource_type.kind == "Service":
            address["ipMode"] = "VIP"
        status["loadBalancer"] = {"ingress": [address]}
        self._write_status(resource_type, live, status)

    # CRDs ------------------------------------------------------------------------------------
    def _reconcile_crd(self, resource_type: ResourceType, namespace: str, name: str) -> None:
        live = self._live(resource_type, namespace, name)
        if live is None or live["metadata"].get("deletionTimestamp"):
            return
        self.cluster.establish_crd(live)
        spec = live.get("spec") or {}
        names = dict(spec.get("names") or {})
        names.setdefault("singular", str(names.get("kind", "")).lower())
        names.setdefault("listKind", f"{names.get('kind', '')}List")
        now = timestamp()
        previous = (live.get("status") or {}).get("conditions") or []
        stored = list((live.get("status") or {}).get("storedVersions") or [])
        for version in spec.get("versions") or []:
            if version.get("storage") and version.get("name") not in stored:
                stored.append(version.get("name"))
        status = {
            "acceptedNames": names,
            "conditions": [
                _condition("NamesAccepted", "True", "NoConflicts", "no conflicts found", previous, now,
                           with_update_time=False),
                _condition("Established", "True", "InitialNamesAccepted", "the initial names have been accepted",
                           previous, now, with_update_time=False),
            ],
            "storedVersions": stored,
        }  # fmt: skip
        self._write_status(resource_type, live, status)

    # Namespaces and Nodes ------------------------------------------------------------------------
    def _namespace_defaults(self, namespace: str) -> None:
        """What real controllers put into every namespace: the default ServiceAccount and the root CA ConfigMap."""
        service_accounts = self._builtin("ServiceAccount")
        config_maps = self._builtin("ConfigMap")
        if service_accounts is not None and self._live(service_accounts, namespace, "default") is None:
            self.cluster.controller_write(
                service_accounts, None,
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}},
            )  # fmt: skip
        if config_maps is not None and self._live(config_maps, namespace, "kube-root-ca.crt") is None:
            self.cluster.controller_write(
                config_maps, None,
                {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "kube-root-ca.crt", "namespace": namespace,
                              "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to "
                                              "verify the kube-apiserver when using internal endpoints such as the "
                                              "internal service IP or kubernetes.default.svc. No other usage is "
                                              "guaranteed across distributions of Kubernetes clusters."}},
                 "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nkubesim\n-----END CERTIFICATE-----\n"}},
                manager="kube-controller-manager",
            )  # fmt: skip

    def node_object(self, index: int) -> Obj:
        name = f"{self.cluster.name}-node-{index}"
        now = timestamp()
        labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
        }
        if index == 1:
            labels["node-role.kubernetes.io/control-plane"] = ""
        capacity = {"cpu": "4", "ephemeral-storage": "102626232Ki", "hugepages-2Mi": "0", "memory": "16375000Ki",
                    "pods": "110"}  # fmt: skip
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": labels,
                         "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                         "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
            "spec": {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"]},
            "status": {
                "addresses": [{"type": "InternalIP", "address": f"172.18.0.{index + 1}"},
                              {"type": "Hostname", "address": name}],
                "allocatable": {**capacity, "cpu": "3800m", "memory": "15760000Ki"},
                "capacity": capacity,
                "conditions": self.node_conditions(True, now),
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "architecture": "amd64", "bootID": f"boot-{name}", "containerRuntimeVersion": "containerd://1.7.24",
                    "kernelVersion": "6.1.0-kubesim", "kubeProxyVersion": KUBELET_VERSION,
                    "kubeletVersion": KUBELET_VERSION, "machineID": f"machine-{name}", "operatingSystem": "linux",
                    "osImage": "Debian GNU/Linux 12 (bookworm)", "systemUUID": f"uuid-{name}",
                },
            },
        }  # fmt: skip

    @staticmethod
    def node_conditions(ready: bool, now: str, previous: list[Obj] | None = None) -> list[Obj]:
        previous = previous or []
        pressure = [
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ]
        conditions = []
        for kind, reason, message in pressure:
            condition = _condition(kind, "False", reason, message, previous, now, with_update_time=False)
            conditions.append({**condition, "lastHeartbeatTime": now})
        if ready:
            condition = _condition("Ready", "True", "KubeletReady", "kubelet is posting ready status", previous, now,
                                   with_update_time=False)  # fmt: skip
        else:
            condition = _condition("Ready", "False", "KubeletNotReady",
                                   "container runtime network not ready: NetworkReady=false", previous, now,
                                   with_update_time=False)  # fmt: skip
        conditions.append({**condition, "lastHeartbeatTime": now})
        return conditions

    def set_node_ready(self, node_name: str, ready: bool) -> bool:
        nodes = self._builtin("Node")
        if nodes is None:
            return False
        live = self._live(nodes, "", node_name)
        if live is None:
            return False
        status = json.loads(json.dumps(live.get("status") or {}))
        status["conditions"] = self.node_conditions(ready, timestamp(), status.get("conditions"))
        self.cluster.controller_status_write(nodes, live, status, manager="kubelet")
        return True


def _max_unavailable(spec: Obj, replicas: int) -> int:
    """maxUnavailable of a RollingUpdate deployment as a count (percentages round down)."""
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0
    value = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    if isinstance(value, str) and value.endswith("%"):
        try:
            return int(replicas * int(value[:-1]) / 100)
        except ValueError:
            return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _node_ready(node: Obj | None) -> bool:
    if node is None:
        return False
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False
