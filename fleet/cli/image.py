"""`fleet image set`: an app's CI moves the fleet repo to the image tag it just pushed."""

from __future__ import annotations

from pathlib import Path

import click

from fleet.imageset import GitWorkspace, ImageRef, ImageSetError, parse_selector, plan_image_set, write
from fleet.imageset.apply import app_dir


@click.group()
def image() -> None:
    """Image tags in the fleet repo."""


@image.command("set")
@click.argument("app")
@click.argument("image_ref", metavar="IMAGE:TAG")
@click.argument("path", default=".", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--cluster-selector",
    default=None,
    metavar="KEY=VALUE,...",
    help="set an `images:` override on the app's target whose clusterSelector.matchLabels is exactly this",
)
@click.option("--commit", is_flag=True, help="commit the change (author from git config)")
@click.option("--branch", default=None, metavar="B", help="create or switch to branch B and commit there (implies --commit)")
def set_image(app: str, image_ref: str, path: Path, cluster_selector: str | None, commit: bool, branch: str | None) -> None:
    """Point APP at IMAGE:TAG in the fleet repo at PATH.

    Without --cluster-selector, every container and init container image in
    apps/APP/ whose name (without tag or digest) is IMAGE gets the new tag; only
    that scalar changes in each file. Exits 1 if nothing in apps/APP/ runs IMAGE.
    """
    root = path.resolve()
    try:
        ref = ImageRef.parse(image_ref)
        selector = parse_selector(cluster_selector) if cluster_selector is not None else None
        workspace = GitWorkspace(root) if (commit or branch) else None
        if workspace is not None:
            workspace.ensure_clean(app_dir(root, app))
        if workspace is not None and branch:
            _switch_and_plan(workspace, branch, root, app, ref, selector)
        result = plan_image_set(root, app, ref, selector)
        for note in result.skipped:
            click.echo(f"warning: {note}", err=True)
        if not result.edits:
            click.echo(f"{app}: {ref.name} is already at {ref.version}; nothing to change")
            return
        write(root, result)
        for change in result.changes:
            click.echo(f"{change.file}:{change.line}: {change.old or '(none)'} -> {change.new}")
        if workspace is not None:
            sha = workspace.commit([root / file for file in result.files], result.commit_message)
            click.echo(f"committed {sha[:12]} on {workspace.branch}: {result.commit_message}")
    except ImageSetError as exc:
        raise click.ClickException(str(exc)) from None


def _switch_and_plan(
    workspace: GitWorkspace, branch: str, root: Path, app: str, ref: ImageRef, selector: dict[str, str] | None
) -> None:
    """Switch to `branch`; if the image cannot be set there, go back (and drop a branch we just made)."""
    existed = branch in [head.name for head in workspace.repo.heads]
    previous = workspace.branch
    workspace.switch(branch)
    try:
        plan_image_set(root, app, ref, selector)
    except ImageSetError:
        if previous != branch and previous != "(detached)":
            workspace.switch(previous)
            if not existed:
                workspace.repo.git.branch("-D", branch)
        raise
