"""`fleet validate`: schema, Kubernetes, secret and reference checks on a fleet repo checkout.

Runs with no hub, no cluster and no keys, so CI and pre-commit can gate every change.
"""

from fleet.validate.findings import RULES, Finding, Rule
from fleet.validate.kubeschema import DEFAULT_KUBERNETES_VERSION, UnsupportedVersion
from fleet.validate.run import ValidationReport, validate_repo

__all__ = [
    "DEFAULT_KUBERNETES_VERSION",
    "RULES",
    "Finding",
    "Rule",
    "UnsupportedVersion",
    "ValidationReport",
    "validate_repo",
]
