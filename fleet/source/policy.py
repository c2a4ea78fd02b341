"""Whether the hub moves to a newly fetched revision. Pure functions, no I/O.

Order of the rules, first match wins:
1. the same revision: stay, nothing to do;
2. signing `enforce` and the new commit is not signed, valid and trusted: stay
   on the current (last verified) revision and record why;
3. a non-fast-forward move (force-push, reset) not yet accepted: hold until an
   operator runs `fleet source accept <sha>`;
4. signing `warn` and the commit is not verified: advance, with a warning event;
5. otherwise advance (an accepted non-fast-forward move is recorded as such).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fleet.source.signing import SignatureCheck

SigningMode = Literal["off", "warn", "enforce"]
Action = Literal["advance", "hold", "stay"]


@dataclass(frozen=True)
class SourceDecision:
    action: Action  # advance: use `sha`; hold: wait for `fleet source accept <sha>`; stay: keep the current revision
    sha: str  # the candidate revision this decision is about (the fetched head)
    reason: str
    event: str | None  # message to record for operators, when there is something to tell


def short(sha: str | None) -> str:
    return sha[:12] if sha else "(none)"


def accept_command(sha: str) -> str:
    return f"fleet source accept {sha}"


def signature_problem(new: str, signature: SignatureCheck | None) -> str | None:
    """Why `new` does not count as verified, or None when it does."""
    if signature is None:
        return "its signature was not checked"
    if signature.sha != new:
        return f"the signature check is for another commit ({short(signature.sha)})"
    if not signature.signed:
        return "it is not signed"
    if not signature.valid:
        return f"its signature is not valid: {signature.reason}"
    if not signature.trusted:
        return f"it is not signed by a trusted key: {signature.reason}"
    return None


def decide_move(
    current: str | None,
    new: str,
    *,
    is_fast_forward: bool,
    accepted: frozenset[str],
    signing_mode: SigningMode,
    signature: SignatureCheck | None,
) -> SourceDecision:
    if current == new:
        return SourceDecision("stay", new, f"already at {short(new)}", None)

    problem = signature_problem(new, signature) if signing_mode != "off" else None
    if problem is not None and signing_mode == "enforce":
        staying = f"staying on {short(current)}" if current else "no revision is deployed yet"
        return SourceDecision(
            "stay",
            new,
            f"signature required: {problem}",
            f"commit {short(new)} refused because {problem}; {staying} (signing mode enforce)",
        )

    first = current is None
    if not first and not is_fast_forward and new not in accepted:
        return SourceDecision(
            "hold",
            new,
            "non-fast-forward move not accepted",
            f"non-fast-forward move from {short(current)} to {short(new)} held until `{accept_command(new)}`",
        )

    events: list[str] = []
    if not first and not is_fast_forward:
        events.append(f"non-fast-forward move from {short(current)} to {short(new)} accepted by an operator")
    if problem is not None:
        events.append(f"commit {short(new)} deployed although {problem} (signing mode warn)")
    if first:
        reason = "first revision"
    elif is_fast_forward:
        reason = "fast-forward"
    else:
        reason = "accepted non-fast-forward move"
    return SourceDecision("advance", new, reason, "; ".join(events) or None)
