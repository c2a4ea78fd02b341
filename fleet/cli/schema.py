"""`fleet schema`: JSON Schemas for editors (yaml-language-server, VS Code)."""

from __future__ import annotations

import json

import click

from fleet.inventory.schema import SCHEMAS, schema_for


@click.command()
@click.argument("kind", type=click.Choice(sorted(SCHEMAS)), default="cluster")
def schema(kind: str) -> None:
    """Print the JSON Schema of a fleet repo file: cluster, app or settings."""
    click.echo(json.dumps(schema_for(kind), indent=2))
