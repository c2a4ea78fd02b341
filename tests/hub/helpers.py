"""Building blocks for hub tests: a fleet repo with real commits and a hub on it."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from fleet.hub.app import create_app
from fleet.hub.core import Hub, HubConfig
from tests.fixtures.gitrepo import FleetRepo


def kubeconfig_cluster(name: str, labels: dict[str, str], kubeconfig: Path | None = None, extra: str = "") -> str:
    path = f"\n  path: {kubeconfig}" if kubeconfig else ""
    label_text = "".join(f"\n  {k}: {v}" for k, v in labels.items())
    return f"name: {name}\nprovider:\n  type: kubeconfig\n  context: {name}{path}\nlabels:{label_text or ' {}'}\n{extra}"


WEB_APP = {
    "apps/web/fleet.yaml": (
        "namespace: web\n"
        "values: {replicas: 1}\n"
        "targets:\n"
        "  - name: prod\n    clusterSelector: {matchLabels: {env: prod}}\n    values: {replicas: 3}\n"
        "  - name: dev\n    clusterSelector: {matchLabels: {env: dev}}\n"
    ),
    "apps/web/deployment.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: ${replicas}\n"
        "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
        "    spec:\n      containers:\n        - name: web\n          image: nginx:1.27\n"
    ),
    "apps/web/configmap.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  cluster: ${cluster.name}\n"
    ),
}


def make_hub(repo: FleetRepo, data_dir: Path, kubeconfig: Path | None = None, **config: object) -> Hub:
    return Hub(HubConfig(repo=repo.url, data_dir=data_dir, kubeconfig=kubeconfig, **config))  # type: ignore[arg-type]


def admin(hub: Hub) -> TestClient:
    client = TestClient(create_app(hub))
    client.headers["Authorization"] = f"Bearer {hub.admin_token}"
    return client
