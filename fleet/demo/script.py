"""`fleet demo`: the whole product on one laptop, no cloud account, no Docker.

Three kubesim clusters, a dev Vault, a local AWS for Route53, a fleet repo
made from the project's example, and the hub with one pull agent per cluster.
Then the story: converge, ship an image bump, revert a kubectl edit, rotate a
Vault secret, lose a region and fail over, and rebuild a wiped cluster from Git.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import git
import httpx
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from fleet.cli.output import console as output_console
from fleet.demo.services import DevVault, HubProcess, LocalAws, ServiceError, free_port

CLUSTERS = ("dev", "prod-us-east", "prod-us-west")
FAILOVER_GROUP = "prod"
PRIMARY, STANDBY = "prod-us-east", "prod-us-west"
DNS_RECORD = "payments.fleet.demo"
DNS_TARGETS = {PRIMARY: "lb.us-east-1.fleet.demo", STANDBY: "lb.us-west-2.fleet.demo"}
VAULT_REF = "vault:kv/shared/payments-db#password"
STEP_TIMEOUT = 120.0


class DemoFailed(Exception):
    pass


def project_root() -> Path:
    """The example fleet ships with the source tree (`pip install -e .`)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "clusters").is_dir() or not (root / "apps").is_dir():
        raise DemoFailed(
            f"the example fleet (clusters/, apps/, secrets/) was not found next to the package in {root}; "
            "run the demo from a source checkout installed with `pip install -e .`"
        )
    return root


@dataclass
class Timings:
    values: dict[str, float] = field(default_factory=dict)

    def record(self, name: str, seconds: float) -> None:
        self.values[name] = round(seconds, 1)


