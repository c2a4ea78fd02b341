"""`fleet sim`: run simulated Kubernetes clusters (kubesim) and drive their faults.

`fleet sim up` writes a kubeconfig with one context per cluster. The admin endpoint's URL
and token go into that kubeconfig's top-level `extensions` list (entry name `kubesim`),
which is where `fleet sim fault` and `fleet sim counters` read them from.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import click
import httpx
import yaml

FAULT_HELP = """Inject a fault into one simulated cluster.

\b
ACTION and its arguments:
  api-down [on|off]            stop (or restart) the cluster's API listener
  api-up                       same as `api-down off`
  latency SECONDS              add latency to every request (0 to clear)
  error-rate RATE              answer a share (0..1) of requests with 500/503
  node-ready NODE true|false   mark a node Ready or NotReady
  stuck KIND NAMESPACE/NAME [on|off]   keep a workload from becoming available
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def sim() -> None:
    """Run simulated Kubernetes clusters (kubesim) for demos, tests and scale runs.

    `fleet sim up` writes a kubeconfig with one context per cluster (context name ==
    cluster name). The admin endpoint (faults, counters) is recorded in that file's
    top-level `extensions` entry named `kubesim`, which `fleet sim fault` and
    `fleet sim counters` read via --kubeconfig.
    """


def _cluster_names(count: int, names: str | None) -> list[str]:
    if names:
        result = [n.strip() for n in names.split(",") if n.strip()]
        if len(set(result)) != len(result):
            raise click.BadParameter("cluster names must be unique", param_hint="--names")
        return result
    return [f"sim-{index}" for index in range(1, count + 1)]


@sim.command()
@click.option("--clusters", "count", type=click.IntRange(1, 1000), default=3, show_default=True,
              help="How many clusters (named sim-1..sim-N unless --names is given).")
