"""Failover recovery time with default settings (run by hand; results go to BENCHMARKS.md).

    python benchmarks/failover_recovery.py

Two kubesim clusters form a failover group (policy auto, every other setting
default: agent poll 15 s, 3 missed heartbeats / 3 unhealthy intervals).
After the first convergence the primary's API is taken down; the clock runs
from that moment (the first missed health check) until the standby serves the
failover app with all replicas available.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import git
import httpx

from fleet.demo.services import free_port, wait_for_port
from fleet.kubesim import Simulator

APP = {
    "apps/payments/fleet.yaml": "namespace: payments\nfailover: true\nfailoverGroup: prod\ntargets: [{clusterSelector: {}}]\n",
    "apps/payments/deploy.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: payments}\nspec:\n  replicas: 2\n"
        "  selector: {matchLabels: {app: payments}}\n  template:\n    metadata: {labels: {app: payments}}\n"
        "    spec: {containers: [{name: p, image: 'payments:1'}]}\n"
    ),
}


def available(sim: Simulator, cluster: str) -> bool:
    d = sim.clusters[cluster].get_object("apps/v1", "Deployment", "payments", "payments")
    return bool(d and d.get("status", {}).get("availableReplicas") == 2 and d["spec"]["replicas"] == 2)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="fleet-failover-") as tmp:
        base = Path(tmp)
        sim = Simulator(tls=True, controller_delay=0.5).start()
        for name in ("east", "west"):
            sim.add_cluster(name)
        sim.write_kubeconfig(base / "sim.kubeconfig")
        origin = base / "origin.git"
        git.Repo.init(origin, bare=True, initial_branch="main")
        work = git.Repo.init(base / "work", initial_branch="main")
        with work.config_writer() as cfg:
            cfg.set_value("user", "name", "bench")
            cfg.set_value("user", "email", "bench@fleet.local")
        files = {
            "fleet.yaml": "failover:\n  groups:\n    prod: {policy: auto}\n",
            "clusters/east.yaml": "name: east\nprovider: {type: kubeconfig, context: east}\nfailover: {group: prod, role: primary}\n",
            "clusters/west.yaml": "name: west\nprovider: {type: kubeconfig, context: west}\nfailover: {group: prod, role: standby}\n",
            **APP,
        }
        for rel, text in files.items():
            path = base / "work" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        work.git.add(A=True)
        work.git.commit("-m", "failover bench")
        work.create_remote("origin", origin.as_uri())
        work.git.push("origin", "HEAD:main")
        port = free_port()
        hub = subprocess.Popen(
            [sys.executable, "-m", "fleet", "hub", "run", "--repo", origin.as_uri(), "--data-dir", str(base / "hub"),
             "--kubeconfig", str(base / "sim.kubeconfig"), "--dispatch", "local", "--listen", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for_port(port, 60, "hub", None)
            token = (base / "hub" / "admin.token").read_text().strip()
            http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"})
            deadline = time.monotonic() + 300
            while not available(sim, "east"):
                if time.monotonic() > deadline:
                    raise SystemExit("no initial convergence")
                time.sleep(0.5)
            sim.clusters["east"].faults.api_down(True)
            started = time.monotonic()
            while not available(sim, "west"):
                if time.monotonic() - started > 600:
                    raise SystemExit("no failover within 10 minutes")
                time.sleep(0.25)
            recovery = time.monotonic() - started
            group = http.get("/v1/admin/failover").json()[0]
            print(json.dumps({
                "recovery_s": round(recovery, 1),
                "target_s": 120,
                "settings": "defaults (agent poll 15s, missedHeartbeats 3, unhealthyReports 3)",
                "active": group["active"],
                "epoch": group["epoch"],
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            }, indent=2))  # fmt: skip
        finally:
            hub.send_signal(signal.SIGTERM)
            hub.wait(60)
            sim.stop()


if __name__ == "__main__":
    main()
