"""A fleet repo using Vault (and SOPS), a hub on it, and simulated agents speaking the real protocol.

An agent here is what `fleet agent` is to the hub: a bootstrapped credential,
an age identity whose public key the hub seals to, GETs of the desired state
and POSTed status reports. It opens the sealed values with its own identity.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from fleet.protocol import SealedSecrets, object_key
from fleet.secrets.envelope import generate_identity, open_sealed
from fleet.store.models import utcnow


def deployment(name: str, secret: str, key: str, env_name: str = "SECRET") -> str:
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n"
        f"  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n"
        f"    spec:\n      containers:\n        - name: {name}\n          image: example/{name}:1\n"
        f"          env:\n            - name: {env_name}\n"
        f"              valueFrom: {{secretKeyRef: {{name: {secret}, key: {key}}}}}\n"
    )


def payments_app(vault_path: str) -> dict[str, str]:
    """An app for env=prod clusters whose Deployment reads a Secret with a Vault reference."""
    return {
        "apps/payments/fleet.yaml": "namespace: payments\ntargets:\n  - clusterSelector: {matchLabels: {env: prod}}\n",
        "apps/payments/deployment.yaml": deployment("payments", "payments-db", "password", "DB_PASSWORD"),
        "apps/payments/secret.yaml": (
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: payments-db\n"
            f"stringData:\n  password: vault:kv/{vault_path}#password\n"
        ),
    }


def web_app(secret: str | None = None) -> dict[str, str]:
    """An app for every cluster; with `secret`, its Deployment reads that Secret (e.g. from secrets/common)."""
    manifest = (
        deployment("web", secret, "token", "REGISTRY_TOKEN")
        if secret
        else "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  cluster: ${cluster.name}\n"
    )
    return {
        "apps/web/fleet.yaml": "namespace: web\ntargets:\n  - clusterSelector: {}\n",
        "apps/web/main.yaml": manifest,
    }


@dataclass
class Clock:
    """The controller's notion of now, moved by the test (stall detection without sleeping)."""

    at: datetime = field(default_factory=utcnow)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@dataclass
class SimAgent:
    cluster: str
    http: httpx.Client
    credential: str
    identity: str
    recipient: str

    @classmethod
    def bootstrap(cls, admin: httpx.Client, http: httpx.Client, cluster: str) -> SimAgent:
        token = admin.post(f"/v1/admin/clusters/{cluster}/tokens", json={})
        assert token.status_code == 200, token.text
        identity, recipient = generate_identity()
        response = http.post(
            f"/v1/agents/{cluster}/bootstrap", json={"token": token.json()["token"], "publicKey": recipient}
        )
        assert response.status_code == 200, response.text
        return cls(cluster, http, response.json()["credential"], identity, recipient)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}

    def fetch(self, etag: str | None = None) -> Any:
        headers = dict(self.auth)
        if etag is not None:
            headers["If-None-Match"] = etag
        return self.http.get(f"/v1/agents/{self.cluster}/desired", headers=headers)

    def desired(self) -> dict[str, Any]:
        response = self.fetch()
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        return state

    def values(self, state: dict[str, Any]) -> dict[str, dict[str, bytes]]:
        """The sealed values, opened with this agent's own identity."""
        assert state["secrets"] is not None, "no sealed secrets in the desired state"
        opened = open_sealed(SealedSecrets.model_validate(state["secrets"]), self.identity)
        return {key: {k: base64.b64decode(v) for k, v in data.items()} for key, data in opened.items()}

    def report(
        self,
        state: dict[str, Any],
        health: dict[str, str] | None = None,
        versions: dict[str, str] | None = None,
    ) -> Any:
        """Report `state` applied: every object Healthy unless `health` says otherwise."""
        objects = [
            {"key": object_key(o), "health": (health or {}).get(object_key(o), "Healthy")} for o in state["objects"]
        ]
        body = {
            "appliedDigest": state["digest"],
            "appliedRevision": state["revision"],
            "phase": "Applied",
            "objects": objects,
            "secretVersions": state["secretVersions"] if versions is None else versions,
            "clusterHealth": {"status": "Healthy", "apiReachable": True, "nodesReady": 1, "nodesTotal": 1},
        }
        response = self.http.post(f"/v1/agents/{self.cluster}/status", headers=self.auth, json=body)
        assert response.status_code == 204, response.text
        return response


def checksum(state: dict[str, Any], name: str) -> str | None:
    """The `fleet.dev/secrets-checksum` annotation on a Deployment's pod template."""
    for obj in state["objects"]:
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == name:
            annotations = obj["spec"]["template"]["metadata"].get("annotations") or {}
            value = annotations.get("fleet.dev/secrets-checksum")
            return str(value) if value is not None else None
    raise AssertionError(f"no Deployment {name} in the desired state")
