"""Agent benchmark (run by hand, not a test).

1. Apply: N objects (default 300: namespaces, ConfigMaps, Services, Deployments) applied to an
   empty kubesim cluster by the agent's applier (fresh client, discovery included), against
   `kubectl apply --server-side -f` of the same objects on another empty cluster. Also the
   wall time of a whole `fleet agent run --once` (process start, bootstrap, fetch, apply).
2. No-op cycles: cluster API requests per cycle of a running `fleet agent run` once the state
   has converged and the hub answers 304 (kubesim counters; target 0 writes).
3. Idle RSS of that agent process (/proc/<pid>/status; target <= 80 MiB).

The simulator runs in its own process (`fleet sim up`); the hub is the tests' stand-in hub.

    python benchmarks/agent_bench.py [--objects 300] [--concurrency 8] [--cycles 6]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from procstat import rss_mib  # noqa: E402  (sibling module: the scripts run from benchmarks/)

from fleet.agent.apply import Applier, with_ownership  # noqa: E402
from fleet.agent.kube import Kube  # noqa: E402
from fleet.kubesim.kubeconfig import admin_endpoint  # noqa: E402
from tests.agent.standin_hub import StandInHub  # noqa: E402

FIXED_CLUSTERS = ("agent-once", "agent-idle")
WRITE_VERBS = ("create", "update", "patch", "delete")


def apply_clusters(repeat: int) -> list[tuple[str, str]]:
    return [(f"agent-apply-{i}", f"kubectl-apply-{i}") for i in range(repeat)]


@contextmanager
def simulator(workdir: Path, names: list[str]) -> Iterator[Path]:
    kubeconfig = workdir / "sim.kubeconfig"
    command = [sys.executable, "-m", "fleet", "sim", "up", "--names", ",".join(names),
               "--kubeconfig", str(kubeconfig), "--controller-delay", "0.5"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("kubesim ready"):
            raise RuntimeError(f"simulator did not start: {line}{process.stderr.read() if process.stderr else ''}")
        yield kubeconfig
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def admin(kubeconfig: Path, method: str, path: str) -> Any:
    url, token = admin_endpoint(yaml.safe_load(kubeconfig.read_text()))
    response = httpx.request(method, f"{url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    response.raise_for_status()
    return response.json()


def objects(count: int) -> list[dict[str, Any]]:
    """`count` objects over count//30 namespaces: per namespace 1 Namespace, 15 ConfigMaps, 8 Services, 6 Deployments."""
    result: list[dict[str, Any]] = []
    namespaces = max(count // 30, 1)
    for n in range(namespaces):
        ns = f"bench-{n:02d}"
        result.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for i in range(15):
            result.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cfg-{i:02d}", "namespace": ns},
                           "data": {"index": str(i), "payload": "x" * 200}})  # fmt: skip
        for i in range(8):
            result.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc-{i:02d}", "namespace": ns},
                           "spec": {"selector": {"app": f"app-{i}"}, "ports": [{"port": 80, "targetPort": 8080}]}})  # fmt: skip
        for i in range(6):
            labels = {"app": f"app-{i}"}
            result.append({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"app-{i:02d}", "namespace": ns},
                "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                                               "ports": [{"containerPort": 8080}]}]}}},
            })  # fmt: skip
    return result[:count]


def _settle(seconds: float) -> None:
    """Let the simulator's controllers finish reacting to the last apply (ReplicaSets, Pods), so
    that work is not charged to the next measurement."""
    time.sleep(seconds)


def agent_apply(kubeconfig: Path, items: list[dict[str, Any]], concurrency: int, context: str) -> float:
    prepared = [with_ownership(o, context) for o in items]
    start = time.perf_counter()
    kube = Kube.from_kubeconfig(str(kubeconfig), context, pool_size=concurrency + 4)
    applier = Applier(kube, concurrency=concurrency)
    result = applier.apply(prepared)
    seconds = time.perf_counter() - start
    applier.close()
    kube.close()
    if not result.succeeded:
        raise RuntimeError(f"agent apply failed: {result.errors[:5]}")
    return seconds


_KLOG_TIME = re.compile(r"^[IWE]\d{4} (\d\d):(\d\d):(\d\d\.\d+)\s.*round_trippers.*\] PATCH ")