class WebhookReceiver:
    """Stands in for Slack: records the failover notifications the hub sends."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
                with contextlib.suppress(ValueError):
                    receiver.messages.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/fleet"

    def start(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Demo:
    def __init__(self, base: Path, *, interactive: bool, console: Console, controller_delay: float = 0.5) -> None:
        self.base = base
        self.interactive = interactive
        self.out = console
        self.controller_delay = controller_delay
        self.timings = Timings()
        self.stack = contextlib.ExitStack()
        self.kubeconfig = base / "sim.kubeconfig"
        self.origin = base / "fleet-origin.git"
        self.work = base / "fleet-repo"
        self.hub_dir = base / "hub"
        self.sim: Any = None
        self.vault: DevVault | None = None
        self.aws: LocalAws | None = None
        self.hub: HubProcess | None = None
        self.webhook: WebhookReceiver | None = None
        self.http: httpx.Client | None = None
        self.zone_id = ""
        self._step = 0

    # ------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        self._step += 1
        self.out.print(f"\n[bold cyan]{self._step}. {title}[/bold cyan]")
        started = time.monotonic()
        yield
        self.out.print(f"   [green]done[/green] [dim]({time.monotonic() - started:.1f}s)[/dim]")

    def say(self, text: str) -> None:
        self.out.print(f"   {text}")

    def api(self, method: str, path: str, body: Any = None) -> Any:
        assert self.http is not None
        response = self.http.request(method, path, json=body)
        if response.status_code >= 400:
            raise DemoFailed(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def wait_for(
        self, what: str, check: Callable[[], bool], timeout: float = STEP_TIMEOUT, show_status: bool = True
    ) -> float:
        """Poll `check` until true, showing the fleet's status; returns the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout

        def view() -> RenderableType:
            waited = time.monotonic() - started
            parts: list[RenderableType] = [Text(f"   waiting for {what} ({waited:.0f}s)", style="dim")]
            if show_status:
                with contextlib.suppress(Exception):
                    from fleet.cli.status import fleet_view

                    parts.append(fleet_view(self.api("GET", "/v1/admin/status")))
            return Group(*parts)

        with Live(view(), console=self.out, refresh_per_second=4, transient=True) as live:
            while True:
                with contextlib.suppress(httpx.HTTPError, DemoFailed, KeyError, TypeError):
                    if check():
                        break
                if time.monotonic() > deadline:
                    raise DemoFailed(f"timed out after {timeout:.0f}s waiting for {what}")
                time.sleep(0.25)
                live.update(view())
        return time.monotonic() - started

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.api("GET", "/v1/admin/status")
        return result

    def converged(self, revision: str | None = None) -> bool:
        status = self.status()
        rows = {c["name"]: c for c in status["clusters"]}
        if set(CLUSTERS) - set(rows):
            return False
        for name in CLUSTERS:
            row = rows[name]
            if not (row["inSync"] and row["health"] == "Healthy"):
                return False
            if revision is not None and row["desiredRevision"] != revision:
                return False
        return True

    def deployment(self, cluster: str, namespace: str, name: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.sim.clusters[cluster].get_object("apps/v1", "Deployment", namespace, name)
        return found

    def available(self, cluster: str, namespace: str, name: str, replicas: int | None = None) -> bool:
        deploy = self.deployment(cluster, namespace, name)
        if deploy is None:
            return False
        spec, status = deploy.get("spec", {}), deploy.get("status", {})
        want = spec.get("replicas", 1)
        return (
            (replicas is None or want == replicas)
            and status.get("observedGeneration") == deploy["metadata"].get("generation")
            and status.get("availableReplicas", 0) == want
            and status.get("updatedReplicas", 0) == want
        )

    def commit_and_push(self, message: str) -> str:
        repo = git.Repo(self.work)
        repo.git.add(A=True)
        repo.git.commit("-m", message)
        repo.git.push("origin", "HEAD:main")
        return repo.head.commit.hexsha

    def notify_hub_of_push(self) -> None:
        """What a Git server's push webhook does: a signed POST that makes the hub poll now."""
        secret = (self.hub_dir / "webhook.secret").read_text().strip()
        body = json.dumps({"ref": "refs/heads/main"}).encode()
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert self.http is not None
        response = self.http.post(
            "/v1/hooks/git", content=body, headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"}
        )
        if response.status_code != 202:
            raise DemoFailed(f"webhook refused: {response.status_code} {response.text}")

    # ------------------------------------------------------------ steps

    def start_clusters(self) -> None:
        from fleet.kubesim import Simulator

        with self.step("Starting three Kubernetes clusters (kubesim)"):
            self.sim = Simulator(tls=True, controller_delay=self.controller_delay)
            self.sim.start()
            self.stack.callback(self.sim.stop)
            for name in CLUSTERS:
                self.sim.add_cluster(name)
            self.sim.start_admin()
            self.sim.write_kubeconfig(self.kubeconfig)
            for name in CLUSTERS:
                self.say(f"{name:<14} {self.sim.clusters[name].url}")
            self.say(f"kubeconfig: {self.kubeconfig}")

    def start_services(self) -> None:
        with self.step("Starting a dev Vault (OpenBao) and a local AWS (moto) for Route53"):
            self.vault = DevVault(self.base / "vault").start(transit=False)
            self.stack.callback(self.vault.stop)
            # The application's database password lives only in Vault.
            self.vault.client().secrets.kv.v2.create_or_update_secret(
                path="shared/payments-db", secret={"password": os.urandom(12).hex()}, mount_point="kv"
            )
            self.say(f"Vault {self.vault.addr}: kv/shared/payments-db written (the value is never shown)")
            self.aws = LocalAws().start()
            self.stack.callback(self.aws.stop)
            route53: Any = self.aws.client("route53")
            zone = route53.create_hosted_zone(Name="fleet.demo.", CallerReference=str(time.time()))
            self.zone_id = zone["HostedZone"]["Id"].split("/")[-1]
            self.say(f"Route53 zone fleet.demo. ({self.zone_id}) on {self.aws.url}")
            self.webhook = WebhookReceiver().start()
            self.stack.callback(self.webhook.stop)

    def make_repo(self) -> None:
        from ruamel.yaml import YAML

        root = project_root()
        with self.step("Creating the fleet repo from the example (clusters/, apps/, secrets/)"):
            git.Repo.init(self.origin, bare=True, initial_branch="main")
            repo = git.Repo.init(self.work, initial_branch="main")
            with repo.config_writer() as cfg:
                cfg.set_value("user", "name", "Demo User")
                cfg.set_value("user", "email", "demo@fleet.local")
                cfg.set_value("commit", "gpgsign", "false")
            repo.create_remote("origin", self.origin.as_uri())
            for name in ("clusters", "apps", "secrets"):
                shutil.copytree(root / name, self.work / name)
            for name in ("fleet.yaml", ".sops.yaml"):
                shutil.copy(root / name, self.work / name)
            shutil.copy(root / "demo" / "age.key", self.base / "age.key")
            (self.base / "age.key").chmod(0o600)
            yaml = YAML()
            settings_path = self.work / "fleet.yaml"
            settings = yaml.load(settings_path.read_text())
            group = settings["failover"]["groups"][FAILOVER_GROUP]
            group["dns"] = {"zoneId": self.zone_id, "record": DNS_RECORD, "type": "CNAME", "ttl": 60, "targets": DNS_TARGETS}
            assert self.webhook is not None
            group["webhook"] = self.webhook.url
            with settings_path.open("w") as handle:
                yaml.dump(settings, handle)
            sha = self.commit_and_push("Example fleet: 3 clusters, base/web/payments apps")
            self.say(f"{self.work} -> {self.origin.as_uri()} at {sha[:8]}")

    def start_hub(self) -> None:
        with self.step("Starting the hub (SQLite) with one pull agent per cluster"):
            port = free_port()
            assert self.vault is not None and self.aws is not None
            demo_env = {**self.vault.env(), **self.aws.env(), "SOPS_AGE_KEY_FILE": str(self.base / "age.key")}
            env = {**os.environ, **demo_env}
            args = [
                "--repo", self.origin.as_uri(),
                "--data-dir", str(self.hub_dir),
                "--kubeconfig", str(self.kubeconfig),
                "--dispatch", "local",
            ]  # fmt: skip
            self.hub = HubProcess(args, env, self.base / "hub.log", port).start()
            self.write_restart_script(args, port, demo_env)
            self.stack.callback(self.hub.stop)
            token = (self.hub_dir / "admin.token").read_text().strip()
            self.http = httpx.Client(base_url=self.hub.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            self.stack.callback(self.http.close)
            self.say(f"hub {self.hub.url}, data dir {self.hub_dir}, log {self.base / 'hub.log'}")
            took = self.wait_for("all three clusters to converge", self.converged)
            self.timings.record("initial convergence", took)
            self.say(f"all clusters Healthy and in sync after {took:.1f}s")

    def write_restart_script(self, args: list[str], port: int, env: dict[str, str]) -> None:
        """So a user can stop the hub and start it again by hand, on the same data dir."""
        import shlex

        lines = ["#!/bin/sh", "# Start the demo's hub again (after stopping it), with the demo's dev services."]
        lines += [f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())]
        command = [sys.executable, "-m", "fleet", "hub", "run", "--listen", f"127.0.0.1:{port}", *args]
        lines.append("exec " + " ".join(shlex.quote(part) for part in command))
        script = self.base / "restart-hub.sh"
        script.write_text("\n".join(lines) + "\n")
        script.chmod(0o700)  # holds the dev Vault's token

    def image_bump(self) -> None:
        with self.step("Shipping a change through Git: web nginx:1.27 -> nginx:1.28"):
            path = self.work / "apps" / "web" / "deployment.yaml"
            path.write_text(path.read_text().replace("image: nginx:1.27", "image: nginx:1.28"))
            started = time.monotonic()
            sha = self.commit_and_push("web: nginx 1.28")
            self.notify_hub_of_push()

            def rolled_out() -> bool:
                return self.converged(sha) and all(
                    self.available(c, "web", "web")
                    and (self.deployment(c, "web", "web") or {})["spec"]["template"]["spec"]["containers"][0]["image"]
                    == "nginx:1.28"
                    for c in CLUSTERS
                )

            self.wait_for("the new image on every cluster", rolled_out)
            took = time.monotonic() - started
            self.timings.record("commit to 3 clusters converged", took)
            self.say(f"commit {sha[:8]} -> all 3 clusters running nginx:1.28 and Healthy in [bold]{took:.1f}s[/bold]")

    def drift(self) -> None:
        with self.step(f"Someone runs `kubectl scale deploy/web --replicas 7` on {PRIMARY}"):
            self.kubectl(PRIMARY, "-n", "web", "scale", "deploy/web", "--replicas=7")
            self.say("replicas now " + str((self.deployment(PRIMARY, "web", "web") or {})["spec"]["replicas"]))
            started = time.monotonic()

            def reverted() -> bool:
                deploy = self.deployment(PRIMARY, "web", "web") or {}
                events = self.api("GET", f"/v1/admin/events?cluster={PRIMARY}&limit=20")
                drifted = any(e["kind"] == "drift" and "web/web" in e["message"] for e in events)
                return drifted and deploy["spec"]["replicas"] == 3

            self.wait_for("the agent to revert the drift", reverted)
            took = time.monotonic() - started
            self.timings.record("drift reverted", took)
            self.say(f"the agent reported the drift and put replicas back to 3 (Git's value) in {took:.1f}s")

    def kubectl(self, cluster: str, *args: str) -> None:
        kubectl = shutil.which("kubectl")
        if kubectl is not None:
            subprocess.run(
                [kubectl, "--kubeconfig", str(self.kubeconfig), "--context", cluster, *args],
                check=True,
                capture_output=True,
            )
            return
        # Without kubectl, make the same edit the same way kubectl would: a patch by another field manager.
        from kubernetes import client, config

        api = client.AppsV1Api(config.new_client_from_config(str(self.kubeconfig), context=cluster))
        namespace, name, replicas = args[1], args[3].split("/")[1], int(args[4].split("=")[1])
        api.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": replicas}}, field_manager="kubectl")

    def _secret_matches_vault(self, cluster: str) -> bool:
        import base64

        assert self.vault is not None
        secret = self.sim.clusters[cluster].get_object("v1", "Secret", "payments", "payments-db")
        if secret is None or "password" not in (secret.get("data") or {}):
            return False
        data = self.vault.client().secrets.kv.v2.read_secret_version(path="shared/payments-db", mount_point="kv")
        expected = data["data"]["data"]["password"]
        return bool(base64.b64decode(secret["data"]["password"]).decode() == expected)

    def _checksum(self, cluster: str) -> str | None:
        deploy = self.deployment(cluster, "payments", "payments") or {}
        annotations = deploy.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {})
        value = annotations.get("fleet.dev/secrets-checksum")
        return str(value) if value else None

    def secrets(self) -> None:
        with self.step("Secrets: a SOPS file and a Vault value, sealed to each agent's own key"):
            self.wait_for("payments-db to match Vault", lambda: self._secret_matches_vault(PRIMARY), show_status=False)
            registry = self.sim.clusters["dev"].get_object("v1", "Secret", "web", "registry-credentials")
            self.say(
                f"{PRIMARY}: Secret payments/payments-db matches Vault; every cluster has web/registry-credentials "
                f"from secrets/common (SOPS, keys {sorted((registry or {}).get('data', {}))})"
            )
            before = self._checksum(PRIMARY)
            started = time.monotonic()
            result = self.api("POST", "/v1/admin/secrets/rotate", {"ref": VAULT_REF, "generate": 32})
            self.say(f"rotated {VAULT_REF}: version {result['oldVersion']} -> {result['newVersion']}")

            def rolled() -> bool:
                return (
                    self._secret_matches_vault(PRIMARY)
                    and self._checksum(PRIMARY) not in (None, before)
                    and self.available(PRIMARY, "payments", "payments")
                )

            self.wait_for("the new password to reach prod and roll the payments pods", rolled)

            def complete() -> dict[str, Any] | None:
                rows = [r for r in self.api("GET", "/v1/admin/secrets") if r["ref"] == VAULT_REF]
                return rows[0] if rows and rows[0]["state"] == "complete" else None

            self.wait_for("`fleet secrets status` to report the rollout complete", lambda: complete() is not None)
            took = time.monotonic() - started
            self.timings.record("secret rotation rolled out", took)
            row = complete() or {}
            self.say(
                f"`fleet secrets status`: {row.get('ref')} version {row.get('current')} {row.get('state')} "
                f"on {', '.join(row.get('onCurrent', []))}"
            )
            self.say(f"rotation reached its target and rolled the consuming Deployment in {took:.1f}s")

    def failover(self) -> None:
        with self.step(f"Losing a region: {PRIMARY}'s API goes down"):
            self.sim.clusters[PRIMARY].faults.api_down(True)
            started = time.monotonic()
            route53: Any = self.aws.client("route53") if self.aws else None

            def dns_value() -> str | None:
                records = route53.list_resource_record_sets(HostedZoneId=self.zone_id)["ResourceRecordSets"]
                for record in records:
                    if record["Name"].rstrip(".") == DNS_RECORD:
                        return str(record["ResourceRecords"][0]["Value"])
                return None

            def failed_over() -> bool:
                groups = {g["name"]: g for g in self.api("GET", "/v1/admin/failover")}
                return (
                    groups[FAILOVER_GROUP]["active"] == STANDBY
                    and self.available(STANDBY, "payments", "payments", replicas=2)
                    and self._secret_matches_vault(STANDBY)
                    and dns_value() == DNS_TARGETS[STANDBY]
                )

            self.wait_for(f"payments to run on {STANDBY}", failed_over)
            took = time.monotonic() - started
            self.timings.record("failover recovery", took)
            group = {g["name"]: g for g in self.api("GET", "/v1/admin/failover")}[FAILOVER_GROUP]
            self.say(
                f"payments Healthy on {STANDBY} (epoch {group['epoch']}) and {DNS_RECORD} -> {dns_value()} "
                f"[bold]{took:.1f}s[/bold] after the region went down"
            )
            assert self.webhook is not None
            if self.webhook.messages:
                self.say(f"webhook notified: {self.webhook.messages[-1]['text'][:110]}")

        with self.step(f"{PRIMARY} comes back: it stands down instead of fighting"):
            self.sim.clusters[PRIMARY].faults.api_down(False)
            self.wait_for(
                f"{PRIMARY} to scale payments to 0", lambda: self.available(PRIMARY, "payments", "payments", replicas=0)
            )
            self.say(f"{PRIMARY} received epoch {group['epoch']} and scaled payments to 0")

        with self.step(f"`fleet failback {FAILOVER_GROUP}`"):
            self.api("POST", f"/v1/admin/failback/{FAILOVER_GROUP}")

            def back() -> bool:
                return self.available(PRIMARY, "payments", "payments", replicas=2) and (
                    self.deployment(STANDBY, "payments", "payments") is None
                ) and dns_value() == DNS_TARGETS[PRIMARY]

            self.wait_for(f"payments back on {PRIMARY}", back)
            self.say(f"payments back on {PRIMARY}, removed from {STANDBY}, DNS points at us-east again")

    def recover(self) -> None:
        with self.step("Disaster recovery: the dev cluster loses everything"):
            self.sim.clusters["dev"].wipe()
            self.say("dev wiped (no namespaces, no workloads)")
            started = time.monotonic()
            self.api("POST", "/v1/admin/clusters/dev/recover", {})
            self.wait_for(
                "dev to be rebuilt from Git",
                lambda: self.available("dev", "web", "web")
                and self.sim.clusters["dev"].get_object("v1", "Secret", "web", "registry-credentials") is not None
                and self.converged(),
            )
            took = time.monotonic() - started
            self.timings.record("cluster rebuilt from Git", took)
            self.say(f"`fleet recover dev` rebuilt it from Git, secrets included, in {took:.1f}s")

    def summary(self) -> None:
        from fleet.cli.status import fleet_view

        self.out.print()
        self.out.print(fleet_view(self.status()))
        self.out.print("\n[bold]Timings[/bold]")
        for name, seconds in self.timings.values.items():
            self.out.print(f"   {name:<34} {seconds:>6.1f}s")

    def instructions(self) -> None:
        assert self.hub is not None
        self.out.print(
            f"""
[bold]The demo is still running.[/bold] In another terminal:

  export KUBECONFIG={self.kubeconfig}
  export FLEET_HUB={self.hub.url}
  export FLEET_DATA_DIR={self.hub_dir}      # the CLI finds the admin token here

  fleet status                                  # the whole fleet; add --watch
  kubectl --context prod-us-east -n web scale deploy/web --replicas 7
  fleet status prod-us-east                     # see the drift, then see it reverted
  cd {self.work} && $EDITOR apps/web/deployment.yaml && git commit -am 'my change' && git push
  fleet events -f                               # the audit trail
  fleet sim fault --kubeconfig {self.kubeconfig} --cluster prod-us-east api-down on
  fleet failover prod --to prod-us-west          # or let the automatic policy do it
  pkill -f 'agent run .*--cluster dev'           # the hub restarts the agent
  kill {self.hub.process.pid if self.hub.process else '<hub pid>'}                                     # stop the hub: the clusters stay as they are
  {self.base / 'restart-hub.sh'}   # start it again: its state is intact

Press Ctrl-C to stop everything."""
        )

    # ------------------------------------------------------------ run

    def run(self) -> Timings:
        with self.stack:
            self.start_clusters()
            self.start_services()
            self.make_repo()
            self.start_hub()
            self.image_bump()
            self.drift()
            self.secrets()
            self.failover()
            self.recover()
            self.summary()
            if self.interactive:
                self.instructions()
                with contextlib.suppress(KeyboardInterrupt):
                    while True:  # the hub may be stopped and restarted by hand meanwhile
                        time.sleep(1)
                self.out.print("\nstopping...")
        return self.timings


def run_demo(
    data_dir: Path | None, *, interactive: bool, keep: bool, console: Console | None = None
) -> Timings:
    out = console or output_console()
    base = data_dir or Path(tempfile.mkdtemp(prefix="fleet-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    out.print(f"[bold]fleet demo[/bold] in {base}")
    try:
        return Demo(base, interactive=interactive, console=out).run()
    except ServiceError as exc:
        raise DemoFailed(str(exc)) from None
    finally:
        if not keep and data_dir is None and not interactive:
            shutil.rmtree(base, ignore_errors=True)
