"""kubesim benchmark (run by hand, not a test).

1. Throughput: server-side apply 1,000 ConfigMaps (create), then re-apply them unchanged
   (no-op), from 8 client threads against one simulated cluster.
2. Memory: RSS of a simulator process holding 100 clusters x 200 applied objects
   (150 ConfigMaps and 50 Deployments each; the Deployments also get ReplicaSets and status).

The simulator runs in its own process (`fleet sim up`), so client threads do not share its GIL.

    python benchmarks/kubesim_bench.py [--objects 1000] [--threads 8] [--clusters 100] [--per-cluster 200]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import yaml
from procstat import rss_kib  # sibling module: the scripts run from benchmarks/

APPLY_HEADERS = {"Content-Type": "application/apply-patch+yaml"}


@contextmanager
def simulator_process(clusters: int, tls: bool, workdir: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    kubeconfig = workdir / f"bench-{clusters}.kubeconfig"
    command = [sys.executable, "-m", "fleet", "sim", "up", "--clusters", str(clusters), "--kubeconfig", str(kubeconfig),
               "--controller-delay", "0.5"] + ([] if tls else ["--http"])  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("kubesim ready"):
            raise RuntimeError(f"simulator did not start: {line}{process.stderr.read() if process.stderr else ''}")
        yield process, yaml.safe_load(kubeconfig.read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def _sessions(config: dict[str, Any], workdir: Path, count: int, cluster_index: int = 0) -> tuple[str, list[requests.Session]]:
    cluster = config["clusters"][cluster_index]["cluster"]
    token = config["users"][cluster_index]["user"]["token"]
    verify: Any = True
    if "certificate-authority-data" in cluster:
        ca_file = workdir / "ca.pem"
        ca_file.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        verify = str(ca_file)
    sessions = []
    for _ in range(count):
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override session.verify
        session.headers["Authorization"] = f"Bearer {token}"
        session.verify = verify
        sessions.append(session)
    return cluster["server"], sessions


def _configmap(index: int, namespace: str = "default") -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": f"bench-{index:05d}", "namespace": namespace, "labels": {"app": "bench", "shard": str(index % 8)}},
        "data": {"index": str(index), "payload": "x" * 200},
    })  # fmt: skip


def _deployment(index: int, namespace: str = "default") -> str:
    name = f"bench-{index:05d}"
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{
                     "name": "main", "image": "nginx:1.27", "ports": [{"containerPort": 8080}],
                     "env": [{"name": "INDEX", "value": str(index)}],
                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}},
    })  # fmt: skip


def _apply_all(
    server: str, sessions: list[requests.Session], indices: list[int], namespace: str = "default", mixed: bool = False
) -> float:
    """Apply one ConfigMap per index from len(sessions) threads; returns requests per second."""
    local = threading.local()
    pool_sessions = iter(sessions)
    lock = threading.Lock()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            with lock:
                local.session = next(pool_sessions)
        return local.session  # type: ignore[no-any-return]

    def apply(index: int) -> int:
        if mixed and index % 4 == 0:
            url = f"{server}/apis/apps/v1/namespaces/{namespace}/deployments/bench-{index:05d}"
            body = _deployment(index, namespace)
        else:
            url = f"{server}/api/v1/namespaces/{namespace}/configmaps/bench-{index:05d}"
            body = _configmap(index, namespace)
        response = session().patch(url, params={"fieldManager": "bench"}, data=body, headers=APPLY_HEADERS)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"apply failed: {response.status_code} {response.text[:200]}")
        return response.status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(sessions)) as pool:
        list(pool.map(apply, indices))
    return len(indices) / (time.perf_counter() - started)


def throughput(objects: int, threads: int, tls: bool, workdir: Path) -> dict[str, float]:
    with simulator_process(1, tls, workdir) as (_, config):
        server, sessions = _sessions(config, workdir, threads)
        _apply_all(server, sessions, list(range(objects, objects + 50)))  # warm up connections
        create = _apply_all(server, sessions, list(range(objects)))
        noop = _apply_all(server, sessions, list(range(objects)))
        # confirm the re-apply really was a no-op: resourceVersions did not move
        listed = sessions[0].get(f"{server}/api/v1/namespaces/default/configmaps", params={"labelSelector": "app=bench"})
        assert len(listed.json()["items"]) == objects + 50
        return {"create_rps": create, "noop_rps": noop}





def memory(clusters: int, per_cluster: int, threads: int, workdir: Path) -> dict[str, float]:
    with simulator_process(clusters, True, workdir) as (process, config):
        idle_rss = rss_kib(process.pid)
        started = time.perf_counter()
        for index in range(clusters):
            server, sessions = _sessions(config, workdir, threads, index)
            _apply_all(server, sessions, list(range(per_cluster)), mixed=True)
            for session in sessions:
                session.close()
        fill_seconds = time.perf_counter() - started
        time.sleep(2.0)  # let controllers settle
        loaded_rss = rss_kib(process.pid)
        cpu_before = _cpu_seconds(process.pid)
        time.sleep(5.0)
        idle_cpu = (_cpu_seconds(process.pid) - cpu_before) / 5.0
        return {"idle_rss_mib": idle_rss / 1024, "loaded_rss_mib": loaded_rss / 1024, "fill_seconds": fill_seconds,
                "idle_cpu_share": idle_cpu}  # fmt: skip


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--per-cluster", type=int, default=200)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="kubesim-bench-") as tmp:
        workdir = Path(tmp)
        for tls in (True, False):
            result = throughput(args.objects, args.threads, tls, workdir)
            label = "https" if tls else "http"
            print(f"throughput ({label}, {args.threads} threads, {args.objects} ConfigMaps): "
                  f"create {result['create_rps']:.0f} req/s, no-op re-apply {result['noop_rps']:.0f} req/s")  # fmt: skip
        if not args.skip_memory:
            result = memory(args.clusters, args.per_cluster, args.threads, workdir)
            print(f"memory ({args.clusters} clusters x {args.per_cluster} objects (3/4 ConfigMaps, 1/4 Deployments), https): "
                  f"RSS idle {result['idle_rss_mib']:.0f} MiB, loaded {result['loaded_rss_mib']:.0f} MiB "
                  f"(filled in {result['fill_seconds']:.1f} s); idle CPU {result['idle_cpu_share'] * 100:.1f}% of a core")  # fmt: skip


if __name__ == "__main__":
    main()
