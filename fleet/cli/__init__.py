"""The `fleet` command line.

Subcommands live in their own modules and are imported only when used, so
`fleet status` does not pay for importing the hub, kubesim or boto3.
"""

from __future__ import annotations

import importlib
import importlib.util

import click

# command name -> "module:attribute"
COMMANDS: dict[str, str] = {
    "agent": "fleet.cli.agent:agent",
    "clusters": "fleet.cli.clusters:clusters",
    "demo": "fleet.cli.demo:demo",
    "events": "fleet.cli.events:events",
    "failback": "fleet.cli.failover:failback",
    "failover": "fleet.cli.failover:failover",
    "hub": "fleet.cli.hub:hub",
    "image": "fleet.cli.image:image",
    "plan": "fleet.cli.plan:plan",
    "recover": "fleet.cli.recover:recover",
    "schema": "fleet.cli.schema:schema",
    "secrets": "fleet.cli.secrets:secrets",
    "sim": "fleet.cli.sim:sim",
    "source": "fleet.cli.source:source",
    "status": "fleet.cli.status:status",
    "validate": "fleet.cli.validate:validate",
}


def _module_exists(target: str) -> bool:
    module_name = target.split(":", 1)[0]
    return importlib.util.find_spec(module_name) is not None


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, target in COMMANDS.items() if _module_exists(target))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None or not _module_exists(target):
            return None
        module_name, attribute = target.split(":", 1)
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fleet")
def main() -> None:
    """Run a fleet of Kubernetes clusters from Git."""
