"""Listing the SOPS files under `secrets/` in a checkout (the I/O half of scoping)."""

from __future__ import annotations

from pathlib import Path

SECRET_SUFFIXES = (".yaml", ".yml", ".json")


def list_secret_files(repo_root: Path) -> list[str]:
    """Repo-relative paths of YAML/JSON files under secrets/, sorted; symlinks are skipped, never followed."""
    base = repo_root / "secrets"
    if not base.is_dir() or base.is_symlink():
        return []
    found = []
    for path in base.rglob("*"):
        relative = path.relative_to(repo_root)
        if any((repo_root / Path(*relative.parts[: i + 1])).is_symlink() for i in range(len(relative.parts))):
            continue
        if path.is_file() and path.suffix.lower() in SECRET_SUFFIXES and not path.name.startswith("."):
            found.append(relative.as_posix())
    return sorted(found)
