"""`fleet plan`: what merging a change would do to each cluster, for review before it merges."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import click

from fleet.cli.client import HubClient, data_dir_option
from fleet.diff.bundles import diff_bundles
from fleet.diff.live import HubState, LiveCluster, compare_live
from fleet.diff.present import format_failure, format_markdown, format_text, to_json
from fleet.diff.revisions import WORKTREE, LocalRepo, RenderedRevision, RevisionError, load_revision
from fleet.errors import FleetError


def _hub_states(client: HubClient, clusters: set[str]) -> dict[str, HubState]:
    """The hub's stored desired state for every cluster it or head knows (placeholders only, never values)."""
    rows = client.get("/v1/admin/clusters") or []
    states: dict[str, HubState] = {}
    for row in rows:
        name = row["name"]
        if not row.get("desiredDigest"):
            states[name] = HubState(cluster=name, applied_digest=row.get("appliedDigest"))
            continue
        desired = client.get(f"/v1/admin/clusters/{name}/desired")
        states[name] = HubState(
            cluster=name,
            revision=desired.get("revision"),
            digest=desired.get("digest"),
            applied_digest=desired.get("appliedDigest"),
            objects=tuple(desired.get("objects") or ()),
        )
    return states


def _live(hub_url: str, data_dir: Path | None, head: RenderedRevision) -> list[LiveCluster]:
    client = HubClient.from_options(hub_url, data_dir)
    try:
        states = _hub_states(client, set(head.bundles))
    finally:
        client.close()
    return list(compare_live(head.bundles, states))


@click.command()
@click.argument("path", default=".", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--base",
    default=None,
    help="revision to compare from (default: the merge base with origin/main, else HEAD~1; HEAD for the work tree)",
)
@click.option(
    "--head",
    default="HEAD",
    show_default=True,
    help=f"revision to compare to; {WORKTREE} means the uncommitted work tree",
)
@click.option("-o", "--output", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option(
    "--hub",
    "hub_url",
    default=None,
    help="also compare head with the live state this hub holds (admin token: FLEET_TOKEN or --data-dir)",
)
@data_dir_option
def plan(path: Path, base: str | None, head: str, output: str, hub_url: str | None, data_dir: Path | None) -> None:
    """Show what changing the fleet repo at PATH from BASE to HEAD does to each cluster.

    Objects created, changed (field by field) or deleted per cluster, clusters
    added or removed, apps moving. Secret values are always redacted. Exits 1
    if either revision does not render.
    """
    try:
        repo = LocalRepo.open(path)
    except FleetError as exc:
        raise click.ClickException(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="fleet-plan-") as scratch:
        try:
            head_revision = load_revision(repo, head, "head", Path(scratch) / "head")
            base_rev, base_name = (base, base) if base else repo.default_base(head, head_revision.label.sha)
            base_revision = load_revision(repo, base_rev, "base", Path(scratch) / "base", base_name)
        except RevisionError as exc:
            if not exc.problems:
                raise click.ClickException(str(exc)) from None
            failure = format_failure(exc.label, exc.revision, exc.problems, output)
            click.echo(failure, err=output == "text")
            raise SystemExit(1) from None

    diff = diff_bundles(base_revision.review, head_revision.review)
    live = _live(hub_url, data_dir, head_revision) if hub_url else None
    if output == "markdown":
        click.echo(format_markdown(diff, base_revision.label, head_revision.label, live), nl=False)
    elif output == "json":
        data: dict[str, Any] = to_json(diff, base_revision.label, head_revision.label, live)
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(format_text(diff, base_revision.label, head_revision.label, live))
