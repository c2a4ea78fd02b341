"""Errors raised while fetching or materialising the fleet repo.

Messages are shown to operators and recorded as events, so they never carry
credentials: URLs are redacted before they are put in a message.
"""

from __future__ import annotations

from fleet.errors import FleetError


class SourceError(FleetError):
    """The fleet repo could not be fetched or read; the hub keeps its last good revision."""


class FetchTimeout(SourceError):
    """A fetch ran past its timeout and was killed."""


class FetchTooLarge(SourceError):
    """A fetch (or a tree to check out) went past the configured size limit."""