@click.option("--kubeconfig", "kubeconfig_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("./sim.kubeconfig"), show_default=True, help="Where to write the kubeconfig (mode 0600).")
@click.option("--names", help="Comma-separated cluster names (overrides --clusters).")
@click.option("--http", "plain_http", is_flag=True, help="Serve plain HTTP instead of HTTPS.")
@click.option("--controller-delay", type=click.FloatRange(0), default=0.5, show_default=True,
              help="Seconds before simulated controllers react (workloads become ready).")
@click.option("--nodes", type=click.IntRange(0, 100), default=3, show_default=True, help="Nodes per cluster.")
@click.option("--port", "first_port", type=click.IntRange(0, 65535), default=0,
              help="First API port (clusters take consecutive ports); 0 picks free ports.")
@click.option("--admin-port", type=click.IntRange(0, 65535), default=0, help="Admin endpoint port; 0 picks one.")
def up(
    count: int, kubeconfig_path: Path, names: str | None, plain_http: bool, controller_delay: float, nodes: int,
    first_port: int, admin_port: int,
) -> None:  # fmt: skip
    """Start simulated clusters, write the kubeconfig, and run until Ctrl-C / SIGTERM."""
    from fleet.kubesim import Simulator

    cluster_names = _cluster_names(count, names)
    simulator = Simulator(tls=not plain_http, controller_delay=controller_delay, nodes_per_cluster=nodes)
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    simulator.start()
    try:
        for index, name in enumerate(cluster_names):
            simulator.add_cluster(name, port=first_port + index if first_port else None)
        admin_url = simulator.start_admin(admin_port or None)
        simulator.write_kubeconfig(kubeconfig_path)
        click.echo(
            f"kubesim ready: {len(cluster_names)} clusters ({', '.join(cluster_names)}); "
            f"kubeconfig {kubeconfig_path}; admin {admin_url}",
            nl=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        simulator.stop()
    click.echo("kubesim stopped")


def _admin(kubeconfig_path: Path) -> tuple[str, str]:
    from fleet.kubesim.kubeconfig import admin_endpoint

    try:
        config = yaml.safe_load(kubeconfig_path.read_text()) or {}
    except OSError as error:
        raise click.ClickException(f"cannot read {kubeconfig_path}: {error.strerror}") from None
    endpoint = admin_endpoint(config)
    if endpoint is None:
        raise click.ClickException(f"{kubeconfig_path} has no kubesim admin endpoint (was it written by `fleet sim up`?)")
    return endpoint


def _call(kubeconfig_path: Path, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
    url, token = _admin(kubeconfig_path)
    try:
        response = httpx.request(method, f"{url}{path}", json=payload, headers={"Authorization": f"Bearer {token}"},
                                 timeout=30)  # fmt: skip
    except httpx.HTTPError as error:
        raise click.ClickException(f"kubesim admin endpoint {url} is not reachable: {error}") from None
    body = response.json() if response.content else {}
    if response.status_code != 200:
        raise click.ClickException(str(body.get("error", response.text)))
    return body


def _switch(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("on", "true", "yes", "1"):
        return True
    if lowered in ("off", "false", "no", "0"):
        return False
    raise click.BadParameter(f"expected on/off or true/false, got {value!r}")


def fault_payload(action: str, args: tuple[str, ...]) -> dict[str, Any]:
    """The admin request for one `fleet sim fault` action (pure, for testing)."""
    if action == "api-down":
        return {"api_down": _switch(args[0]) if args else True}
    if action == "api-up":
        return {"api_down": False}
    if action in ("latency", "error-rate"):
        if len(args) != 1:
            raise click.UsageError(f"{action} takes one number")
        try:
            value = float(args[0])
        except ValueError:
            raise click.BadParameter(f"not a number: {args[0]!r}") from None
        return {"latency": value} if action == "latency" else {"error_rate": value}
    if action == "node-ready":
        if len(args) != 2:
            raise click.UsageError("node-ready takes NODE and true|false")
        return {"node_ready": {"node": args[0], "ready": _switch(args[1])}}
    if action == "stuck":
        if len(args) not in (2, 3) or "/" not in args[1]:
            raise click.UsageError("stuck takes KIND NAMESPACE/NAME [on|off]")
        namespace, name = args[1].split("/", 1)
        return {"stuck": {"kind": args[0], "namespace": namespace, "name": name,
                          "stuck": _switch(args[2]) if len(args) == 3 else True}}  # fmt: skip
    raise click.UsageError(f"unknown fault {action!r}")


@sim.command(help=FAULT_HELP)
@click.option("--kubeconfig", "kubeconfig_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=Path("./sim.kubeconfig"), show_default=True)
@click.option("--cluster", required=True, help="Cluster (context) name.")
@click.argument("action", type=click.Choice(["api-down", "api-up", "latency", "error-rate", "node-ready", "stuck"]))
@click.argument("args", nargs=-1)
def fault(kubeconfig_path: Path, cluster: str, action: str, args: tuple[str, ...]) -> None:
    payload = fault_payload(action, args)
    _call(kubeconfig_path, "POST", f"/clusters/{cluster}/faults", payload)
    click.echo(f"{cluster}: {action} {' '.join(args)}".rstrip())


@sim.command()
@click.option("--kubeconfig", "kubeconfig_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=Path("./sim.kubeconfig"), show_default=True)
@click.option("--cluster", help="Only this cluster.")
@click.option("--reset", is_flag=True, help="Reset the counters after reading them.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def counters(kubeconfig_path: Path, cluster: str | None, reset: bool, as_json: bool) -> None:
    """Requests per verb for each simulated cluster."""
    names = [cluster] if cluster else sorted(_call(kubeconfig_path, "GET", "/clusters"))
    result = {name: _call(kubeconfig_path, "GET", f"/clusters/{name}/counters") for name in names}
    if reset:
        for name in names:
            _call(kubeconfig_path, "POST", f"/clusters/{name}/counters/reset")
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
        return
    verbs = ["get", "list", "watch", "create", "update", "patch", "delete", "total", "discovery"]
    click.echo("CLUSTER".ljust(20) + "".join(v.upper().rjust(10) for v in verbs))
    for name, values in result.items():
        click.echo(name.ljust(20) + "".join(str(values.get(v, 0)).rjust(10) for v in verbs))
