"""Revisions of a local fleet repo, rendered for `fleet plan`: any `git rev-parse` name, or the work tree.

Each commit is exported with `git archive` into a temporary directory (the
same safe extraction the hub uses), so the user's checkout, index and
branches are never touched.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git

from fleet.diff.present import RevisionLabel
from fleet.errors import FleetError, SpecError, SpecProblem
from fleet.inventory.loader import load_inventory
from fleet.plan.placement import plan_fleet
from fleet.protocol import ANNOTATION_SECRET_SOURCE
from fleet.render.bundle import Bundle, Renderer
from fleet.render.secretrefs import SOPS_SOURCE_PREFIX
from fleet.secrets.errors import SopsError
from fleet.secrets.sops import load_document
from fleet.source.errors import SourceError
from fleet.source.tree import escaping_symlinks, extract_tar

WORKTREE = "WORKTREE"
DEFAULT_UPSTREAMS = ("origin/main", "origin/master")


class RevisionError(FleetError):
    """A revision cannot be resolved, exported or rendered; `problems` says where, if it is the content."""

    def __init__(self, label: str, revision: RevisionLabel, message: str, problems: tuple[SpecProblem, ...] = ()):
        self.label = label
        self.revision = revision
        self.problems = problems
        super().__init__(message)


@dataclass(frozen=True)
class RenderedRevision:
    label: RevisionLabel
    bundles: Mapping[str, Bundle]  # as the hub would store them
    warnings: tuple[SpecProblem, ...]
    # for review: SOPS placeholders also carry a fingerprint of each encrypted value, so a
    # changed (or re-encrypted) value shows up in the plan, as `<redacted>` like any Secret value
    review: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)


def _fingerprints(root: Path, file: str, cache: dict[str, dict[str, str]]) -> dict[str, str]:
    """key -> short hash of its ciphertext, for one SOPS file (no key needed, nothing decrypted)."""
    if file not in cache:
        found: dict[str, str] = {}
        try:
            document = load_document((root / file).read_text(encoding="utf-8"), file)
        except (OSError, UnicodeDecodeError, SopsError):
            document = {}
        for section in ("data", "stringData"):
            entries = document.get(section)
            if isinstance(entries, dict):
                for key, value in entries.items():
                    digest = hashlib.sha256(str(value).encode()).hexdigest()[:16]
                    found[str(key)] = f"ciphertext:{digest}"
        cache[file] = found
    return cache[file]


def review_objects(root: Path, bundles: Mapping[str, Bundle]) -> dict[str, list[dict[str, Any]]]:
    """The bundles' objects, with SOPS placeholders' `data` filled with ciphertext fingerprints."""
    cache: dict[str, dict[str, str]] = {}
    review: dict[str, list[dict[str, Any]]] = {}
    for cluster, bundle in bundles.items():
        objects = []
        for obj in bundle.objects:
            source = str(((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_SECRET_SOURCE, ""))
            if obj.get("kind") == "Secret" and source.startswith(SOPS_SOURCE_PREFIX):
                obj = {**obj, "data": _fingerprints(root, source[len(SOPS_SOURCE_PREFIX) :], cache)}
            objects.append(obj)
        review[cluster] = objects
    return review


@dataclass(frozen=True)
class LocalRepo:
    """A fleet repo at `root`, possibly a subdirectory (`prefix`) of the Git work tree."""

    repo: git.Repo
    root: Path
    prefix: str  # "" when the fleet repo is the top of the work tree

    @classmethod
    def open(cls, path: Path) -> LocalRepo:
        root = Path(path).resolve()
        try:
            repo = git.Repo(root, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise FleetError(f"{root} is not inside a Git repository: `fleet plan` compares two revisions") from None
        top = repo.working_tree_dir
        if top is None:
            raise FleetError(f"{root} is in a bare repository: `fleet plan` needs a work tree")
        prefix = os.path.relpath(root, Path(top).resolve()).replace(os.sep, "/")
        return cls(repo=repo, root=root, prefix="" if prefix == "." else prefix)

    def resolve(self, rev: str, label: str) -> str:
        try:
            return str(self.repo.git.rev_parse("--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"))
        except git.GitCommandError:
            raise RevisionError(label, RevisionLabel(rev), f"{label} {rev!r} is not a commit in {self.root}") from None

    def default_base(self, head: str, head_sha: str | None) -> tuple[str, str]:
        """What `head` is compared with when no base is given.

        The merge base with origin/main (or origin/master), as a pull request
        shows it, when that differs from head; otherwise head's parent, or HEAD
        itself for the uncommitted work tree. Returns (revision, how to name it).
        """
        for upstream in DEFAULT_UPSTREAMS:
            try:
                base = str(self.repo.git.merge_base(upstream, head_sha or "HEAD"))
            except git.GitCommandError:
                continue
            if base and (head_sha is None or base != head_sha):
                return base, f"merge base with {upstream}"
        fallback = "HEAD" if head_sha is None else f"{head}~1"
        return fallback, fallback

    def export(self, sha: str, dest: Path) -> Path:
        """Write the fleet repo's files as of `sha` under `dest`; returns the fleet repo root in it."""
        argv = [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", "archive", "--format=tar", sha]
        if self.prefix:
            argv += ["--", self.prefix]
        proc = subprocess.Popen(
            argv,
            cwd=self.repo.working_tree_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        what = f"revision {sha[:12]}"
        try:
            extract_tar(proc.stdout, dest, what)
            while proc.stdout.read(65536):  # drain the end-of-archive padding
                pass
        except SourceError:
            proc.kill()
            raise
        finally:
            proc.stdout.close()
            stderr = proc.stderr.read().decode(errors="replace").strip()
            proc.stderr.close()
            code = proc.wait()
        if code != 0:
            raise FleetError(f"git archive of {what} failed: {stderr}")
        escaping = escaping_symlinks(dest)
        if escaping:
            raise FleetError(f"refusing {what}: symlink {escaping[0]!r} leaves the tree")
        root = dest / self.prefix if self.prefix else dest
        root.mkdir(parents=True, exist_ok=True)  # the prefix may not exist at that revision
        return root


def render_checkout(root: Path, label: str, revision: RevisionLabel) -> RenderedRevision:
    """Bundles for every cluster, or RevisionError with every problem (file and line) if it does not render."""
    try:
        inventory = load_inventory(root)
    except SpecError as exc:
        raise RevisionError(label, revision, f"{label} {revision} does not render", tuple(exc.problems)) from None
    result = Renderer(inventory).render(plan_fleet(inventory))
    if result.problems:
        raise RevisionError(label, revision, f"{label} {revision} does not render", tuple(result.problems))
    return RenderedRevision(
        label=revision,
        bundles=result.bundles,
        warnings=tuple(result.warnings),
        review=review_objects(root, result.bundles),
    )


def load_revision(
    repo: LocalRepo, rev: str, label: str, scratch: Path, display: str | None = None
) -> RenderedRevision:
    """Render `rev` (or the work tree for WORKTREE); `scratch` is an empty directory to export into.

    `display` names the revision in output when `rev` itself is not what the user typed.
    """
    if rev == WORKTREE:
        return render_checkout(repo.root, label, RevisionLabel(WORKTREE))
    sha = repo.resolve(rev, label)
    revision = RevisionLabel(display or rev, sha)
    try:
        root = repo.export(sha, scratch)
    except (SourceError, FleetError) as exc:
        raise RevisionError(label, revision, str(exc)) from None
    return render_checkout(root, label, revision)
