"""Commit-to-converged time across a fleet of kubesim clusters (run by hand; results go to BENCHMARKS.md).

    python benchmarks/fleet_scale.py --clusters 100 --mode threads
    python benchmarks/fleet_scale.py --clusters 3 --mode local

It starts `fleet sim up` (all clusters in one process), makes a fleet repo with
one cluster file per simulated cluster and an app on every cluster, runs
`fleet hub run` with the chosen agent dispatch, waits for the first
convergence, then commits an image bump, sends the signed push webhook, and
measures until every cluster reports the new digest applied and Healthy.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
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
from procstat import rss_mib  # sibling module: the scripts run from benchmarks/

from fleet.demo.services import free_port, wait_for_port

APP_FLEET = "namespace: web\ntargets: [{clusterSelector: {}}]\n"
DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
"""
CONFIG = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-config}\ndata: {cluster: '${cluster.name}'}\n"





def run(clusters: int, mode: str, agent_poll: int, base: Path) -> dict[str, object]:
    kubeconfig = base / "sim.kubeconfig"
    sim = subprocess.Popen(
        [sys.executable, "-m", "fleet", "sim", "up", "--clusters", str(clusters), "--kubeconfig", str(kubeconfig),
         "--controller-delay", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert sim.stdout is not None
    ready = sim.stdout.readline()
    if "ready" not in ready:
        raise SystemExit(f"kubesim did not start: {ready}")
    names = [f"sim-{i}" for i in range(1, clusters + 1)]

    origin = base / "origin.git"
    git.Repo.init(origin, bare=True, initial_branch="main")
    work = git.Repo.init(base / "work", initial_branch="main")
    with work.config_writer() as cfg:
        cfg.set_value("user", "name", "bench")
        cfg.set_value("user", "email", "bench@fleet.local")
    work.create_remote("origin", origin.as_uri())
    root = base / "work"
    (root / "clusters").mkdir()
    (root / "apps" / "web").mkdir(parents=True)
    (root / "fleet.yaml").write_text(f"pollInterval: 30s\nagent:\n  pollInterval: {agent_poll}s\n  driftInterval: 60s\n")
    for name in names:
        (root / "clusters" / f"{name}.yaml").write_text(
            f"name: {name}\nprovider: {{type: kubeconfig, context: {name}}}\nlabels: {{env: bench}}\n"
        )
    (root / "apps" / "web" / "fleet.yaml").write_text(APP_FLEET)
    (root / "apps" / "web" / "deploy.yaml").write_text(DEPLOY)
    (root / "apps" / "web" / "config.yaml").write_text(CONFIG)
    work.git.add(A=True)
    work.git.commit("-m", "bench fleet")
    work.git.push("origin", "HEAD:main")

    port = free_port()
    hub_log = open(base / "hub.log", "ab")  # noqa: SIM115
    hub = subprocess.Popen(
        [sys.executable, "-m", "fleet", "hub", "run", "--repo", origin.as_uri(), "--data-dir", str(base / "hub"),
         "--kubeconfig", str(kubeconfig), "--dispatch", mode, "--listen", f"127.0.0.1:{port}"],
        stdout=hub_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_port(port, 60, "hub", None)
        token = (base / "hub" / "admin.token").read_text().strip()
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}, timeout=60)

        def converged(revision: str | None) -> bool:
            rows = http.get("/v1/admin/clusters").json()
            return len(rows) == clusters and all(
                r["inSync"] and r["health"] == "Healthy" and (revision is None or r["desiredRevision"] == revision)
                for r in rows
            )

        started = time.monotonic()
        while not converged(None):
            if time.monotonic() - started > 900:
                raise SystemExit("initial convergence took more than 15 minutes")
            time.sleep(1)
        initial = time.monotonic() - started

        deploy = root / "apps" / "web" / "deploy.yaml"
        deploy.write_text(deploy.read_text().replace("nginx:1.27", "nginx:1.28"))
        work.git.commit("-am", "web: nginx 1.28")
        started = time.monotonic()
        work.git.push("origin", "HEAD:main")
        sha = work.head.commit.hexsha
        secret = (base / "hub" / "webhook.secret").read_text().strip()
        body = b'{"ref":"refs/heads/main"}'
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        http.post("/v1/hooks/git", content=body, headers={"X-Hub-Signature-256": signature})
        while not converged(sha):
            if time.monotonic() - started > 600:
                raise SystemExit("convergence after the commit took more than 10 minutes")
            time.sleep(0.5)
        bump = time.monotonic() - started
        return {
            "clusters": clusters,
            "dispatch": mode,
            "agent_poll_seconds": agent_poll,
            "initial_convergence_s": round(initial, 1),
            "commit_to_converged_s": round(bump, 1),
            "target_s": agent_poll + 10,
            "hub_rss_mib": round(rss_mib(hub.pid), 1),
            "kubesim_rss_mib": round(rss_mib(sim.pid), 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        }
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.wait(60)
        sim.send_signal(signal.SIGTERM)
        sim.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--mode", choices=["local", "threads"], default="threads")
    parser.add_argument("--agent-poll", type=int, default=5, help="agent poll interval in seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        print(json.dumps(run(args.clusters, args.mode, args.agent_poll, Path(tmp)), indent=2))


if __name__ == "__main__":
    main()
