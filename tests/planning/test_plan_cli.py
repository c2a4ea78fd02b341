"""`fleet plan` (and `fleet image set`) on real Git repos holding a copy of the example fleet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from fleet.cli import main
from fleet.secrets.sops import SopsKeys, encrypt
from tests.fixtures.gitrepo import FleetRepo
from tests.validate.example import copy_example, edit

STAGING = """\
name: staging
provider:
  type: kubeconfig
  context: staging
labels:
  env: staging
  region: eu-west-1
values:
  greeting: hello from staging
"""
IMAGE_FIELD = "/spec/template/spec/containers/0/image"


def fleet(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def example(fleet_repo: FleetRepo) -> FleetRepo:
    copy_example(fleet_repo.work_path)
    fleet_repo.commit(message="example fleet")
    return fleet_repo


def test_image_bump_and_new_cluster_show_exactly_what_changes(example: FleetRepo) -> None:
    work = str(example.work_path)
    bumped = fleet("image", "set", "web", "nginx:1.28", "--branch", "bump", "--commit", work)
    assert bumped.exit_code == 0, bumped.output
    assert example.repo.active_branch.name == "bump"
    assert example.repo.head.commit.message.strip() == "image: web nginx 1.27 -> 1.28"
    example.commit({"clusters/staging.yaml": STAGING}, "add staging", push=False)

    result = fleet("plan", "--base", "main", "--head", "bump", "-o", "json", work)

    assert result.exit_code == 0, result.output
    plan: dict[str, Any] = json.loads(result.output)
    assert plan["base"]["ref"] == "main" and plan["head"]["ref"] == "bump"
    web_bump = [
        {
            "action": "update",
            "key": "apps/Deployment/web/web",
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "namespace": "web",
            "name": "web",
            "app": "web",
            "fields": [{"path": IMAGE_FIELD, "op": "replace", "old": "nginx:1.27", "new": "nginx:1.28"}],
        }
    ]
    clusters = {c["cluster"]: c for c in plan["clusters"]}
    assert sorted(clusters) == ["dev", "prod-us-east", "prod-us-west", "staging"]
    for name in ("dev", "prod-us-east", "prod-us-west"):
        assert clusters[name]["status"] == "changed"
        assert clusters[name]["objects"] == web_bump, name
        assert clusters[name]["appsAdded"] == clusters[name]["appsRemoved"] == []
    staging = clusters["staging"]
    assert staging["status"] == "added"
    assert [(o["action"], o["key"]) for o in staging["objects"]] == [
        ("create", "/Namespace//platform"),
        ("create", "/Namespace//web"),
        ("create", "/Secret/web/registry-credentials"),
        ("create", "/ConfigMap/platform/cluster-info"),
        ("create", "/ConfigMap/web/web-config"),
        ("create", "/Service/web/web"),
        ("create", "apps/Deployment/web/web"),
    ]
    assert staging["appsAdded"] == ["base", "web"]
    assert plan["appMoves"] == []
    assert plan["summary"] == {
        "create": 7,
        "update": 3,
        "delete": 0,
        "clustersAdded": 1,
        "clustersRemoved": 0,
        "clustersChanged": 3,
        "clustersUnchanged": 0,
    }
    # the user's checkout is as it was
    assert example.repo.active_branch.name == "bump" and not example.repo.is_dirty(untracked_files=True)

    text = fleet("plan", "--base", "main", "--head", "bump", work).output.splitlines()
    assert text[1] == "3 clusters changed, 1 added, 0 removed, 0 unchanged; 7 to create, 3 to change, 0 to delete"
    assert "~ cluster dev: 1 to change" in text
    assert f'        {IMAGE_FIELD}: "nginx:1.27" -> "nginx:1.28"' in text
    assert "+ cluster staging (new cluster): 7 to create; apps added: base, web" in text

    markdown = fleet("plan", "--base", "main", "--head", "bump", "-o", "markdown", work).output
    assert markdown.startswith("### fleet plan\n")
    assert "| `staging` | added | 7 | 0 | 0 |" in markdown
    assert markdown.count("<details>") == 4 and markdown.count("</details>") == 4
    assert f'-     {IMAGE_FIELD}: "nginx:1.27"\n+     {IMAGE_FIELD}: "nginx:1.28"' in markdown


def test_default_base_is_the_merge_base_with_origin_main(example: FleetRepo) -> None:
    example.repo.git.fetch("origin")
    example.repo.git.checkout("-b", "feature")
    edit(example.work_path / "apps/web/fleet.yaml", "      - {name: web, count: 3}", "      - {name: web, count: 4}")
    example.commit(message="more web in prod", push=False)
    edit(example.work_path / "apps/web/configmap.yaml", "${greeting}", "${greeting}!")
    example.commit(message="louder", push=False)

    plan = json.loads(fleet("plan", "-o", "json", str(example.work_path)).output)

    assert plan["base"]["sha"] == example.repo.git.merge_base("origin/main", "HEAD")
    changed = {c["cluster"]: [f["path"] for o in c["objects"] for f in o["fields"]] for c in plan["clusters"]}
    # in bundle order: the ConfigMap before the Deployment
    assert changed == {
        "dev": ["/data/greeting"],
        "prod-us-east": ["/data/greeting", "/spec/replicas"],
        "prod-us-west": ["/data/greeting", "/spec/replicas"],
    }


def test_worktree_changes_and_secret_references(example: FleetRepo) -> None:
    edit(
        example.work_path / "apps/payments/secret.yaml",
        "vault:kv/shared/payments-db#password",
        "vault:kv/shared/payments-db#password?version=3",
    )
    result = fleet("plan", "--head", "WORKTREE", str(example.work_path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # origin/main is HEAD here: the work tree is compared with it
    assert lines[0] == f"fleet plan: merge base with origin/main ({example.head()[:12]}) -> WORKTREE"
    assert lines[3:6] == [
        "~ cluster prod-us-east: 1 to change",
        "    ~ Secret payments/payments-db (app payments)",
        '        /stringData/password: "vault:kv/shared/payments-db#password" -> '
        '"vault:kv/shared/payments-db#password?version=3"',
    ]
    assert lines[-1] == "unchanged: dev, prod-us-west"


def test_a_revision_that_does_not_render_fails_with_file_and_line(example: FleetRepo) -> None:
    (example.work_path / "apps/web/leak.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: leak\nstringData:\n  token: hunter2-canary\n"
    )
    example.commit(message="oops", push=False)
    result = CliRunner().invoke(main, ["plan", "--base", "main", "-o", "markdown", str(example.work_path)])
    assert result.exit_code == 1
    assert "❌ **head** `HEAD (" in result.output
    assert "apps/web/leak.yaml:6: stringData.token: plaintext Secret value in Git is refused" in result.output
    assert "hunter2-canary" not in result.output

    result = CliRunner().invoke(main, ["plan", "--base", "main", str(example.work_path)])
    assert result.exit_code == 1
    assert "fleet plan: head HEAD (" in result.output and "does not render:" in result.output


def test_unknown_revision_and_no_git(example: FleetRepo, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["plan", "--base", "no-such-branch", str(example.work_path)])
    assert result.exit_code == 1
    assert "base 'no-such-branch' is not a commit" in result.output
    plain = copy_example(tmp_path / "plain")
    result = CliRunner().invoke(main, ["plan", str(plain)])
    assert result.exit_code == 1
    assert "is not inside a Git repository" in result.output


def test_fleet_repo_in_a_subdirectory(fleet_repo: FleetRepo) -> None:
    copy_example(fleet_repo.work_path / "fleet")
    fleet_repo.write({"README.md": "monorepo\n"})
    fleet_repo.commit(message="fleet in a subdirectory")
    edit(fleet_repo.work_path / "fleet/clusters/dev.yaml", "hello from dev", "hi from dev")
    fleet_repo.commit(message="greet")
    plan = json.loads(fleet("plan", "-o", "json", str(fleet_repo.work_path / "fleet")).output)
    assert [(c["cluster"], c["status"]) for c in plan["clusters"]] == [
        ("dev", "changed"),
        ("prod-us-east", "unchanged"),
        ("prod-us-west", "unchanged"),
    ]


def test_a_changed_sops_secret_shows_as_a_redacted_change(example: FleetRepo) -> None:
    plaintext = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: registry-credentials\n  namespace: web\ntype: Opaque\n"
        "stringData:\n  REGISTRY_USER: robot\n  REGISTRY_TOKEN: canary-new-token-9f3\n"
    )
    file = "secrets/common/registry-credentials.yaml"
    # encrypting needs only the public recipient in .sops.yaml
    (example.work_path / file).write_bytes(encrypt(plaintext.encode(), file, example.work_path, SopsKeys()))

    result = fleet("plan", "--head", "WORKTREE", str(example.work_path))

    assert result.exit_code == 0, result.output
    for cluster in ("dev", "prod-us-east", "prod-us-west"):
        assert f"~ cluster {cluster}: 1 to change" in result.output
    block = result.output.split("~ cluster dev: 1 to change\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert block == [
        "    ~ Secret web/registry-credentials (from secrets/)",
        "        /data/REGISTRY_USER: <redacted> -> <redacted>",
        "        /data/REGISTRY_TOKEN: <redacted> -> <redacted>",
    ]
    assert "canary-new-token" not in result.output and "ciphertext:" not in result.output
    assert "robot" not in result.output
