"""Materialising a revision: the tree lands whole, and nothing in it can point or write outside it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import fleet.source.git as source_git
from fleet.source import SourceError, escaping_symlinks
from fleet.source.tree import symlink_escapes, unsafe_path_reason
from tests.fixtures.gitrepo import FleetRepo
from tests.source.conftest import SourceFactory


def _git(repo: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], input=stdin, capture_output=True, text=True, check=True
    ).stdout.strip()


def _commit_symlinks(repo: FleetRepo, links: dict[str, str], message: str = "links") -> str:
    for rel, target in links.items():
        path = repo.work_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
    return repo.commit(message=message)


def _crafted_commit(git_dir: Path, entry_name: str, parent: str | None) -> str:
    """A commit whose tree holds a directory named `entry_name` (e.g. '..'), built with plumbing."""
    blob = _git(git_dir, "hash-object", "-w", "--stdin", stdin="pwned\n")
    inner = _git(git_dir, "mktree", stdin=f"100644 blob {blob}\tpwned\n")
    outer = _git(git_dir, "mktree", stdin=f"040000 tree {inner}\t{entry_name}\n")
    args = ["commit-tree", outer, "-m", "crafted"] + (["-p", parent] if parent else [])
    return _git(git_dir, *args)


def test_checkout_writes_the_tree_of_a_revision(
    origin: FleetRepo, make_source: SourceFactory, tmp_path: Path
) -> None:
    origin.commit({"apps/web/fleet.yaml": "namespace: web\n", "apps/web/deploy.yaml": "kind: Deployment\n"})
    source = make_source(origin.url)
    head = source.fetch().sha
    dest = source.checkout(head, tmp_path / "out" / "tree")

    assert dest == tmp_path / "out" / "tree"
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == ["apps/web/deploy.yaml", "apps/web/fleet.yaml", "clusters/a.yaml"]
    assert (dest / "apps/web/fleet.yaml").read_text() == "namespace: web\n"
    assert [p.name for p in dest.parent.iterdir()] == ["tree"], "staging directory left behind"


def test_checkout_of_an_older_revision(origin: FleetRepo, make_source: SourceFactory, tmp_path: Path) -> None:
    source = make_source(origin.url)
    first = source.fetch().sha
    origin.commit({"clusters/a.yaml": None, "clusters/b.yaml": "name: b\n"})
    source.fetch()
    dest = source.checkout(first, tmp_path / "old")
    assert sorted(p.name for p in (dest / "clusters").iterdir()) == ["a.yaml"]


def test_checkout_needs_an_absent_or_empty_destination(
    origin: FleetRepo, make_source: SourceFactory, tmp_path: Path
) -> None:
    source = make_source(origin.url)
    head = source.fetch().sha
    (tmp_path / "empty").mkdir()
    assert (source.checkout(head, tmp_path / "empty") / "clusters/a.yaml").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(SourceError, match="not an empty directory"):
        source.checkout(head, tmp_path / "busy")
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("links", "refused"),
    [
        ({"clusters/x.yaml": "/etc/passwd"}, "clusters/x.yaml"),
        ({"apps/a": "../../"}, "apps/a"),
        ({"apps/b/values.yaml": "../../../secrets.yaml"}, "apps/b/values.yaml"),
    ],
    ids=["absolute", "parent-dir", "deep-parent"],
)
def test_symlink_leaving_the_repo_is_refused(
    origin: FleetRepo, make_source: SourceFactory, tmp_path: Path, links: dict[str, str], refused: str
) -> None:
    _commit_symlinks(origin, links)
    source = make_source(origin.url)
    head = source.fetch().sha
    with pytest.raises(SourceError, match=refused):
        source.checkout(head, tmp_path / "tree")
    assert not (tmp_path / "tree").exists()
    assert list(tmp_path.glob(".tree.partial-*")) == []


def test_symlink_chain_that_escapes_is_refused_after_extraction(
    origin: FleetRepo, make_source: SourceFactory, tmp_path: Path
) -> None:
    # Each link looks harmless on its own: `a -> z/up/..` reads as `z`, and `z/up -> ..`
    # is the root. Together `a` is the parent of the root. `a` is written before `z/up`
    # exists, so only the check on the finished tree can see it.
    _commit_symlinks(origin, {"a": "z/up/..", "z/up": ".."})
    source = make_source(origin.url)
    head = source.fetch().sha
    with pytest.raises(SourceError, match="'a'"):
        source.checkout(head, tmp_path / "tree")
    assert not (tmp_path / "tree").exists()


def test_symlinks_inside_the_repo_are_kept(
    origin: FleetRepo, make_source: SourceFactory, tmp_path: Path
) -> None:
    origin.commit({"apps/base/deploy.yaml": "kind: Deployment\n"})
    _commit_symlinks(origin, {"apps/web/deploy.yaml": "../base/deploy.yaml", "apps/alias": "base"})
    source = make_source(origin.url)
    dest = source.checkout(source.fetch().sha, tmp_path / "tree")
    assert (dest / "apps/web/deploy.yaml").is_symlink()
    assert (dest / "apps/web/deploy.yaml").read_text() == "kind: Deployment\n"
    assert (dest / "apps/alias/deploy.yaml").read_text() == "kind: Deployment\n"
    assert escaping_symlinks(dest) == []


def test_fetch_refuses_a_tree_with_dotdot_entries(origin: FleetRepo, make_source: SourceFactory) -> None:
    source = make_source(origin.url)
    good = source.fetch().sha
    crafted = _crafted_commit(origin.work_path, "..", parent=good)
    _git(origin.work_path, "push", "--force", "origin", f"{crafted}:refs/heads/main")

    with pytest.raises(SourceError, match="hasDotdot"):
        source.fetch()
    assert source.head() == good


@pytest.mark.parametrize("entry", ["..", ".git", ".GIT"])
def test_checkout_refuses_dangerous_paths_even_if_they_reach_the_cache(
    origin: FleetRepo, make_source: SourceFactory, tmp_path: Path, entry: str
) -> None:
    source = make_source(origin.url)
    good = source.fetch().sha
    crafted = _crafted_commit(source.repo_path, entry, parent=good)
    with pytest.raises(SourceError, match=f"'{entry}/pwned'"):
        source.checkout(crafted, tmp_path / "tree")
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "tree").exists()


def test_submodules_are_ignored(origin: FleetRepo, make_source: SourceFactory, tmp_path: Path) -> None:
    _git(origin.work_path, "update-index", "--add", "--cacheinfo", f"160000,{origin.head()},vendor/lib")
    _git(origin.work_path, "commit", "-m", "add submodule")
    origin.push()
    source = make_source(origin.url)
    dest = source.checkout(source.fetch().sha, tmp_path / "tree")
    lib = dest / "vendor" / "lib"
    assert not lib.exists() or (lib.is_dir() and not any(lib.iterdir()))
    assert (dest / "clusters/a.yaml").exists()


def test_export_attributes_in_the_tree_do_not_change_the_checkout(
    origin: FleetRepo, make_source: SourceFactory, tmp_path: Path
) -> None:
    origin.commit(
        {
            ".gitattributes": "clusters/* export-ignore\nversion.txt export-subst\n",
            "version.txt": "$Format:%H$\n",
        }
    )
    source = make_source(origin.url)
    dest = source.checkout(source.fetch().sha, tmp_path / "tree")
    assert (dest / "clusters/a.yaml").read_text() == "name: a\n"
    assert (dest / "version.txt").read_text() == "$Format:%H$\n"


def test_checkout_refuses_a_tree_with_too_many_files(
    origin: FleetRepo, make_source: SourceFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source_git, "MAX_TREE_ENTRIES", 3)
    origin.commit({f"apps/many/{n}.yaml": "" for n in range(3)})
    source = make_source(origin.url)
    with pytest.raises(SourceError, match="more than 3 files"):
        source.checkout(source.fetch().sha, tmp_path / "tree")
    assert not (tmp_path / "tree").exists()


def test_empty_tree_checks_out_as_an_empty_directory(
    fleet_repo: FleetRepo, make_source: SourceFactory, tmp_path: Path
) -> None:
    fleet_repo.commit(message="empty")
    source = make_source(fleet_repo.url)
    dest = source.checkout(source.fetch().sha, tmp_path / "tree")
    assert dest.is_dir() and list(dest.iterdir()) == []


# ---------------------------------------------------------------- pure helpers


def test_escaping_symlinks_on_disk(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "apps" / "a").mkdir(parents=True)
    (root / "apps" / "a" / "f.yaml").write_text("x")
    os.symlink("/etc/passwd", root / "abs")
    os.symlink("../..", root / "apps" / "up")
    os.symlink("a/f.yaml", root / "apps" / "ok")
    os.symlink("missing-but-inside", root / "apps" / "dangling")
    os.symlink("../..", root / "apps" / "a" / "root")  # the root itself: inside
    os.symlink("apps/a/root/..", root / "chain")
    assert escaping_symlinks(root) == ["abs", "apps/up", "chain"]


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ("clusters/a.yaml", False),
        ("a/.gitignore", False),
        ("../x", True),
        ("a/../../x", True),
        ("/etc/passwd", True),
        ("a//b", True),
        ("a/./b", True),
        ("a/.git/config", True),
        ("a\\..\\b", True),
        ("", True),
    ],
)
def test_unsafe_path_reason(path: str, bad: bool) -> None:
    assert (unsafe_path_reason(path) is not None) is bad


@pytest.mark.parametrize(
    ("link", "target", "escapes"),
    [
        ("a/b", "../c", False),
        ("a/b", "../../c", True),
        ("a", "/etc", True),
        ("a", "", True),
        ("a/b/c", "../../x/../y", False),
        ("a", ".", False),
    ],
)
def test_symlink_escapes(link: str, target: str, escapes: bool) -> None:
    assert symlink_escapes(link, target) is escapes
