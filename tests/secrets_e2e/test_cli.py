"""`fleet secrets rotate|status` against a hub served over HTTP."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result

from fleet.cli import main as fleet_cli
from fleet.hub.app import create_app
from tests.secrets_e2e.conftest import Served, World


def run(url: str, world: World, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(fleet_cli, [*args, "--hub", url], env={"FLEET_TOKEN": world.hub.admin_token}, input=stdin)


def test_rotate_and_status(world: World, serve: Served) -> None:
    url = serve(create_app(world.hub))
    world.report_all()
    world.controller.tick()

    listed = run(url, world, "secrets", "status", "-o", "json")
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    assert (row["ref"], row["current"], row["state"], row["onCurrent"]) == (world.ref, "1", "complete", ["east", "west"])

    both = run(url, world, "secrets", "rotate", world.ref, "--generate", "20", "--value-from-stdin", stdin="x\n")
    assert both.exit_code == 2 and "not both" in both.output
    empty = run(url, world, "secrets", "rotate", world.ref, "--value-from-stdin", stdin="\n")
    assert empty.exit_code == 1 and "no value" in empty.output
    unused = run(url, world, "secrets", "rotate", "vault:kv/shared/nobody/db#password")
    assert unused.exit_code == 1 and "404" in unused.output and "not used by any cluster" in unused.output
    assert list(world.vault_versions()) == ["1"]

    rotated = run(url, world, "secrets", "rotate", world.ref, "--destroy-old")
    assert rotated.exit_code == 0, rotated.output
    assert f"rotated {world.ref}: version 1 -> 2" in rotated.output
    assert "version 1 will be destroyed once every target runs version 2" in rotated.output
    assert "rolling out to east, west" in rotated.output
    east = world.agents["east"]
    assert len(east.values(east.desired())["/Secret/payments/payments-db"]["password"]) == 32  # the default
    world.controller.tick()

    table = run(url, world, "secrets", "status")
    assert table.exit_code == 0, table.output
    assert world.ref in table.output and "rolling" in table.output and "destroy v1 when complete" in table.output
    detail = run(url, world, "secrets", "status", world.ref)
    assert detail.exit_code == 0 and "version 2 (was 1), rolling" in detail.output
    assert "payments/payments-db Unknown" not in detail.output  # east and west reported Healthy objects before

    world.clock.advance(hours=1)
    world.controller.tick()
    stalled = run(url, world, "secrets", "status")
    assert stalled.exit_code == 2 and "stalled" in stalled.output
