"""`fleet agent run` as a user runs it: a real process, JSON logs, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fleet.kubesim import SimCluster
from fleet.protocol import ANNOTATION_SECRET_SOURCE
from tests.agent import bundle
from tests.agent.standin_hub import StandInHub

SECRET_VALUE = "cli-secret-value-do-not-print"


def _argv(hub: StandInHub, cluster: SimCluster, kubeconfig: Path, tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "fleet", "agent", "run",
        "--hub", hub.url, "--cluster", cluster.name,
        "--token-file", str(tmp_path / "token"),
        "--kubeconfig", str(kubeconfig), "--context", cluster.name,
        "--state-dir", str(tmp_path / "state"),
        *extra,
    ]  # fmt: skip


def _desired_with_secret(hub: StandInHub, cluster: str) -> None:
    secret = bundle.owned(
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "api", "namespace": bundle.NAMESPACE,
                      "annotations": {ANNOTATION_SECRET_SOURCE: "sops:secrets/api.yaml"}}},
        cluster,
    )
    hub.set_desired(cluster, [*bundle.full_bundle(cluster), secret],
                    secret_values={"/Secret/shop/api": {"token": SECRET_VALUE}})


def _events(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def test_run_once_applies_and_logs_json_without_secrets(
    hub: StandInHub, sim_cluster: SimCluster, sim_kubeconfig: Path, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text(hub.issue_token(sim_cluster.name))
    _desired_with_secret(hub, sim_cluster.name)
    result = subprocess.run(
        _argv(hub, sim_cluster, sim_kubeconfig, tmp_path, "--once", "--log-level", "debug"),
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    events = _events(result.stderr)  # every line is one JSON event
    names = [e["event"] for e in events]
    assert {"agent-start", "identity-created", "bootstrapped", "desired", "applied", "cycle"} <= set(names)
    assert SECRET_VALUE not in result.stdout + result.stderr
    credential = json.loads((tmp_path / "state" / "identity.json").read_text())["credential"]
    assert credential not in result.stderr
    assert oct((tmp_path / "state" / "identity.json").stat().st_mode & 0o777) == "0o600"
    assert sim_cluster.get_object("v1", "Secret", bundle.NAMESPACE, "api") is not None
    assert hub.last_report(sim_cluster.name).appliedDigest is not None


def test_run_once_fails_without_a_token(
    hub: StandInHub, sim_cluster: SimCluster, sim_kubeconfig: Path, tmp_path: Path
) -> None:
    result = subprocess.run(
        _argv(hub, sim_cluster, sim_kubeconfig, tmp_path, "--once"), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert any(e["event"] == "bootstrap-needed" for e in _events(result.stderr))


def test_run_loops_until_sigterm(
    hub: StandInHub, sim_cluster: SimCluster, sim_kubeconfig: Path, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text(hub.issue_token(sim_cluster.name))
    hub.set_desired(sim_cluster.name, bundle.full_bundle(sim_cluster.name), poll_interval=1)
    process = subprocess.Popen(
        _argv(hub, sim_cluster, sim_kubeconfig, tmp_path), stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while hub.requests_to("/desired") < 3:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the agent did not keep polling"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "agent-stop" in [e["event"] for e in _events(stderr)]
    assert sim_cluster.get_object("apps/v1", "Deployment", bundle.NAMESPACE, "web") is not None
