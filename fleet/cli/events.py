"""`fleet events`: the audit trail."""

from __future__ import annotations

import time
from pathlib import Path

import click

from fleet.cli.client import HubClient, data_dir_option, hub_option
from fleet.cli.output import console, emit_data, output_option, short, table

SEVERITY_STYLE = {"error": "red", "warning": "yellow", "info": ""}


@click.command()
@click.option("--cluster", default=None, help="only events about this cluster")
@click.option("--limit", default=50, show_default=True)
@click.option("-f", "--follow", is_flag=True, help="keep printing new events")
@output_option
@hub_option
@data_dir_option
def events(
    cluster: str | None, limit: int, follow: bool, output: str, hub_url: str | None, data_dir: Path | None
) -> None:
    """What happened: revisions applied or rejected, clusters registered, drift, failovers..."""
    client = HubClient.from_options(hub_url, data_dir)
    rows = client.get("/v1/admin/events", limit=limit, cluster=cluster)
    if output != "table":
        emit_data(rows, output)
        return
    out = console()

    def show(batch: list[dict[str, object]]) -> None:
        if not batch:
            return
        out.print(
            table(
                ["TIME", "SEVERITY", "KIND", "CLUSTER", "COMMIT", "MESSAGE"],
                [
                    [
                        str(e["at"])[:19].replace("T", " "),
                        f"[{SEVERITY_STYLE.get(str(e['severity']), '')}]{e['severity']}[/]"
                        if SEVERITY_STYLE.get(str(e["severity"]))
                        else str(e["severity"]),
                        str(e["kind"]),
                        str(e.get("cluster") or "-"),
                        short(str(e.get("commit") or ""), 8),
                        str(e["message"]),
                    ]
                    for e in batch
                ],
            )
        )

    show(rows)
    last = rows[-1]["id"] if rows else 0
    while follow:
        time.sleep(2)
        batch = client.get("/v1/admin/events", limit=200, cluster=cluster, after=last)
        show(batch)
        if batch:
            last = batch[-1]["id"]
