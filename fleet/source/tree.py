"""Checks that keep a checked-out tree inside its directory.

Three layers, because each catches what the one before cannot:
1. every tree entry is checked before anything is written (`..`, absolute
   paths, `.git`, symlinks whose target leaves the root as written);
2. the tar stream from `git archive` is extracted with the `data` filter,
   which refuses members and links pointing outside the destination;
3. after extraction every symlink is resolved on disk, which catches chains
   (`a -> b/..` where `b` is itself a link) that look harmless one at a time.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from fleet.source.errors import SourceError

MODE_SYMLINK = "120000"
MODE_SUBMODULE = "160000"


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    kind: str  # blob | tree | commit
    sha: str
    size: int  # 0 for submodules
    path: str

    @property
    def is_symlink(self) -> bool:
        return self.mode == MODE_SYMLINK

    @property
    def is_submodule(self) -> bool:
        return self.mode == MODE_SUBMODULE


def parse_ls_tree(output: bytes) -> Iterator[TreeEntry]:
    """Parse `git ls-tree -r -z -l` output."""
    for record in output.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, sha, size = meta.decode("ascii").split()
        path = raw_path.decode("utf-8", errors="surrogateescape")
        yield TreeEntry(mode=mode, kind=kind, sha=sha, size=0 if size == "-" else int(size), path=path)


def unsafe_path_reason(path: str) -> str | None:
    """Why a repo-relative path may not be written, or None if it is fine."""
    if not path:
        return "empty path"
    if path.startswith("/") or "\\" in path:
        return "absolute or backslash path"
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return f"path component {part!r}"
        if part.lower() == ".git":
            return "path inside .git"
        if "\0" in part:
            return "NUL in path"
    return None


def symlink_escapes(link_path: str, target: str) -> bool:
    """Does a symlink at repo-relative `link_path` pointing to `target` leave the root, read literally?"""
    if not target or target.startswith("/") or "\0" in target:
        return True
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(link_path), target))
    return joined == ".." or joined.startswith("../")


def escaping_symlinks(tree_root: Path) -> list[str]:
    """Repo-relative paths of symlinks under `tree_root` that resolve outside it (chains included)."""
    root = os.path.realpath(tree_root)
    escaping: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in (*dirnames, *filenames):
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                continue
            resolved = os.path.realpath(full)
            if resolved != root and not resolved.startswith(root + os.sep):
                escaping.append(Path(full).relative_to(root).as_posix())
    return sorted(escaping)


def extract_tar(stream: IO[bytes], dest: Path, what: str) -> None:
    """Extract a tar stream into `dest` with the `data` filter; name the refused member."""
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            archive.extractall(dest, filter="data")
    except tarfile.FilterError as exc:
        member = exc.tarinfo.name if exc.tarinfo is not None else "?"
        raise SourceError(f"refusing to check out {what}: {member!r} would leave the tree ({exc})") from exc
    except tarfile.TarError as exc:
        raise SourceError(f"could not unpack {what}: {exc}") from exc


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
