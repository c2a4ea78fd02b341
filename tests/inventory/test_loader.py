from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleet.errors import SpecError
from fleet.inventory import load_inventory
from fleet.inventory.models import parse_duration

DEV = """\
name: dev
provider:
  type: kubeconfig
  context: dev
labels:
  env: dev
"""

PROD = """\
name: prod
provider:
  type: aws
  account: "123456789012"
  region: us-east-1
  cluster: prod-eks
labels:
  env: prod
failover:
  group: web
  role: primary
"""

WEB = """\
namespace: web
targets:
  - clusterSelector:
      matchLabels: {env: dev}
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def problems_of(root: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_inventory(root)
    return [str(p) for p in info.value.problems]


def test_loads_clusters_apps_and_defaults(tmp_path: Path) -> None:
    write(tmp_path, {"clusters/dev.yaml": DEV, "clusters/prod.yaml": PROD, "apps/web/fleet.yaml": WEB})
    inv = load_inventory(tmp_path)
    assert sorted(inv.clusters) == ["dev", "prod"]
    assert inv.clusters["prod"].provider.type == "aws"
    assert inv.clusters["prod"].region == "us-east-1"
    assert inv.apps["web"].namespace == "web"
    assert inv.settings.pollInterval == 30
    assert inv.files["clusters/dev"] == "clusters/dev.yaml"


def test_error_names_file_line_and_field(tmp_path: Path) -> None:
    write(tmp_path, {"clusters/prod.yaml": PROD.replace("  cluster: prod-eks\n", "  clustr: prod-eks\n")})
    problems = problems_of(tmp_path)
    assert "clusters/prod.yaml:2: provider.cluster: required field is missing" in problems
    assert "clusters/prod.yaml:6: provider.clustr: unknown field" in problems


def test_unknown_provider_type_is_named(tmp_path: Path) -> None:
    write(tmp_path, {"clusters/dev.yaml": DEV.replace("type: kubeconfig", "type: azure")})
    assert problems_of(tmp_path) == ["clusters/dev.yaml:3: provider.type: must be one of 'aws', 'gcp', 'kubeconfig'"]


def test_name_must_match_file_and_be_dns1123(tmp_path: Path) -> None:
    write(tmp_path, {"clusters/dev.yaml": DEV.replace("name: dev", "name: other")})
    assert problems_of(tmp_path) == ["clusters/dev.yaml:1: name: name 'other' must equal the file name 'dev'"]
    (tmp_path / "clusters/dev.yaml").unlink()
    write(tmp_path, {"clusters/Dev_1.yaml": DEV.replace("name: dev", "name: Dev_1")})
    [problem] = problems_of(tmp_path)
    assert problem.startswith("clusters/Dev_1.yaml:1: name: 'Dev_1' is not a valid name")


def test_duplicate_names_are_rejected_including_case(tmp_path: Path) -> None:
    write(tmp_path, {"clusters/dev.yaml": DEV, "clusters/dev.yml": DEV})
    [problem] = problems_of(tmp_path)
    assert "already declared in clusters/dev.yaml" in problem


def test_one_bad_file_rejects_the_revision(tmp_path: Path) -> None:
    write(tmp_path, {"clusters/dev.yaml": DEV, "clusters/prod.yaml": "name: prod\nprovider: [\n"})
    [problem] = problems_of(tmp_path)
    assert problem.startswith("clusters/prod.yaml:")
    assert "invalid YAML" in problem


def test_bad_label_value(tmp_path: Path) -> None:
    write(tmp_path, {"clusters/dev.yaml": DEV.replace("env: dev", "env: 'not ok!'")})
    [problem] = problems_of(tmp_path)
    assert problem.startswith("clusters/dev.yaml:5: labels:")


def test_settings_file_is_validated(tmp_path: Path) -> None:
    write(tmp_path, {"fleet.yaml": "branch: main\npollInterval: 2m\nsigning:\n  mode: always\n"})
    [problem] = problems_of(tmp_path)
    assert problem.startswith("fleet.yaml:4: signing.mode:")
    write(tmp_path, {"fleet.yaml": "pollInterval: 2m\n"})
    assert load_inventory(tmp_path).settings.pollInterval == 120


def test_app_rules(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "clusters/dev.yaml": DEV,
            "apps/a/fleet.yaml": "targets: [{clusterName: dev}]\ndependsOn: [b]\n",
            "apps/b/fleet.yaml": "targets: [{clusterName: dev}]\ndependsOn: [a]\n",
            "apps/c/fleet.yaml": "targets: [{}]\n",
        },
    )
    problems = problems_of(tmp_path)
    assert any("apps/c/fleet.yaml" in p and "clusterSelector or clusterName" in p for p in problems), problems
    (tmp_path / "apps/c/fleet.yaml").write_text("targets: [{clusterSelector: {}}]\n")
    [problem] = problems_of(tmp_path)
    assert problem == "apps/a/fleet.yaml: dependsOn: dependency cycle: a -> b -> a"


def test_failover_group_needs_one_primary(tmp_path: Path) -> None:
    standby = PROD.replace("name: prod", "name: prod2").replace("role: primary", "role: standby")
    write(tmp_path, {"clusters/prod.yaml": PROD, "clusters/prod2.yaml": standby})
    assert sorted(load_inventory(tmp_path).failover_groups()["web"], key=lambda c: c.name)[0].name == "prod"
    write(tmp_path, {"clusters/prod.yaml": PROD.replace("role: primary", "role: standby")})
    [problem] = problems_of(tmp_path)
    assert "needs exactly one primary, has 0" in problem


def test_symlink_leaving_repo_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(DEV)
    repo = tmp_path / "repo"
    (repo / "clusters").mkdir(parents=True)
    os.symlink(outside, repo / "clusters" / "dev.yaml")
    assert problems_of(repo) == ["clusters/dev.yaml: path leads outside the repository; refused"]


@pytest.mark.parametrize(("text", "seconds"), [(30, 30), ("45s", 45), ("5m", 300), ("1h30m", 5400)])
def test_durations(text: object, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5x", -1, 0, True, "1.5m"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)
