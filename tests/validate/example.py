"""The example fleet repo at the project root, copied into a test's own directory."""

from __future__ import annotations

import shutil
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_ENTRIES = ("fleet.yaml", ".sops.yaml", "clusters", "apps", "secrets")
DEMO_AGE_KEY = PROJECT_ROOT / "demo" / "age.key"
DEMO_AGE_RECIPIENT = "age14kgxthhegxa6thtx2vyw9s9grvqdtyr55e3xk2farqjlzrd5mg8spnuvxe"


def copy_example(dest: Path) -> Path:
    """Copy the example fleet (specs, manifests, SOPS files and rules) into `dest`; returns `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in EXAMPLE_ENTRIES:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest / name)
    return dest


def edit(path: Path, old: str, new: str) -> None:
    """Replace exactly one occurrence of `old` in a file (so a fixture edit cannot silently miss)."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new))
