"""Fetching the fleet repo: revisions, safe checkouts, signed-commit checks and move decisions."""

from fleet.source.errors import FetchTimeout, FetchTooLarge, SourceError
from fleet.source.git import GitSource, Revision
from fleet.source.policy import SourceDecision, decide_move
from fleet.source.signing import SignatureCheck, verify_commit
from fleet.source.tree import escaping_symlinks

__all__ = [
    "FetchTimeout",
    "FetchTooLarge",
    "GitSource",
    "Revision",
    "SignatureCheck",
    "SourceDecision",
    "SourceError",
    "decide_move",
    "escaping_symlinks",
    "verify_commit",
]
