"""`fleet failover GROUP [--to CLUSTER]` and `fleet failback GROUP`: a person decides."""

from __future__ import annotations

from pathlib import Path

import click

from fleet.cli.client import HubClient, data_dir_option, hub_option


def _show(result: dict[str, object]) -> None:
    click.echo(f"group {result['group']}: active {result['active']} (epoch {result['epoch']}) - {result['reason']}")


@click.command()
@click.argument("group")
@click.option("--to", "to", default=None, help="the member to move to (default: the best healthy standby)")
@hub_option
@data_dir_option
def failover(group: str, to: str | None, hub_url: str | None, data_dir: Path | None) -> None:
    """Move GROUP's failover apps to a standby now, whatever the policy."""
    _show(HubClient.from_options(hub_url, data_dir).post(f"/v1/admin/failover/{group}", {"to": to}))


@click.command()
@click.argument("group")
@hub_option
@data_dir_option
def failback(group: str, hub_url: str | None, data_dir: Path | None) -> None:
    """Return GROUP's failover apps to its primary."""
    _show(HubClient.from_options(hub_url, data_dir).post(f"/v1/admin/failback/{group}"))
