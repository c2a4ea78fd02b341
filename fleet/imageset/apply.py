"""`fleet image set` on a checkout: find the files of one app, edit them, and optionally commit on a branch.

Only files under `apps/<app>/` are ever written, and only once every edit has
been computed and checked, so a failure leaves the tree as it was.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import git

from fleet.imageset.rewrite import (
    KUSTOMIZATION_NAMES,
    FileEdit,
    ImageChange,
    ImageRef,
    ImageSetError,
    current_tags,
    set_kustomization_images,
    set_manifest_images,
    set_target_image,
)
from fleet.imageset.yamledit import YamlEditError
from fleet.inventory.loader import APPS_DIR
from fleet.inventory.models import is_dns1123_label

MANIFEST_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ImageSetResult:
    app: str
    image: ImageRef
    selector: Mapping[str, str] | None
    edits: tuple[FileEdit, ...]  # the files that changed
    old_versions: tuple[str, ...]
    skipped: tuple[str, ...] = ()

    @property
    def files(self) -> list[str]:
        return [edit.file for edit in self.edits]

    @property
    def changes(self) -> list[ImageChange]:
        return [change for edit in self.edits for change in edit.changes]

    @property
    def commit_message(self) -> str:
        old = ", ".join(self.old_versions) or "(none)"
        where = f" ({','.join(f'{k}={v}' for k, v in sorted(self.selector.items()))})" if self.selector else ""
        return f"image: {self.app} {self.image.name} {old} -> {self.image.version}{where}"


def app_dir(root: Path, app: str) -> Path:
    if not is_dns1123_label(app):
        raise ImageSetError(f"{app!r} is not an app name")
    directory = root / APPS_DIR / app
    if not directory.is_dir():
        raise ImageSetError(f"no app {app!r}: {APPS_DIR}/{app}/ does not exist in {root}")
    return directory


def _inside(directory: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def _app_files(root: Path, directory: Path) -> list[tuple[Path, str]]:
    """(path, repo-relative name) of the app's YAML files, without hidden ones or links leaving the app."""
    found = []
    for path in sorted(directory.rglob("*")):
        parts = path.relative_to(directory).parts
        if any(part.startswith(".") for part in parts) or not path.is_file():
            continue
        if path.suffix not in MANIFEST_SUFFIXES and path.name not in KUSTOMIZATION_NAMES:
            continue
        if not _inside(directory, path):
            continue  # a symlink out of the app: never written
        found.append((path, os.path.relpath(path, root).replace(os.sep, "/")))
    return found


def plan_image_set(root: Path, app: str, image: ImageRef, selector: Mapping[str, str] | None) -> ImageSetResult:
    """Compute every edit (nothing is written). Raises ImageSetError if nothing names the image."""
    root = root.resolve()
    directory = app_dir(root, app)
    spec_file = directory / "fleet.yaml"
    try:
        if selector is not None:
            return _plan_override(root, directory, app, image, selector, spec_file)
        return _plan_manifests(root, directory, app, image, spec_file)
    except YamlEditError as exc:
        raise ImageSetError(str(exc)) from None


def _plan_manifests(root: Path, directory: Path, app: str, image: ImageRef, spec_file: Path) -> ImageSetResult:
    edits: list[FileEdit] = []
    old: list[str] = []
    skipped: list[str] = []
    matched = 0
    for path, rel in _app_files(root, directory):
        if path == spec_file:
            continue
        text = path.read_text(encoding="utf-8")
        if path.name in KUSTOMIZATION_NAMES:
            edit = set_kustomization_images(text, rel, image)
        else:
            edit = set_manifest_images(text, rel, image)
        matched += edit.matched
        skipped.extend(edit.skipped)
        for change in edit.changes:
            old.append(_version(change.old, image.name))
        if edit.changed:
            edits.append(edit)
    if matched == 0:
        raise ImageSetError(
            f"no container in {APPS_DIR}/{app}/ runs {image.name} (compared without tag or digest); nothing changed"
        )
    return ImageSetResult(app, image, None, tuple(edits), tuple(dict.fromkeys(old)), tuple(skipped))


