"""Secret errors. Messages name files, references and recipients, never values or key material."""

from __future__ import annotations

from fleet.errors import FleetError


class SecretError(FleetError):
    """A secret could not be resolved, sealed or opened."""


class SopsError(SecretError):
    """A SOPS file is malformed, tampered with, or no key here can decrypt it."""


class VaultUnavailable(SecretError):
    """Vault is sealed, unreachable, or refused our token: retry later, keep the last good state."""


class VaultRefError(SecretError):
    """A `vault:` reference is malformed, outside the cluster's allowed prefixes, or names nothing."""
