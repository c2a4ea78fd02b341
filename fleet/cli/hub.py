"""`fleet hub run`: the hub daemon."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from fleet.hub.datadir import default_data_dir


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    # Library chatter (every scheduler run, every migration step) drowns what operators need.
    for noisy in ("apscheduler", "alembic", "httpx", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


@click.group()
def hub() -> None:
    """The hub: tracks the fleet repo and serves each cluster's desired state."""


@hub.command("run")
@click.option("--repo", required=True, help="fleet repo URL (file://, https://, ssh://) or path")
@click.option("--branch", default="main", show_default=True, help="branch to track")
@click.option("--database-url", envvar="FLEET_DATABASE_URL", default=None, help="default: SQLite in the data dir")
@click.option("--listen", default="127.0.0.1:8700", show_default=True, help="host:port for the API")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="FLEET_DATA_DIR",
    default=None,
    help="where the hub keeps its database, checkouts and keys (default ~/.local/share/fleet)",
)
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="KUBECONFIG",
    default=None,
    help="kubeconfig for clusters with provider type kubeconfig and no path",
)
@click.option("--dispatch", type=click.Choice(["none", "local", "threads"]), default="none", show_default=True,
              help="local: run one agent process per kubeconfig cluster on this machine; "
              "threads: run those agents inside the hub process (light, for scale runs)")
@click.option("--public-url", default=None, help="URL agents use to reach the hub (default http://<listen>)")
@click.option("--signing-mode", type=click.Choice(["off", "warn", "enforce"]), default=None,
              help="override fleet.yaml's signing mode")
@click.option("--trusted-key", "trusted_keys", multiple=True, help="trusted signing key fingerprint (repeatable)")
@click.option("--gnupghome", type=click.Path(path_type=Path, file_okay=False), envvar="GNUPGHOME", default=None)
@click.option("--fetch-timeout", type=float, default=60.0, show_default=True)
@click.option("--tls-cert", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="serve HTTPS with this certificate (PEM); agents take the CA with --hub-ca")
@click.option("--tls-key", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None)
@click.option("--log-level", default="info", show_default=True)
def run(
    repo: str,
    branch: str,
    database_url: str | None,
    listen: str,
    data_dir: Path | None,
    kubeconfig: Path | None,
    dispatch: str,
    public_url: str | None,
    signing_mode: str | None,
    trusted_keys: tuple[str, ...],
    gnupghome: Path | None,
    fetch_timeout: float,
    tls_cert: Path | None,
    tls_key: Path | None,
    log_level: str,
) -> None:
    """Run the hub until interrupted."""
    configure_logging(log_level)
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    from fleet.hub.core import Hub, HubConfig
    from fleet.hub.daemon import HubDaemon

    if "://" not in repo and Path(repo).exists():
        repo = Path(repo).resolve().as_uri()
    config = HubConfig(
        repo=repo,
        data_dir=(data_dir or default_data_dir()).resolve(),
        branch=branch,
        database_url=database_url,
        listen=listen,
        kubeconfig=kubeconfig.resolve() if kubeconfig else None,
        dispatch="none" if dispatch == "none" else "local",
        signing_mode=signing_mode,
        trusted_keys=trusted_keys,
        gnupghome=gnupghome,
        fetch_timeout=fetch_timeout,
        public_url=public_url,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    hub_instance = Hub(config)
    for handler in logging.getLogger().handlers:
        handler.addFilter(hub_instance.secrets.redactor.filter())
    daemon = HubDaemon(hub_instance)
    if dispatch != "none":
        from fleet.hub.dispatch import install_local_dispatch

        install_local_dispatch(daemon, mode=dispatch)
    click.echo(f"fleet hub listening on {config.url} (data dir {config.data_dir})", err=True)
    daemon.serve()
