"""Secrets: SOPS files and Vault references, resolved per target and sealed to one agent.

Values live only in local variables for the duration of one call; what is
kept anywhere (store, logs, errors, bundles) is versions, fingerprints and
keyed digests.
"""
