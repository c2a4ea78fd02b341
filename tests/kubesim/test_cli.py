"""`fleet sim up` as a user runs it, then kubectl and `fleet sim fault|counters` from another terminal."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fleet.cli.sim import fault_payload, sim

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      containers:
      - name: hello
        image: nginx:1.27
"""


def _kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/usr/bin/kubectl", "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_sim_up_serves_kubectl_and_faults(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "sim.kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "fleet", "sim", "up", "--clusters", "2", "--kubeconfig", str(kubeconfig),
         "--controller-delay", "0.05"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()
        assert ready.startswith("kubesim ready: 2 clusters (sim-1, sim-2); kubeconfig "), ready + (process.stderr.read() if process.poll() is not None else "")
        assert "admin http://127.0.0.1:" in ready
        assert kubeconfig.stat().st_mode & 0o777 == 0o600
        manifest = tmp_path / "deploy.yaml"
        manifest.write_text(DEPLOY)
        applied = _kubectl(kubeconfig, "--context", "sim-1", "apply", "--server-side", "-f", str(manifest))
        assert applied.returncode == 0 and "deployment.apps/hello serverside-applied" in applied.stdout, applied.stderr
        waited = _kubectl(kubeconfig, "--context", "sim-1", "wait", "--for=condition=Available", "deploy/hello", "--timeout=30s")
        assert waited.returncode == 0, waited.stderr
        table = _kubectl(kubeconfig, "--context", "sim-1", "get", "deploy").stdout.splitlines()
        assert table[1].split()[:2] == ["hello", "1/1"]
        assert _kubectl(kubeconfig, "--context", "sim-1", "scale", "deploy/hello", "--replicas=2").returncode == 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = _kubectl(kubeconfig, "--context", "sim-1", "get", "deploy", "hello", "--no-headers").stdout.split()
            if row[:2] == ["hello", "2/2"]:
                break
            time.sleep(0.1)
        assert row[:2] == ["hello", "2/2"]
        # the other cluster is separate
        assert "hello" not in _kubectl(kubeconfig, "--context", "sim-2", "get", "deploy").stdout

        runner = CliRunner()
        down = runner.invoke(sim, ["fault", "--kubeconfig", str(kubeconfig), "--cluster", "sim-2", "api-down"])
        assert down.exit_code == 0, down.output
        refused = _kubectl(kubeconfig, "--context", "sim-2", "get", "ns", "--request-timeout=5s")
        assert refused.returncode != 0 and "refused" in refused.stderr
        assert _kubectl(kubeconfig, "--context", "sim-1", "get", "ns").returncode == 0
        up = runner.invoke(sim, ["fault", "--kubeconfig", str(kubeconfig), "--cluster", "sim-2", "api-up"])
        assert up.exit_code == 0
        assert _kubectl(kubeconfig, "--context", "sim-2", "get", "ns").returncode == 0
        counters = runner.invoke(sim, ["counters", "--kubeconfig", str(kubeconfig), "--cluster", "sim-1", "--json"])
        assert counters.exit_code == 0 and '"patch"' in counters.output
        missing = runner.invoke(sim, ["fault", "--kubeconfig", str(kubeconfig), "--cluster", "nope", "latency", "1"])
        assert missing.exit_code != 0 and "no cluster named" in missing.output

        deleted = _kubectl(kubeconfig, "--context", "sim-1", "delete", "deploy/hello")
        assert deleted.returncode == 0 and 'deployment.apps "hello" deleted' in deleted.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0


def test_fault_payloads() -> None:
    assert fault_payload("api-down", ()) == {"api_down": True}
    assert fault_payload("api-down", ("off",)) == {"api_down": False}
    assert fault_payload("latency", ("0.5",)) == {"latency": 0.5}
    assert fault_payload("error-rate", ("0.1",)) == {"error_rate": 0.1}
    assert fault_payload("node-ready", ("n1", "false")) == {"node_ready": {"node": "n1", "ready": False}}
    assert fault_payload("stuck", ("Deployment", "default/web")) == {
        "stuck": {"kind": "Deployment", "namespace": "default", "name": "web", "stuck": True}}
    with pytest.raises(Exception, match="NAMESPACE/NAME"):
        fault_payload("stuck", ("Deployment", "web"))


def test_help_documents_the_admin_endpoint() -> None:
    result = CliRunner().invoke(sim, ["--help"])
    assert result.exit_code == 0 and "extensions" in result.output and "kubesim" in result.output
