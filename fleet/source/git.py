"""Fetch the tracked branch of the fleet repo into a local bare cache, and read revisions from it.

The remote is treated as hostile or broken: every fetch runs under a deadline
and a size budget, with no prompts, no hooks, no submodules and strict object
checks, and a failed fetch leaves the cache as it was. Decisions about what a
new revision means (fast-forward holds, signatures) live in `policy`.

Layout of the cache (a bare repository, `cache_dir`):
- `refs/remotes/origin/<branch>`: the remote head as of the last good fetch,
  with a reflog, so heads a force-push moved away from stay readable;
- `refs/fleet/incoming`: a fetch in progress; promoted only once it passed the size check.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import git
from gitdb.exc import BadName, BadObject

from fleet.source.errors import FetchTimeout, FetchTooLarge, SourceError
from fleet.source.process import run_supervised
from fleet.source.transport import Remote, authorization_header, fetch_environment, parse_remote, redact
from fleet.source.tree import (
    escaping_symlinks,
    extract_tar,
    parse_ls_tree,
    remove_tree,
    symlink_escapes,
    unsafe_path_reason,
)

__all__ = [
    "FetchTimeout",
    "FetchTooLarge",
    "GitSource",
    "Revision",
    "SourceError",
    "escaping_symlinks",
]

MESSAGE_LIMIT = 4 * 1024
INCOMING_REF = "refs/fleet/incoming"
# Packs pile up, one per fetch that brought something; fold them together past this many.
MAX_PACKS = 32
# A tree of millions of empty files costs nothing to send and exhausts inodes when written.
MAX_TREE_ENTRIES = 100_000
LOCK_FILE = "fleet-source.lock"

_REV = re.compile(r"^[0-9a-fA-F]{4,64}$")
# Control characters other than tab and newline: kept out of names and messages
# that end up in logs and terminals.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Revision:
    """A commit of the fleet repo, as shown to operators."""

    sha: str
    author_name: str
    author_email: str
    committer_name: str
    committer_email: str
    authored_at: datetime  # tz-aware UTC
    committed_at: datetime  # tz-aware UTC
    message: str  # full message, truncated at 4 KiB

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]


def _clean(text: str) -> str:
    return _CONTROL.sub("", text)


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8", errors="replace")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def _store_bytes(objects_dir: Path) -> int:
    total = 0
    stack = [objects_dir]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except FileNotFoundError:
                        continue  # git renames temp files while we look
        except FileNotFoundError:
            continue
    return total


class _UnknownRevision(SourceError):
    """The cache has no such commit."""


class GitSource:
    """One tracked branch of one fleet repo, cached in a bare repository at `cache_dir`."""

    def __init__(
        self,
        url: str,
        branch: str,
        cache_dir: Path,
        *,
        timeout: float = 60.0,
        max_bytes: int = 512 * 1024 * 1024,
        ssh_key_file: Path | None = None,
        ssh_known_hosts: Path | None = None,
        https_token: str | None = None,
    ) -> None:
        self._remote: Remote = parse_remote(url)
        self.branch = _checked_branch(branch)
        self.cache_dir = Path(cache_dir)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._ssh_key_file = ssh_key_file
        self._ssh_known_hosts = ssh_known_hosts
        self._https_token = https_token
        # Built now so a bad combination (token over plain http, ...) fails at configuration time.
        self._env = fetch_environment(
            os.environ,
            self._remote,
            https_token=https_token,
            ssh_key_file=ssh_key_file,
            ssh_known_hosts=ssh_known_hosts,
            connect_timeout=timeout,
        )
        # Everything that must never show up in a message, the encoded header included.
        header = authorization_header(self._remote, https_token)
        self._secrets = (https_token, self._remote.password, header.rsplit(" ", 1)[-1] if header else None)
        self._lock = threading.RLock()
        self._repo: git.Repo | None = None

    # ------------------------------------------------------------------ public

    @property
    def url(self) -> str:
        """The remote URL without credentials."""
        return self._remote.display

    @property
    def tracking_ref(self) -> str:
        return f"refs/remotes/origin/{self.branch}"

    @property
    def repo_path(self) -> Path:
        """The bare cache repository, e.g. for `signing.verify_commit`."""
        return self.cache_dir

    def fetch(self) -> Revision:
        """Bring the cache up to the remote branch head and return that head's revision."""
        with self._lock, self._cache_lock():
            repo = self._open()
            try:
                self._discard_interrupted_fetch(repo)
                sha = self._fetch_incoming(repo)
                repo.git.update_ref("-m", f"fleet: fetch {self.url}", self.tracking_ref, sha)
                repo.git.update_ref("-d", INCOMING_REF)
                self._compact(repo)
            except git.GitCommandError as exc:
                raise SourceError(
                    f"updating the cache {self.cache_dir} failed: {_clean(str(exc.stderr)).strip()}"
                ) from exc
            except OSError as exc:
                raise SourceError(f"updating the cache {self.cache_dir} failed: {exc}") from exc
            return self.revision(sha)

    def head(self) -> str | None:
        """The remote head as of the last successful fetch, if any."""
        with self._lock:
            try:
                return self._open().git.rev_parse("--verify", "--quiet", f"{self.tracking_ref}^{{commit}}")
            except git.GitCommandError:
                return None

    def revision(self, sha: str) -> Revision:
        with self._lock:
            commit = self._commit(sha)
            try:
                return Revision(
                    sha=commit.hexsha,
                    author_name=_clean(commit.author.name or ""),
                    author_email=_clean(commit.author.email or ""),
                    committer_name=_clean(commit.committer.name or ""),
                    committer_email=_clean(commit.committer.email or ""),
                    authored_at=datetime.fromtimestamp(commit.authored_date, tz=UTC),
                    committed_at=datetime.fromtimestamp(commit.committed_date, tz=UTC),
                    message=_truncate_utf8(_clean(_as_text(commit.message)), MESSAGE_LIMIT),
                )
            except (ValueError, OverflowError, IndexError) as exc:
                raise SourceError(f"commit {sha} has malformed metadata: {exc}") from exc

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Is `descendant` a fast-forward of `ancestor`?

        The cache holds the complete history of every fetched head, so an
        `ancestor` it does not know cannot be in `descendant`'s history: False.
        """
        with self._lock:
            descendant_commit = self._commit(descendant)
            try:
                ancestor_commit = self._commit(ancestor)
            except _UnknownRevision:
                return False
            return bool(self._open().is_ancestor(ancestor_commit, descendant_commit))

    def changed_paths(self, old: str, new: str) -> list[str]:
        """Repo-relative paths that differ between two revisions (renames as delete + add)."""
        with self._lock:
            old_sha, new_sha = self._commit(old).hexsha, self._commit(new).hexsha
            raw = self._git_bytes("diff-tree", "-r", "-z", "--name-only", "--no-renames", old_sha, new_sha)
        paths = {p.decode("utf-8", errors="surrogateescape") for p in raw.split(b"\0") if p}
        return sorted(paths)

    def checkout(self, sha: str, dest: Path) -> Path:
        """Write the tree of `sha` into `dest` (absent or empty), refusing anything that would leave it.

        Submodules are skipped. The tree appears at `dest` whole or not at all.
        """
        dest = Path(dest)
        with self._lock:
            commit = self._commit(sha)
            what = f"revision {commit.hexsha[:12]}"
            entries = self._check_tree(commit.hexsha, what)
            if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
                raise SourceError(f"checkout destination {dest} exists and is not an empty directory")
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
            except OSError as exc:
                raise SourceError(f"cannot write a checkout next to {dest}: {exc}") from exc
            try:
                if entries:  # git archive of an empty tree is not a tar stream tarfile accepts
                    self._archive_into(commit.hexsha, staging, what)
                escaping = escaping_symlinks(staging)
                if escaping:
                    raise SourceError(
                        f"refusing to check out {what}: symlink {escaping[0]!r} leaves the tree"
                    )
                if dest.exists():
                    dest.rmdir()
                staging.rename(dest)
            except OSError as exc:
                remove_tree(staging)
                raise SourceError(f"writing {what} to {dest} failed: {exc}") from exc
            except BaseException:
                remove_tree(staging)
                raise
        return dest

    def close(self) -> None:
        with self._lock:
            if self._repo is not None:
                self._repo.close()
                self._repo = None

    def __enter__(self) -> GitSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ cache

    def _open(self) -> git.Repo:
        if self._repo is not None:
            return self._repo
        cache = self.cache_dir
        if not cache.exists() or (cache.is_dir() and not any(p.name != LOCK_FILE for p in cache.iterdir())):
            # An empty template: no sample hooks or other files we did not ask for.
            repo = git.Repo.init(cache, bare=True, mkdir=True, template="", allow_unsafe_options=True)
        else:
            try:
                repo = git.Repo(cache)
            except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
                raise SourceError(f"cache directory {cache} exists but is not a git repository") from exc
            if not repo.bare:
                raise SourceError(f"cache directory {cache} is not a bare repository")
        with repo.config_writer() as cfg:
            cfg.set_value("gc", "auto", "0")
            cfg.set_value("core", "logAllRefUpdates", "always")
        # Tree attributes must not change what a checkout contains (export-ignore / export-subst).
        info = Path(repo.git_dir) / "info"
        info.mkdir(exist_ok=True)
        (info / "attributes").write_text("* -export-ignore -export-subst\n")
        self._repo = repo
        return repo

    @contextmanager
    def _cache_lock(self) -> Iterator[None]:
        """One fetch per cache at a time, across processes."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with open(self.cache_dir / LOCK_FILE, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _discard_interrupted_fetch(self, repo: git.Repo) -> None:
        """Remove what a killed fetch leaves behind. Safe: we hold the cache lock."""
        git_dir = Path(repo.git_dir)
        pack_dir = git_dir / "objects" / "pack"
        if pack_dir.is_dir():
            for leftover in pack_dir.glob("tmp_*"):
                leftover.unlink(missing_ok=True)
            for keep in pack_dir.glob("*.keep"):
                if keep.read_bytes().startswith(b"fetch-pack"):
                    keep.unlink(missing_ok=True)
        for lock in [
            *(git_dir / "refs").rglob("*.lock"),
            git_dir / "packed-refs.lock",
            git_dir / "shallow.lock",
        ]:
            lock.unlink(missing_ok=True)
        with suppress(git.GitCommandError):
            repo.git.update_ref("-d", INCOMING_REF)

    def _fetch_incoming(self, repo: git.Repo) -> str:
        objects_dir = Path(repo.git_dir) / "objects"
        pack_dir = objects_dir / "pack"
        packs_before = set(os.listdir(pack_dir)) if pack_dir.is_dir() else set()
        baseline = _store_bytes(objects_dir)
        argv = [
            git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git",
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-recurse-submodules",
            "--no-write-fetch-head",
            "--no-auto-gc",
            "--no-auto-maintenance",
            "--no-show-forced-updates",
            "--",
            self._remote.url,
            f"+refs/heads/{self.branch}:{INCOMING_REF}",
        ]
        outcome = run_supervised(
            argv,
            cwd=Path(repo.git_dir),
            env=self._env,
            timeout=self.timeout,
            max_bytes=self.max_bytes,
            measure=lambda: _store_bytes(objects_dir) - baseline,
        )
        if outcome.stopped is not None or outcome.returncode != 0:
            self._drop_new_packs(pack_dir, packs_before)
            self._discard_interrupted_fetch(repo)
        if outcome.stopped == "timeout":
            raise FetchTimeout(
                f"fetching {self.url} ({self.branch}) timed out after {self.timeout:g}s; stopped"
            )
        if outcome.stopped == "size":
            raise FetchTooLarge(
                f"fetching {self.url} ({self.branch}) went past the limit of {self.max_bytes} bytes; stopped"
            )
        if outcome.returncode != 0:
            detail = redact(_clean(outcome.stderr_tail).strip()[-2000:], self._secrets)
            raise SourceError(f"fetching {self.url} ({self.branch}) failed: {detail or 'git fetch failed'}")
        # A fast transfer can finish between two checks: measure once more before accepting it.
        received = _store_bytes(objects_dir) - baseline
        if received > self.max_bytes:
            self._drop_new_packs(pack_dir, packs_before)
            repo.git.update_ref("-d", INCOMING_REF)
            raise FetchTooLarge(
                f"fetching {self.url} ({self.branch}) received {received} bytes, "
                f"over the limit of {self.max_bytes} bytes; discarded"
            )
        return str(repo.git.rev_parse("--verify", f"{INCOMING_REF}^{{commit}}"))

    @staticmethod
    def _drop_new_packs(pack_dir: Path, before: set[str]) -> None:
        if not pack_dir.is_dir():
            return
        for name in set(os.listdir(pack_dir)) - before:
            (pack_dir / name).unlink(missing_ok=True)

    def _compact(self, repo: git.Repo) -> None:
        pack_dir = Path(repo.git_dir) / "objects" / "pack"
        if sum(1 for _ in pack_dir.glob("pack-*.pack")) <= MAX_PACKS:
            return
        # --keep-unreachable: heads a force-push moved away from must stay readable.
        repo.git.repack("-a", "-d", "-q", "--keep-unreachable")

    # ------------------------------------------------------------------ reading

    def _commit(self, rev: str) -> git.Commit:
        if not _REV.match(rev):
            raise SourceError(f"not a commit id: {rev!r}")
        repo = self._open()
        try:
            obj = repo.rev_parse(rev)
            # rev_parse trusts a full-length id without looking it up; ask the object store.
            kind = repo.odb.info(obj.binsha).type
        except (BadName, BadObject, ValueError, git.GitCommandError) as exc:
            raise _UnknownRevision(f"unknown revision {rev}") from exc
        if kind != b"commit" or not isinstance(obj, git.Commit):
            raise SourceError(f"{rev} is not a commit")
        return obj

    def _git_bytes(self, *args: str) -> bytes:
        repo = self._open()
        try:
            out = repo.git.execute(
                [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *args],
                stdout_as_string=False,
                strip_newline_in_stdout=False,
            )
        except git.GitCommandError as exc:
            raise SourceError(f"git {args[0]} failed: {_clean(str(exc.stderr)).strip()}") from exc
        return out if isinstance(out, bytes) else str(out).encode()

    def _check_tree(self, sha: str, what: str) -> int:
        """Refuse unsafe paths and oversized trees before writing anything; return the entries to write."""
        total = 0
        count = 0
        odb = self._open().odb
        for entry in parse_ls_tree(self._git_bytes("ls-tree", "-r", "-z", "-l", "--full-tree", sha)):
            reason = unsafe_path_reason(entry.path)
            if reason is not None:
                raise SourceError(f"refusing to check out {what}: {entry.path!r}: {reason}")
            if entry.is_submodule:
                continue
            total += entry.size
            count += 1
            if count > MAX_TREE_ENTRIES:
                raise FetchTooLarge(f"{what} holds more than {MAX_TREE_ENTRIES} files")
            if entry.is_symlink:
                target = odb.stream(bytes.fromhex(entry.sha)).read().decode("utf-8", errors="surrogateescape")
                if symlink_escapes(entry.path, target):
                    raise SourceError(f"refusing to check out {what}: symlink {entry.path!r} leaves the tree")
        if total > self.max_bytes:
            raise FetchTooLarge(f"{what} holds {total} bytes of files, over the limit of {self.max_bytes}")
        return count

    def _archive_into(self, sha: str, staging: Path, what: str) -> None:
        repo = self._open()
        argv = [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", "archive", "--format=tar", sha]
        proc = subprocess.Popen(
            argv, cwd=repo.git_dir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdout is not None and proc.stderr is not None
        try:
            extract_tar(proc.stdout, staging, what)
            # Drain the end-of-archive padding so git exits cleanly instead of on SIGPIPE.
            while proc.stdout.read(65536):
                pass
        except BaseException:
            proc.kill()
            raise
        finally:
            proc.stdout.close()
            stderr = proc.stderr.read()
            proc.stderr.close()
            returncode = proc.wait()
        if returncode != 0:
            raise SourceError(
                f"git archive of {what} failed: {_clean(stderr.decode(errors='replace')).strip()}"
            )


def _as_text(message: str | bytes) -> str:
    return message if isinstance(message, str) else message.decode("utf-8", errors="replace")


def _checked_branch(branch: str) -> str:
    result = subprocess.run(
        [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", "check-ref-format", f"refs/heads/{branch}"],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0 or branch.startswith("-"):
        raise SourceError(f"invalid branch name {branch!r}")
    return branch
