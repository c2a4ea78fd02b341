"""`fleet status [CLUSTER]`: the whole fleet at a glance, problems first.

Exit code 0 only when every cluster is Healthy and in sync, so CI can gate on it
(2 when something is unhealthy or out of sync, 3 when the hub is unreachable).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from fleet.cli.client import HubClient, data_dir_option, hub_option
from fleet.cli.output import ago, console, emit_data, output_option, short, styled_health, table

EXIT_NOT_OK = 2


def summary_line(summary: dict[str, Any]) -> Text:
    order = ["Healthy", "Progressing", "Degraded", "Unreachable", "Unknown"]
    parts = [f"{summary['byHealth'][h]} {h}" for h in order if summary["byHealth"].get(h)]
    text = (
        f"{summary['total']} clusters: {', '.join(parts) or 'none'}; "
        f"{summary['inSync']} in sync, {summary['outOfSync']} out of sync, {summary['drifted']} drifted"
    )
    return Text(text, style="bold green" if summary["ok"] else "bold yellow")


def fleet_view(status: dict[str, Any]) -> RenderableType:
    rows = [
        [
            c["name"],
            c["provider"],
            c.get("region") or "-",
            ago(c.get("agentLastSeen")),
            short(c.get("desiredRevision")),
            short(c.get("appliedRevision")) if c.get("appliedDigest") else "-",
            "yes" if c["inSync"] else "[yellow]no[/yellow]",
            str(c["driftedObjects"]) if c["driftedObjects"] else "-",
            styled_health(c["health"])
            + (f" [dim](active, epoch {c['epoch']})[/dim]" if c.get("active") else "")
            + (f" [red]{c['lastError'][:60]}[/red]" if c.get("lastError") else ""),
        ]
        for c in status["clusters"]
        if c["health"] != "Removed"
    ]
    parts: list[RenderableType] = [
        table(["CLUSTER", "PROVIDER", "REGION", "AGENT SEEN", "DESIRED", "APPLIED", "IN SYNC", "DRIFTED", "HEALTH"], rows)
    ]
    source = status["source"]
    if source.get("lastError"):
        parts.insert(0, Text(f"! {source['lastError']}", style="bold red"))
    elif source.get("heldRevision"):
        parts.insert(0, Text(f"! revision {short(source['heldRevision'], 12)} held: {source['heldReason']}", style="yellow"))
    for group in status.get("failover", []):
        parts.append(
            Text(
                f"failover group {group['name']}: active {group['active']} (epoch {group['epoch']}, "
                f"{group['policy']}, {group['mode']})" + (f" - {group['reason']}" if group["epoch"] else ""),
                style="cyan",
            )
        )
    parts.append(summary_line(status["summary"]))
    return Group(*parts)


def cluster_view(detail: dict[str, Any]) -> RenderableType:
    c = detail["cluster"]
    header = Text.from_markup(
        f"[bold]{c['name']}[/bold]  {styled_health(c['health'])}  "
        f"desired {short(c.get('desiredRevision'))}  applied {short(c.get('appliedRevision'))}  "
        f"{'in sync' if c['inSync'] else '[yellow]out of sync[/yellow]'}  agent seen {ago(c.get('agentLastSeen'))}"
    )
    objects = table(
        ["OBJECT", "APP", "HEALTH", "DRIFT", "MESSAGE"],
        [
            [o["key"], o["app"], styled_health(o["health"]), "[yellow]drifted[/yellow]" if o["drifted"] else "-", o["message"]]
            for o in detail["objects"]
        ],
    )
    parts: list[RenderableType] = [header, objects]
    if c.get("lastError"):
        parts.append(Text(f"last error: {c['lastError']}", style="red"))
    return Group(*parts)


def _is_ok(data: dict[str, Any], cluster: str | None) -> bool:
    if cluster is None:
        return bool(data["summary"]["ok"])
    c = data["cluster"]
    return bool(c["health"] == "Healthy" and c["inSync"])


@click.command()
@click.argument("cluster", required=False)
@output_option
@click.option("-w", "--watch", is_flag=True, help="refresh until interrupted")
@click.option("--interval", default=2.0, show_default=True, help="seconds between refreshes with --watch")
@hub_option
@data_dir_option
def status(
    cluster: str | None, output: str, watch: bool, interval: float, hub_url: str | None, data_dir: Path | None
) -> None:
    """Health and sync state of every cluster, or the objects of one CLUSTER."""
    client = HubClient.from_options(hub_url, data_dir)
    path = f"/v1/admin/clusters/{cluster}" if cluster else "/v1/admin/status"

    def view(data: dict[str, Any]) -> RenderableType:
        return cluster_view(data) if cluster else fleet_view(data)

    data = client.get(path)
    if output != "table":
        emit_data(data, output)
    elif watch:
        with Live(view(data), console=console(), refresh_per_second=4) as live:
            try:
                while True:
                    time.sleep(interval)
                    data = client.get(path)
                    live.update(view(data))
            except KeyboardInterrupt:
                pass
    else:
        console().print(view(data))
    if not _is_ok(data, cluster):
        raise SystemExit(EXIT_NOT_OK)
