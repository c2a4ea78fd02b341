"""`fleet recover CLUSTER`: restore a cluster that lost everything, from Git."""

from __future__ import annotations

from pathlib import Path

import click

from fleet.cli.client import HubClient, data_dir_option, hub_option


@click.command()
@click.argument("cluster")
@click.option("--agent-hub-url", default=None, help="URL an in-cluster agent uses to reach the hub")
@click.option("--image", default=None, help="agent image for an in-cluster re-install")
@hub_option
@data_dir_option
def recover(
    cluster: str, agent_hub_url: str | None, image: str | None, hub_url: str | None, data_dir: Path | None
) -> None:
    """Re-bootstrap CLUSTER's agent with a fresh credential; it re-applies the cluster's full
    desired state from Git, secrets included. Follow progress with `fleet status CLUSTER`."""
    result = HubClient.from_options(hub_url, data_dir).post(
        f"/v1/admin/clusters/{cluster}/recover", {"hubUrl": agent_hub_url, "image": image}
    )
    how = "local agent restarted with a fresh identity" if result["method"] == "local-dispatch" else (
        f"agent re-installed ({len(result['applied'])} objects)"
    )
    click.echo(f"recovering {cluster}: {how}; watch it converge with `fleet status {cluster} --watch`")
