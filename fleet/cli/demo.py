"""`fleet demo`: see the whole product in one command."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--interactive/--no-interactive", default=True, show_default=True,
              help="stay up after the script so you can poke at it (Ctrl-C stops); "
              "--no-interactive exits 0 on success")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="keep everything here (default: a new temp dir)")
@click.option("--keep", is_flag=True, help="keep the temp dir after a --no-interactive run")
def demo(interactive: bool, data_dir: Path | None, keep: bool) -> None:
    """Three kubesim clusters, a dev Vault, the hub and its agents: converge, ship a change,
    revert a kubectl edit, rotate a secret, fail over a region and rebuild a cluster from Git."""
    from fleet.demo.script import DemoFailed, run_demo

    try:
        run_demo(data_dir, interactive=interactive, keep=keep)
    except DemoFailed as exc:
        raise click.ClickException(f"demo failed: {exc}") from None
