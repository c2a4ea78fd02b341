"""`fleet source status|accept|sync`: where the hub stands on the tracked branch."""

from __future__ import annotations

from pathlib import Path

import click

from fleet.cli.client import HubClient, data_dir_option, hub_option
from fleet.cli.output import ago, console, emit_data, output_option, short, table


@click.group()
def source() -> None:
    """The tracked branch of the fleet repo."""


@source.command("status")
@output_option
@hub_option
@data_dir_option
def status(output: str, hub_url: str | None, data_dir: Path | None) -> None:
    """Revision in force, branch head, held revision and the last error."""
    row = HubClient.from_options(hub_url, data_dir).get("/v1/admin/source")
    if output != "table":
        emit_data(row, output)
        return
    lines = [
        ("repo", row["url"]),
        ("branch", row["branch"]),
        ("in force", short(row.get("currentRevision"), 12)),
        ("branch head", short(row.get("remoteRevision"), 12)),
        ("held", f"{short(row.get('heldRevision'), 12)} {row.get('heldReason') or ''}".strip()),
        ("last fetch", ago(row.get("lastFetchAt"))),
        ("poll interval", f"{row['pollInterval']}s"),
        ("last error", row.get("lastError") or "-"),
    ]
    console().print(table(["FIELD", "VALUE"], [[k, v] for k, v in lines]))


def _print_result(result: dict[str, object]) -> None:
    click.echo(f"{result['action']}: {short(str(result.get('sha') or ''), 12)} {result.get('message') or ''}".strip())
    if result["action"] in ("rejected", "deferred", "held", "stayed", "fetch-failed"):
        raise SystemExit(1)


@source.command("accept")
@click.argument("sha")
@hub_option
@data_dir_option
def accept(sha: str, hub_url: str | None, data_dir: Path | None) -> None:
    """Let a held revision through (after a force-push or a large inventory shrink)."""
    _print_result(HubClient.from_options(hub_url, data_dir).post("/v1/admin/source/accept", {"sha": sha}))


@source.command("sync")
@hub_option
@data_dir_option
def sync(hub_url: str | None, data_dir: Path | None) -> None:
    """Poll the fleet repo now."""
    _print_result(HubClient.from_options(hub_url, data_dir).post("/v1/admin/source/sync"))
