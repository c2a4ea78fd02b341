"""Output formats shared by the CLI commands: rich tables, JSON and YAML."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

output_option = click.option(
    "-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table", show_default=True
)

HEALTH_STYLE = {
    "Healthy": "green",
    "Progressing": "yellow",
    "Degraded": "red",
    "Unreachable": "bold red",
    "Missing": "red",
    "Unknown": "dim",
    "Removed": "dim",
    "Suspended": "dim",
}


def console() -> Console:
    """Terminal width on a terminal; wide when piped, so tables are not folded at 80 columns."""
    if sys.stdout.isatty():
        return Console(highlight=False, soft_wrap=False)
    columns = os.environ.get("COLUMNS", "")
    return Console(highlight=False, soft_wrap=False, width=max(int(columns) if columns.isdigit() else 0, 250))


def emit_data(data: Any, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())


def table(columns: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None) -> Table:
    result = Table(title=title, title_justify="left", show_edge=False, box=None, pad_edge=False, header_style="bold")
    for index, column in enumerate(columns):
        last = index == len(columns) - 1
        # Identifiers never wrap; only the last (free text) column folds.
        result.add_column(column, overflow="fold" if last else "ellipsis", no_wrap=not last)
    for row in rows:
        result.add_row(*row)
    return result


def styled_health(health: str) -> str:
    style = HEALTH_STYLE.get(health)
    return f"[{style}]{health}[/{style}]" if style else health


def ago(value: str | datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "never"
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = max(0, int(((now or datetime.now(UTC)) - when).total_seconds()))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    if seconds < 172800:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def short(sha: str | None, length: int = 8) -> str:
    if not sha:
        return "-"
    return sha.removeprefix("sha256:")[:length]


def render(data: Any, output: str, to_table: Callable[[Any], Any]) -> None:
    if output == "table":
        console().print(to_table(data))
    else:
        emit_data(data, output)
