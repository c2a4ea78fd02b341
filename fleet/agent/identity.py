"""The agent's identity: its age key pair, its per-cluster hub credential, the
highest fencing epoch it has seen, and which bootstrap token it last used.

Stored either in a local state dir (a 0600 file) or in-cluster in a Secret the
agent owns (`fleet-system/fleet-agent-<cluster>`). Only the public key (the
age recipient) ever leaves the agent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fleet.agent.kube import Kube
from fleet.secrets.envelope import generate_identity

STATE_NAMESPACE = "fleet-system"
_STATE_FIELD_MANAGER = "fleet-agent-state"


def identity_secret_name(cluster: str) -> str:
    return f"fleet-agent-{cluster}"


@dataclass
class AgentState:
    identity: str = field(repr=False)  # age secret key: never logged, never sent
    recipient: str
    credential: str | None = field(default=None, repr=False)
    max_epoch: int = 0
    token_mtime_ns: int = 0
    token_sha256: str = ""

    @classmethod
    def new(cls) -> AgentState:
        identity, recipient = generate_identity()
        return cls(identity=identity, recipient=recipient)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AgentState:
        raw = json.loads(text)
        known = {name: raw[name] for name in cls.__dataclass_fields__ if name in raw}
        return cls(**known)


@dataclass(frozen=True)
class BootstrapToken:
    value: str = field(repr=False)
    mtime_ns: int
    sha256: str


def read_token_file(path: Path | None) -> BootstrapToken | None:
    if path is None or not path.is_file():
        return None
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        return None
    return BootstrapToken(value, path.stat().st_mtime_ns, hashlib.sha256(value.encode()).hexdigest())


def token_is_unused(state: AgentState, token: BootstrapToken) -> bool:
    """A token file is worth a bootstrap when it is newer than, and differs from, the one last used."""
    return token.mtime_ns > state.token_mtime_ns and token.sha256 != state.token_sha256


class StateStore(Protocol):
    def load(self) -> AgentState | None: ...

    def save(self, state: AgentState) -> None: ...


def write_private_file(path: Path, text: str) -> None:
    """Atomically write a file only its owner can read."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class FileStateStore:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "identity.json"

    def load(self) -> AgentState | None:
        if not self.path.exists():
            return None
        return AgentState.from_json(self.path.read_text(encoding="utf-8"))

    def save(self, state: AgentState) -> None:
        write_private_file(self.path, state.to_json())


class SecretStateStore:
    """The state in a Secret in the agent's own namespace; survives pod restarts on any node."""

    def __init__(self, kube: Kube, cluster: str, namespace: str = STATE_NAMESPACE) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = identity_secret_name(cluster)

    def load(self) -> AgentState | None:
        secret = self.kube.get("v1", "Secret", self.namespace, self.name)
        if secret is None:
            return None
        encoded = (secret.get("data") or {}).get("state.json")
        if not encoded:
            return None
        return AgentState.from_json(base64.b64decode(encoded).decode())

    def save(self, state: AgentState) -> None:
        ensure_namespace(self.kube, self.namespace)
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/name": "fleet-agent", "app.kubernetes.io/component": "identity"},
            },
            "type": "Opaque",
            "data": {"state.json": base64.b64encode(state.to_json().encode()).decode()},
        }
        self.kube.apply(body, field_manager=_STATE_FIELD_MANAGER)


def ensure_namespace(kube: Kube, namespace: str) -> None:
    if kube.get("v1", "Namespace", None, namespace) is None:
        kube.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            field_manager=_STATE_FIELD_MANAGER,
        )
