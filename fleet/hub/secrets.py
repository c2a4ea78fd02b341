"""The hub's side of secrets: one resolver per checkout, a Vault client per settings.

Values are resolved in memory for one call and dropped; the only thing kept
between calls is the Vault client (its token, not any value).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence

from fleet.inventory.loader import Inventory
from fleet.inventory.models import VaultSettings
from fleet.secrets.redact import Redactor
from fleet.secrets.resolver import SecretResolver, SecretSource
from fleet.secrets.sops import SopsKeys
from fleet.secrets.vault import VaultClient


class HubSecrets:
    def __init__(self, keys: SopsKeys, hub_key: bytes, env: Mapping[str, str] | None = None) -> None:
        self.keys = keys
        self.hub_key = hub_key
        self.env = dict(env if env is not None else os.environ)
        self._vault: dict[tuple[str, str], VaultClient] = {}
        self._lock = threading.Lock()
        # Belt and braces: values the hub handles are scrubbed from its logs should one ever slip in.
        self.redactor = Redactor()

    def vault(self, settings: VaultSettings) -> VaultClient | None:
        address = settings.address or self.env.get("VAULT_ADDR")
        if not address:
            return None
        key = (address, settings.auth.model_dump_json())
        with self._lock:
            client = self._vault.get(key)
            if client is None:
                client = VaultClient(address, settings.auth, env=self.env)
                self._vault[key] = client
            return client

    def vault_clients(self) -> list[VaultClient]:
        with self._lock:
            return list(self._vault.values())

    def resolver(self, inventory: Inventory, needs_vault: bool = True) -> SecretResolver:
        settings = inventory.settings
        vault = self.vault(settings.secrets.vault) if needs_vault else None
        return SecretResolver(
            inventory.root,
            self.keys,
            vault,
            self.hub_key,
            settings.secrets.vault.allowedPrefixes,
            clusters=inventory.clusters,  # the resolver re-checks every file's scope itself
            scopes=settings.secrets.scopes,
            redactor=self.redactor,
        )

    def maintain(self) -> None:
        """Scheduled: renew Vault tokens (or log in again) before their TTL runs out."""
        for client in self.vault_clients():
            client.maintain()


def needs_vault(sources: Sequence[SecretSource]) -> bool:
    return any(source.kind == "vault" for source in sources)
