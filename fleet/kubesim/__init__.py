"""kubesim: a Kubernetes API simulator that kubectl 1.32 and the official client accept.

    from fleet.kubesim import Simulator, SimCluster
    sim = Simulator(tls=True, controller_delay=0.5).start()
    cluster = sim.add_cluster("sim-1")          # its own loopback port, bearer token, CA
    sim.write_kubeconfig("sim.kubeconfig")       # context name == cluster name
    cluster.faults.api_down(True)                # connection refused for this cluster only

Modules, one concern each: `resources` (types, discovery), `schema` (OpenAPI schemas of the
built-in kinds and CRDs), `storage` (objects, resourceVersions, watch fan-out), `selectors`,
`patches`, `apply` (server-side apply, managedFields), `validation`, `defaults`, `tables`,
`controllers`, `cluster` (API semantics), `server` (HTTP), `protobuf` (kubectl create bodies),
`openapi`, `faults`, `tls`, `kubeconfig`, `admin`, `simulator` (this public API).

Not simulated: Pods (stored only, never scheduled), exec/logs/port-forward, RBAC (one
token per cluster is all-powerful), admission webhooks, Events from controllers, conversion
between CRD versions (objects are served as stored), protobuf or CBOR responses.

Nothing in fleet's hub or agent code imports this package.
"""

from fleet.kubesim.simulator import SimCluster, Simulator

__all__ = ["SimCluster", "Simulator"]