def kubectl_apply(kubeconfig: Path, manifest: Path, context: str) -> tuple[float, float]:
    """Wall time of the whole command, and of its PATCH phase alone (from its -v=6 request log):
    kubectl spends most of its time loading the server's OpenAPI schemas before the first PATCH."""
    start = time.perf_counter()
    result = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "--context", context, "apply",
                             "--server-side", "--field-manager", "bench", "-f", str(manifest), "-v=6"],
                            check=True, capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - start
    stamps = [
        int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
        for m in map(_KLOG_TIME.match, result.stderr.splitlines())
        if m
    ]
    return wall, (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")


def bench_apply(
    kubeconfig: Path, items: list[dict[str, Any]], concurrency: int, workdir: Path, pairs: list[tuple[str, str]],
    settle: float,
) -> dict[str, Any]:
    manifest = workdir / "objects.yaml"
    manifest.write_text(yaml.safe_dump_all(items))
    runs: list[tuple[float, float, float]] = []
    for index, (agent_ctx, kubectl_ctx) in enumerate(pairs):
        if index % 2 == 0:  # alternate who goes first
            agent_s = agent_apply(kubeconfig, items, concurrency, agent_ctx)
            _settle(settle)
            kubectl_s, patch_s = kubectl_apply(kubeconfig, manifest, kubectl_ctx)
        else:
            kubectl_s, patch_s = kubectl_apply(kubeconfig, manifest, kubectl_ctx)
            _settle(settle)
            agent_s = agent_apply(kubeconfig, items, concurrency, agent_ctx)
        _settle(settle)
        runs.append((agent_s, kubectl_s, patch_s))
    agent_median = statistics.median(r[0] for r in runs)
    kubectl_median = statistics.median(r[1] for r in runs)
    patch_median = statistics.median(r[2] for r in runs)
    return {
        "agent_apply_s": round(agent_median, 3),
        "kubectl_apply_s": round(kubectl_median, 3),
        "ratio": round(agent_median / kubectl_median, 2),
        "ratios": [round(a / k, 2) for a, k, _ in runs],
        "kubectl_patch_phase_s": round(patch_median, 3),
        "ratio_to_patch_phase": round(agent_median / patch_median, 2),
    }


def agent_argv(hub: StandInHub, cluster: str, kubeconfig: Path, workdir: Path, *extra: str) -> list[str]:
    token_file = workdir / f"{cluster}.token"
    token_file.write_text(hub.issue_token(cluster))
    return [sys.executable, "-m", "fleet", "agent", "run", "--hub", hub.url, "--cluster", cluster,
            "--token-file", str(token_file), "--kubeconfig", str(kubeconfig), "--context", cluster,
            "--state-dir", str(workdir / f"{cluster}-state"), *extra]  # fmt: skip


def bench_once(hub: StandInHub, kubeconfig: Path, items: list[dict[str, Any]], workdir: Path) -> float:
    hub.set_desired("agent-once", [with_ownership(o, "agent-once") for o in items])
    start = time.perf_counter()
    subprocess.run(agent_argv(hub, "agent-once", kubeconfig, workdir, "--once"), check=True, capture_output=True)
    return time.perf_counter() - start





def bench_idle(hub: StandInHub, kubeconfig: Path, items: list[dict[str, Any]], workdir: Path, cycles: int) -> dict[str, Any]:
    hub.set_desired("agent-idle", [with_ownership(o, "agent-idle") for o in items], poll_interval=1, drift_interval=3600)
    process = subprocess.Popen(agent_argv(hub, "agent-idle", kubeconfig, workdir), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:  # converged: applied and every object healthy, as reported to the hub
            reports = hub.reports.get("agent-idle") or []
            if reports and reports[-1].phase == "Applied" and reports[-1].appliedDigest:
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("agent did not converge")
            time.sleep(0.2)
        time.sleep(2.5)  # let the report after convergence go out
        admin(kubeconfig, "POST", "/clusters/agent-idle/counters/reset")
        polls_before = hub.requests_to("/desired")
        statuses_before = hub.requests_to("/status")
        while hub.requests_to("/desired") - polls_before < cycles:
            time.sleep(0.1)
        counters = admin(kubeconfig, "GET", "/clusters/agent-idle/counters")
        done = hub.requests_to("/desired") - polls_before
        rss = rss_mib(process.pid)
        return {
            "cycles": done,
            "writes_per_cycle": sum(counters.get(v, 0) for v in WRITE_VERBS) / done,
            "reads_per_cycle": (counters.get("get", 0) + counters.get("list", 0)) / done,
            "status_posts": hub.requests_to("/status") - statuses_before,
            "rss_mib": rss,
        }
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=5, help="apply comparisons on fresh clusters; medians reported")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds for the simulator to go idle between runs")
    args = parser.parse_args()
    items = objects(args.objects)
    pairs = apply_clusters(args.repeat)
    names = [name for pair in pairs for name in pair] + list(FIXED_CLUSTERS)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with simulator(workdir, names) as kubeconfig:
            hub = StandInHub().start()
            try:
                results: dict[str, Any] = {"objects": len(items), "concurrency": args.concurrency}
                results.update(bench_apply(kubeconfig, items, args.concurrency, workdir, pairs, args.settle))
                results["agent_run_once_s"] = bench_once(hub, kubeconfig, items, workdir)
                results.update(bench_idle(hub, kubeconfig, items, workdir, args.cycles))
            finally:
                hub.stop()
    results["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
