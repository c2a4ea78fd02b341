"""Fetching over file://: revision metadata, new commits, fast-forward tests and non-fast-forward holds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import git
import pytest

import fleet.source.git as source_git
from fleet.source import GitSource, SourceError, decide_move
from tests.fixtures.gitrepo import FleetRepo
from tests.source.conftest import SourceFactory


def test_first_fetch_clones_and_reports_the_head_revision(
    origin: FleetRepo, make_source: SourceFactory
) -> None:
    with origin.repo.git.custom_environment(
        GIT_AUTHOR_NAME="Ada Author",
        GIT_AUTHOR_EMAIL="ada@fleet.test",
        GIT_AUTHOR_DATE="2024-03-01T10:00:00+02:00",
        GIT_COMMITTER_NAME="Carl Committer",
        GIT_COMMITTER_EMAIL="carl@fleet.test",
        GIT_COMMITTER_DATE="2024-03-02T12:30:00-05:00",
    ):
        sha = origin.commit({"apps/web/fleet.yaml": "namespace: web\n"}, message="add web\n\nbody line\n")

    source = make_source(origin.url)
    revision = source.fetch()

    assert revision.sha == sha
    assert (revision.author_name, revision.author_email) == ("Ada Author", "ada@fleet.test")
    assert (revision.committer_name, revision.committer_email) == ("Carl Committer", "carl@fleet.test")
    assert revision.authored_at == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    assert revision.committed_at == datetime(2024, 3, 2, 17, 30, tzinfo=UTC)
    assert revision.authored_at.tzinfo is UTC and revision.committed_at.tzinfo is UTC
    assert revision.message == "add web\n\nbody line\n"
    assert revision.subject == "add web"
    assert source.head() == sha
    assert git.Repo(source.repo_path).bare


def test_plain_path_url_works_like_file_url(origin: FleetRepo, make_source: SourceFactory) -> None:
    assert make_source(str(origin.remote_path)).fetch().sha == origin.head()


def test_long_message_is_truncated_at_4_kib(origin: FleetRepo, make_source: SourceFactory) -> None:
    origin.commit(message="é" * 5000)
    message = make_source(origin.url).fetch().message
    assert len(message.encode()) <= 4096
    assert message.startswith("é" * 2000)


def test_control_characters_are_dropped_from_metadata(origin: FleetRepo, make_source: SourceFactory) -> None:
    with origin.repo.git.custom_environment(GIT_AUTHOR_NAME="Eve\x1b[31m Red"):
        origin.commit(message="evil \x1b]0;title\x07 subject\n")
    revision = make_source(origin.url).fetch()
    assert revision.author_name == "Eve[31m Red"
    assert "\x1b" not in revision.message and "\x07" not in revision.message


def test_fetch_sees_new_commits_and_fast_forwards(origin: FleetRepo, make_source: SourceFactory) -> None:
    source = make_source(origin.url)
    first = source.fetch().sha
    second = origin.commit({"clusters/b.yaml": "name: b\n", "clusters/a.yaml": "name: a\nlabels: {}\n"})

    assert source.fetch().sha == second
    assert source.is_ancestor(first, second)
    assert not source.is_ancestor(second, first)
    assert source.changed_paths(first, second) == ["clusters/a.yaml", "clusters/b.yaml"]
    decision = decide_move(
        first, second, is_fast_forward=True, accepted=frozenset(), signing_mode="off", signature=None
    )
    assert (decision.action, decision.sha, decision.event) == ("advance", second, None)


def test_unchanged_remote_fetches_the_same_revision(origin: FleetRepo, make_source: SourceFactory) -> None:
    source = make_source(origin.url)
    first = source.fetch().sha
    assert source.fetch().sha == first
    decision = decide_move(
        first, first, is_fast_forward=True, accepted=frozenset(), signing_mode="off", signature=None
    )
    assert decision.action == "stay"


def test_force_push_of_older_commit_is_not_a_fast_forward_and_is_held(
    origin: FleetRepo, make_source: SourceFactory
) -> None:
    old = origin.head()
    source = make_source(origin.url)
    source.fetch()
    current = origin.commit({"clusters/b.yaml": "name: b\n"}, message="add b")
    assert source.fetch().sha == current

    origin.reset_hard(old)
    origin.push(force=True)
    fetched = source.fetch()

    assert fetched.sha == old
    assert not source.is_ancestor(current, fetched.sha)
    # The head the force-push moved away from stays readable in the cache.
    assert source.revision(current).message == "add b\n"
    assert source.changed_paths(current, old) == ["clusters/b.yaml"]

    held = decide_move(
        current, old, is_fast_forward=False, accepted=frozenset(), signing_mode="off", signature=None
    )
    assert held.action == "hold"
    assert held.sha == old
    assert held.event is not None and f"fleet source accept {old}" in held.event

    accepted = decide_move(
        current, old, is_fast_forward=False, accepted=frozenset({old}), signing_mode="off", signature=None
    )
    assert accepted.action == "advance"
    assert accepted.event is not None and "accepted" in accepted.event


def test_rewritten_history_is_not_a_fast_forward(origin: FleetRepo, make_source: SourceFactory) -> None:
    source = make_source(origin.url)
    base = source.fetch().sha
    current = origin.commit({"x.yaml": "1\n"}, message="one")
    source.fetch()
    origin.reset_hard(base)
    rewritten = origin.commit({"x.yaml": "2\n"}, message="one, rewritten", push=False)
    origin.push(force=True)

    assert source.fetch().sha == rewritten
    assert source.is_ancestor(base, rewritten)
    assert not source.is_ancestor(current, rewritten)


def test_unknown_ancestor_is_not_an_ancestor_but_unknown_descendant_is_an_error(
    origin: FleetRepo, make_source: SourceFactory
) -> None:
    source = make_source(origin.url)
    head = source.fetch().sha
    assert not source.is_ancestor("0" * 40, head)
    with pytest.raises(SourceError, match="unknown revision"):
        source.is_ancestor(head, "0" * 40)
    with pytest.raises(SourceError, match="not a commit id"):
        source.revision("--output=/tmp/x")
    with pytest.raises(SourceError, match="not a commit id"):
        source.is_ancestor("HEAD~1", head)
    tree = git.Repo(source.repo_path).commit(head).tree.hexsha
    with pytest.raises(SourceError, match="is not a commit"):
        source.revision(tree)


def test_missing_branch_fails_with_a_clear_error(origin: FleetRepo, make_source: SourceFactory) -> None:
    source = make_source(origin.url, branch="release")
    with pytest.raises(SourceError, match="release"):
        source.fetch()
    assert source.head() is None


def test_unreachable_repo_fails_and_keeps_last_good_head(
    origin: FleetRepo, make_source: SourceFactory, tmp_path: Path
) -> None:
    source = make_source(origin.url)
    head = source.fetch().sha
    origin.remote_path.rename(tmp_path / "gone.git")
    with pytest.raises(SourceError, match="failed"):
        source.fetch()
    assert source.head() == head
    assert source.revision(head).sha == head


def test_cache_is_reused_by_a_new_source_object(origin: FleetRepo, make_source: SourceFactory) -> None:
    first = make_source(origin.url).fetch().sha
    again = make_source(origin.url)
    assert again.head() == first
    assert again.fetch().sha == first


def test_cache_directory_that_is_not_a_repository_is_refused(origin: FleetRepo, tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file").write_text("x")
    with pytest.raises(SourceError, match="not a git repository"):
        GitSource(origin.url, "main", tmp_path / "junk").fetch()


def test_invalid_branch_name_is_refused(origin: FleetRepo, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="invalid branch"):
        GitSource(origin.url, "main..x", tmp_path / "c")


def test_packs_are_compacted_without_losing_abandoned_heads(
    origin: FleetRepo, make_source: SourceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source_git, "MAX_PACKS", 2)
    source = make_source(origin.url)
    base = source.fetch().sha
    abandoned = origin.commit({"y.yaml": "abandoned\n"})
    source.fetch()
    origin.reset_hard(base)
    origin.push(force=True)
    for n in range(3):
        origin.commit({"z.yaml": f"{n}\n"})
        source.fetch()

    packs = list((source.repo_path / "objects" / "pack").glob("pack-*.pack"))
    assert len(packs) <= 2
    assert source.revision(abandoned).sha == abandoned
    assert source.changed_paths(abandoned, origin.head()) == ["y.yaml", "z.yaml"]
