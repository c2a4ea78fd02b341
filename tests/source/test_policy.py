"""decide_move: the rules for moving to a fetched revision, case by case."""

from __future__ import annotations

import pytest

from fleet.source import SignatureCheck, decide_move
from fleet.source.policy import SigningMode

OLD = "a" * 40
NEW = "b" * 40


def check(sha: str = NEW, *, signed: bool = True, valid: bool = True, trusted: bool = True) -> SignatureCheck:
    return SignatureCheck(sha, signed, valid, trusted, "F" * 40 if signed else None, None, "test")


def test_first_revision_advances() -> None:
    d = decide_move(
        None, NEW, is_fast_forward=False, accepted=frozenset(), signing_mode="off", signature=None
    )
    assert (d.action, d.sha, d.reason, d.event) == ("advance", NEW, "first revision", None)


def test_same_revision_stays_quietly() -> None:
    d = decide_move(
        NEW, NEW, is_fast_forward=True, accepted=frozenset(), signing_mode="enforce", signature=None
    )
    assert (d.action, d.event) == ("stay", None)


def test_fast_forward_advances() -> None:
    d = decide_move(OLD, NEW, is_fast_forward=True, accepted=frozenset(), signing_mode="off", signature=None)
    assert (d.action, d.sha, d.event) == ("advance", NEW, None)


def test_non_fast_forward_is_held_with_the_accept_command() -> None:
    d = decide_move(
        OLD, NEW, is_fast_forward=False, accepted=frozenset({"c" * 40}), signing_mode="off", signature=None
    )
    assert (d.action, d.sha) == ("hold", NEW)
    assert d.event == (
        f"non-fast-forward move from {OLD[:12]} to {NEW[:12]} held until `fleet source accept {NEW}`"
    )


def test_accepted_non_fast_forward_advances_and_is_recorded() -> None:
    d = decide_move(
        OLD, NEW, is_fast_forward=False, accepted=frozenset({NEW}), signing_mode="off", signature=None
    )
    assert d.action == "advance"
    assert d.event is not None and "accepted" in d.event


@pytest.mark.parametrize(
    "signature",
    [
        None,
        check(signed=False, valid=False, trusted=False),
        check(valid=False, trusted=False),
        check(trusted=False),
        check("c" * 40),  # a check of another commit proves nothing about this one
    ],
    ids=["unchecked", "unsigned", "invalid", "untrusted", "other-commit"],
)
def test_enforce_refuses_unverified_commits(signature: SignatureCheck | None) -> None:
    d = decide_move(
        OLD, NEW, is_fast_forward=True, accepted=frozenset(), signing_mode="enforce", signature=signature
    )
    assert (d.action, d.sha) == ("stay", NEW)
    assert d.event is not None and f"staying on {OLD[:12]}" in d.event


def test_enforce_refuses_an_unverified_first_revision() -> None:
    d = decide_move(
        None,
        NEW,
        is_fast_forward=True,
        accepted=frozenset(),
        signing_mode="enforce",
        signature=check(signed=False),
    )
    assert d.action == "stay"
    assert d.event is not None and "no revision is deployed yet" in d.event


def test_enforce_refuses_before_holding() -> None:
    # An unverified commit is not even offered for `fleet source accept`.
    d = decide_move(
        OLD,
        NEW,
        is_fast_forward=False,
        accepted=frozenset(),
        signing_mode="enforce",
        signature=check(trusted=False),
    )
    assert d.action == "stay"


def test_enforce_accepts_verified_commits() -> None:
    d = decide_move(
        OLD, NEW, is_fast_forward=True, accepted=frozenset(), signing_mode="enforce", signature=check()
    )
    assert (d.action, d.event) == ("advance", None)


def test_warn_advances_with_a_warning_event() -> None:
    d = decide_move(
        OLD,
        NEW,
        is_fast_forward=True,
        accepted=frozenset(),
        signing_mode="warn",
        signature=check(signed=False),
    )
    assert d.action == "advance"
    assert d.event is not None and "not signed" in d.event and "warn" in d.event


def test_warn_still_holds_non_fast_forward_moves() -> None:
    d = decide_move(
        OLD,
        NEW,
        is_fast_forward=False,
        accepted=frozenset(),
        signing_mode="warn",
        signature=check(signed=False),
    )
    assert d.action == "hold"


@pytest.mark.parametrize("mode", ["off", "warn"])
def test_verified_or_unchecked_commits_advance_quietly(mode: SigningMode) -> None:
    signature = check() if mode == "warn" else None
    d = decide_move(
        OLD, NEW, is_fast_forward=True, accepted=frozenset(), signing_mode=mode, signature=signature
    )
    assert (d.action, d.event) == ("advance", None)
