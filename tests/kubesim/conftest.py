"""The fidelity target: kubesim by default, or a real cluster when the environment names one.

Set FLEET_FIDELITY_KUBECONFIG=/path (or FLEET_FIDELITY_REAL=1 with KUBECONFIG) to run the
scenario suites (test_kubectl_fidelity.py, test_client_fidelity.py) unchanged against a
real cluster. They use unique namespaces and CRD groups and clean up after themselves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

KUBECTL = "/usr/bin/kubectl"


@dataclass
class FidelityTarget:
    kubeconfig: Path
    context: str
    real: bool

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        binary = KUBECTL if Path(KUBECTL).exists() else shutil.which("kubectl")
        if binary is None:
            pytest.fail("kubectl is not installed (expected /usr/bin/kubectl, v1.32); the fidelity suite needs it")
        command = [binary, "--kubeconfig", str(self.kubeconfig), "--context", self.context, *args]
        result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json", "--show-managed-fields").stdout)


def _real_kubeconfig() -> tuple[Path, str] | None:
    path = os.environ.get("FLEET_FIDELITY_KUBECONFIG")
    if not path and os.environ.get("FLEET_FIDELITY_REAL") == "1":
        path = os.environ.get("KUBECONFIG")
    if not path:
        return None
    config = yaml.safe_load(Path(path).read_text())
    return Path(path), str(os.environ.get("FLEET_FIDELITY_CONTEXT") or config.get("current-context"))


@pytest.fixture
def fidelity(request: pytest.FixtureRequest) -> FidelityTarget:
    real = _real_kubeconfig()
    if real is not None:
        return FidelityTarget(real[0], real[1], real=True)
    cluster = request.getfixturevalue("sim_cluster")
    kubeconfig = request.getfixturevalue("sim_kubeconfig")
    return FidelityTarget(Path(kubeconfig), cluster.name, real=False)


@pytest.fixture
def namespace(fidelity: FidelityTarget) -> Iterator[str]:
    """A unique namespace on the target, deleted afterwards."""
    name = f"fid-{uuid.uuid4().hex[:8]}"
    fidelity.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        fidelity.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def crd_group() -> str:
    """A CRD API group unique to this test, so runs against a shared real cluster never collide."""
    return f"t{uuid.uuid4().hex[:8]}.fleet.example.com"


def widget_crd(group: str, scope: str = "Namespaced", plural: str = "widgets", kind: str = "Widget") -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "scope": scope,
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {
                            "size": {"type": "integer"}, "color": {"type": "string"},
                            "tags": {"type": "array", "items": {"type": "string"}},
                        }},
                        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                    },
                }},
            }],
        },
    }  # fmt: skip


def yaml_docs(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False)


@pytest.fixture
def cleanup_crds(fidelity: FidelityTarget) -> Iterator[Callable[[str], None]]:
    names: list[str] = []
    yield names.append
    for name in names:
        fidelity.kubectl("delete", "crd", name, "--ignore-not-found", "--wait=false", check=False)