def _version(value: str, name: str) -> str:
    """"nginx:1.27" -> "1.27"; a bare tag (from a kustomization's newTag) stays as it is."""
    if value.startswith(name):
        rest = value[len(name) :]
        return rest[1:] if rest[:1] in (":", "@") else (rest or "latest")
    return value


def _plan_override(
    root: Path, directory: Path, app: str, image: ImageRef, selector: Mapping[str, str], spec_file: Path
) -> ImageSetResult:
    rel = os.path.relpath(spec_file, root).replace(os.sep, "/")
    if not spec_file.is_file() or not _inside(directory, spec_file):
        raise ImageSetError(f"{rel} does not exist")
    runs = []
    kustomized = any((directory / name).exists() for name in KUSTOMIZATION_NAMES)
    for path, file in _app_files(root, directory):
        if path != spec_file and path.name not in KUSTOMIZATION_NAMES:
            runs.extend(current_tags(path.read_text(encoding="utf-8"), file, image.name))
    if not runs and not kustomized:
        raise ImageSetError(
            f"no container in {APPS_DIR}/{app}/ runs {image.name}: an override for it would change nothing"
        )
    edit, _index = set_target_image(spec_file.read_text(encoding="utf-8"), rel, selector, image)
    previous = [c.old for c in edit.changes if c.old] or runs
    return ImageSetResult(app, image, dict(selector), (edit,) if edit.changed else (), tuple(dict.fromkeys(previous)))


def write(root: Path, result: ImageSetResult) -> None:
    directory = app_dir(root.resolve(), result.app)
    for edit in result.edits:
        path = root.resolve() / edit.file
        if not _inside(directory, path):
            raise ImageSetError(f"{edit.file} is outside {APPS_DIR}/{result.app}/; refused")
        path.write_text(edit.new_text, encoding="utf-8")


# ------------------------------------------------------------------ git


class GitWorkspace:
    """The Git work tree holding the fleet repo, for `--branch` and `--commit`."""

    def __init__(self, root: Path) -> None:
        try:
            self.repo = git.Repo(root, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise ImageSetError(f"{root} is not inside a Git repository; drop --commit/--branch or run `git init`") from None
        if self.repo.working_tree_dir is None:
            raise ImageSetError(f"{root} is in a bare repository")
        self.top = Path(self.repo.working_tree_dir).resolve()

    def relative(self, path: Path) -> str:
        return os.path.relpath(path.resolve(), self.top).replace(os.sep, "/")

    def ensure_clean(self, directory: Path) -> None:
        """Refuse to commit on top of someone's uncommitted edits to the same app."""
        status = self.repo.git.status("--porcelain", "--untracked-files=no", "--", self.relative(directory))
        if status.strip():
            raise ImageSetError(
                f"{self.relative(directory)}/ has uncommitted changes; commit or stash them first:\n{status}"
            )

    def switch(self, branch: str) -> None:
        """Use `branch`, creating it from the current commit if it does not exist."""
        try:
            self.repo.git.check_ref_format("--branch", branch)
        except git.GitCommandError:
            raise ImageSetError(f"{branch!r} is not a valid branch name") from None
        current = None if self.repo.head.is_detached else self.repo.active_branch.name
        if current == branch:
            return
        try:
            if branch in [head.name for head in self.repo.heads]:
                self.repo.git.checkout(branch)
            else:
                self.repo.git.checkout("-b", branch)
        except git.GitCommandError as exc:
            raise ImageSetError(f"cannot switch to branch {branch!r}: {str(exc.stderr).strip()}") from None

    def commit(self, paths: list[Path], message: str) -> str:
        """Commit exactly `paths` (whatever else is staged stays staged); returns the new commit."""
        names = [self.relative(p) for p in paths]
        try:
            self.repo.git.add("--", *names)
            self.repo.git.commit("-m", message, "--only", "--", *names)
        except git.GitCommandError as exc:
            raise ImageSetError(f"git commit failed: {str(exc.stderr).strip()}") from None
        return self.repo.head.commit.hexsha

    @property
    def branch(self) -> str:
        return "(detached)" if self.repo.head.is_detached else self.repo.active_branch.name
