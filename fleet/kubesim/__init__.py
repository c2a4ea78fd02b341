"""kubesim: a Kubernetes API simulator that kubectl and the official client accept.

    from fleet.kubesim import Simulator, SimCluster
    sim = Simulator(tls=True, controller_delay=0.5).start()
    cluster = sim.add_cluster("sim-1")
    sim.write_kubeconfig("sim.kubeconfig")

Nothing in fleet's hub or agent code imports this package.
"""

from fleet.kubesim.simulator import SimCluster, Simulator

__all__ = ["SimCluster", "Simulator"]
