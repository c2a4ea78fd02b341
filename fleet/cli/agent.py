"""`fleet agent`: run the pull agent in (or next to) a cluster."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

log = logging.getLogger("fleet.agent")

STOP_GRACE_SECONDS = 5.0


def _default_state_dir(cluster: str) -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "fleet-agent" / cluster


@click.group()
def agent() -> None:
    """The pull agent that applies a cluster's desired state from the hub."""


@agent.command("run")
@click.option("--hub", "hub_url", required=True, envvar="FLEET_HUB_URL", help="hub base URL, e.g. https://hub:8443")
@click.option("--cluster", required=True, envvar="FLEET_CLUSTER", help="this cluster's name in the fleet repo")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="FLEET_TOKEN_FILE",
    help="one-time bootstrap token; read at registration and when the hub rejects the credential",
)
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), help="kubeconfig file")
@click.option("--context", help="kubeconfig context")
@click.option("--in-cluster", is_flag=True, help="use the pod's service account")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), help="local state (0600 files)")
@click.option("--key-store", type=click.Choice(["file", "secret"]), default="file", show_default=True,
              help="where the age identity and credential live: the state dir or the Secret fleet-system/fleet-agent-<cluster>")
@click.option("--allow-mass-prune", is_flag=True, help="allow a prune above the desired state's maxDeleteShare")
@click.option("--hub-ca", type=click.Path(dir_okay=False, path_type=Path), help="CA bundle for the hub's TLS")
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True, help="parallel applies per wave")
@click.option("--heartbeat-every", type=click.IntRange(1, 1000), default=4, show_default=True,
              help="report status at least every N cycles")
@click.option("--once", is_flag=True, help="run one cycle and exit (non-zero if it failed)")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True)
def run(
    hub_url: str,
    cluster: str,
    token_file: Path | None,
    kubeconfig: Path | None,
    context: str | None,
    in_cluster: bool,
    state_dir: Path | None,
    key_store: str,
    allow_mass_prune: bool,
    hub_ca: Path | None,
    concurrency: int,
    heartbeat_every: int,
    once: bool,
    log_level: str,
) -> None:
    """Run the agent: poll the hub, apply, prune, revert drift, report."""
    from fleet.agent import logs
    from fleet.agent.hubclient import HubClient
    from fleet.agent.kube import Kube
    from fleet.agent.loop import AGENT_VERSION, Agent, AgentConfig
    from fleet.secrets.redact import Redactor

    if in_cluster and (kubeconfig or context):
        raise click.UsageError("--in-cluster cannot be combined with --kubeconfig/--context")
    redactor = Redactor()
    logs.configure(log_level, redactor=redactor)
    kube = Kube.in_cluster(pool_size=concurrency + 4) if in_cluster else Kube.from_kubeconfig(
        str(kubeconfig) if kubeconfig else None, context, pool_size=concurrency + 4
    )
    hub = HubClient(hub_url, cluster, verify=str(hub_ca) if hub_ca else True, agent_version=AGENT_VERSION)
    config = AgentConfig(
        cluster=cluster,
        token_file=token_file,
        state_dir=state_dir or _default_state_dir(cluster),
        key_store="secret" if key_store == "secret" else "file",
        allow_mass_prune=allow_mass_prune,
        concurrency=concurrency,
        heartbeat_every=heartbeat_every,
    )
    runner = Agent(config, kube, hub, redactor=redactor)
    log.info("agent-start", extra=logs.fields(cluster=cluster, hub=hub_url, version=AGENT_VERSION, keyStore=key_store))
    try:
        if once:
            outcome = runner.run_once(check_drift=True)
            if outcome.errors:
                sys.exit(1)
            return
        stop = threading.Event()

        def _stop(signum: int, _frame: FrameType | None) -> None:
            log.info("agent-stop", extra=logs.fields(signal=signal.Signals(signum).name))
            stop.set()
            # A cycle stuck in hub retries or a slow apply must not hold up a shutdown: everything the
            # agent keeps is written atomically and server-side apply is idempotent, so exiting mid-cycle
            # is as safe as a crash.
            watchdog = threading.Timer(STOP_GRACE_SECONDS, os._exit, args=(0,))
            watchdog.daemon = True
            watchdog.start()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        runner.run_forever(stop)
    finally:
        runner.close()
        hub.close()
        kube.close()


@agent.command("install")
@click.argument("cluster")
@click.option("--agent-hub-url", default=None, help="URL the in-cluster agent uses to reach the hub (default: the hub's)")
@click.option("--image", default=None, help="agent image (default: the fleet image of this version)")
@click.option("--hub", "hub_url", envvar="FLEET_HUB", default=None, help="hub URL for this command")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), envvar="FLEET_DATA_DIR", default=None)
def install(cluster: str, agent_hub_url: str | None, image: str | None, hub_url: str | None, data_dir: Path | None) -> None:
    """Install the agent in CLUSTER once, through the hub's provider credentials.

    Renders deploy/agent/ (namespace, service account, least-privilege RBAC, a one-time
    bootstrap token Secret, Deployment) and applies it; the agent then pulls everything else.
    """
    from fleet.cli.client import HubClient

    result = HubClient.from_options(hub_url, data_dir).post(
        f"/v1/admin/clusters/{cluster}/install", {"hubUrl": agent_hub_url, "image": image}
    )
    for key in result["applied"]:
        click.echo(f"applied {key}")
    click.echo(f"agent installed in {cluster}; it bootstraps with a one-time token and then pulls its desired state")
