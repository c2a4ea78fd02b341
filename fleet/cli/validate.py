"""`fleet validate [PATH]`: fail a change that is broken or unsafe, before it merges."""

from __future__ import annotations

import json
import os
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

import click

from fleet.validate import DEFAULT_KUBERNETES_VERSION, UnsupportedVersion, validate_repo
from fleet.validate.report import format_text, to_json, to_sarif


def _tool_version() -> str:
    try:
        return package_version("fleet")
    except PackageNotFoundError:
        return "0"


def _path_in_git(root: Path) -> str:
    """`root` relative to the top of its Git work tree ("" at the top or outside Git)."""
    import git  # imported here: only SARIF output needs it

    try:
        top = git.Repo(root, search_parent_directories=True).working_tree_dir
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return ""
    if top is None:
        return ""
    rel = os.path.relpath(root.resolve(), Path(top).resolve()).replace(os.sep, "/")
    return "" if rel == "." else rel


@click.command()
@click.argument("path", default=".", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--kubernetes-version",
    default=DEFAULT_KUBERNETES_VERSION,
    show_default=True,
    help="validate manifests against this Kubernetes version's OpenAPI schemas",
)
@click.option("-o", "--output", type=click.Choice(["text", "json", "sarif"]), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="warnings fail the check too")
@click.option(
    "--sarif-file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="also write a SARIF 2.1.0 report here (for code-scanning upload)",
)
def validate(path: Path, kubernetes_version: str, output: str, strict: bool, sarif_file: Path | None) -> None:
    """Check the fleet repo at PATH: specs, Kubernetes schemas, secrets, references, cycles.

    Needs no hub, cluster or keys. Prints one `file:line: error: reason` line per
    problem. Exits 1 on errors (and on warnings with --strict), 0 otherwise.
    """
    try:
        report = validate_repo(path, kubernetes_version)
    except UnsupportedVersion as exc:
        raise click.BadParameter(str(exc), param_hint="--kubernetes-version") from None

    if output == "text":
        click.echo(format_text(report, strict))
    elif output == "json":
        click.echo(json.dumps(to_json(report, strict), indent=2))
    if output == "sarif" or sarif_file is not None:
        sarif = json.dumps(to_sarif(report, _tool_version(), strict, uri_prefix=_path_in_git(path)), indent=2)
        if sarif_file is not None:
            sarif_file.write_text(sarif + "\n", encoding="utf-8")
        if output == "sarif":
            click.echo(sarif)
    if not report.passed(strict):
        raise SystemExit(1)
