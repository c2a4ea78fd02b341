"""`fleet clusters list|show`: registered clusters and their identity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Group
from rich.text import Text

from fleet.cli.client import HubClient, data_dir_option, hub_option
from fleet.cli.output import ago, console, emit_data, output_option, short, styled_health, table


@click.group()
def clusters() -> None:
    """Clusters declared in the fleet repo and registered by the hub."""


def _source_banner(source: dict[str, Any]) -> Text | None:
    if source.get("lastError"):
        return Text(f"! {source['lastError']}", style="bold red")
    if source.get("heldRevision"):
        return Text(f"! revision {short(source['heldRevision'], 12)} held: {source.get('heldReason')}", style="yellow")
    return None


@clusters.command("list")
@output_option
@hub_option
@data_dir_option
def list_clusters(output: str, hub_url: str | None, data_dir: Path | None) -> None:
    """List clusters with provider, endpoint, Kubernetes version and registration state."""
    client = HubClient.from_options(hub_url, data_dir)
    rows = client.get("/v1/admin/clusters")
    if output != "table":
        emit_data(rows, output)
        return
    source = client.get("/v1/admin/source")
    body = table(
        ["NAME", "PROVIDER", "REGION", "STATE", "ENDPOINT", "VERSION", "HEALTH", "MESSAGE"],
        [
            [
                r["name"],
                r["provider"],
                r.get("region") or "-",
                r["state"],
                r.get("endpoint") or "-",
                r.get("kubernetesVersion") or "-",
                styled_health(r["health"]),
                (r.get("stateMessage") or "")[:80],
            ]
            for r in sorted(rows, key=lambda r: r["name"])
        ],
    )
    banner = _source_banner(source)
    console().print(Group(banner, body) if banner else body)


@clusters.command("show")
@click.argument("name")
@output_option
@hub_option
@data_dir_option
def show_cluster(name: str, output: str, hub_url: str | None, data_dir: Path | None) -> None:
    """One cluster: identity, agent, sync state and recent events."""
    detail = HubClient.from_options(hub_url, data_dir).get(f"/v1/admin/clusters/{name}")
    if output != "table":
        emit_data(detail, output)
        return
    c = detail["cluster"]
    lines = [
        ("name", c["name"]),
        ("provider", c["provider"]),
        ("region", c.get("region") or "-"),
        ("labels", ", ".join(f"{k}={v}" for k, v in sorted(c["labels"].items())) or "-"),
        ("state", c["state"] + (f" ({c['stateMessage']})" if c.get("stateMessage") else "")),
        ("endpoint", c.get("endpoint") or "-"),
        ("kubernetes", c.get("kubernetesVersion") or "-"),
        ("agent last seen", ago(c.get("agentLastSeen"))),
        ("desired", f"{short(c.get('desiredRevision'), 12)} ({short(c.get('desiredDigest'), 12)})"),
        ("applied", f"{short(c.get('appliedRevision'), 12)} ({short(c.get('appliedDigest'), 12)})"),
        ("health", styled_health(c["health"])),
    ]
    out = console()
    out.print(table(["FIELD", "VALUE"], [[k, v] for k, v in lines]))
    if detail["events"]:
        out.print()
        out.print(
            table(
                ["WHEN", "KIND", "MESSAGE"],
                [[ago(e["at"]), e["kind"], e["message"].splitlines()[0][:120]] for e in detail["events"][-10:]],
                title="recent events",
            )
        )
