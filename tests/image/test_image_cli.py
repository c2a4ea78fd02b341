"""`fleet image set` on a real Git clone of the example fleet: what it writes, commits, and refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fleet.cli import main
from fleet.inventory import load_inventory
from fleet.plan import plan_fleet
from fleet.render import Renderer
from tests.fixtures.gitrepo import FleetRepo
from tests.validate.example import copy_example, edit

OTHER_APP = {
    "apps/other/fleet.yaml": "namespace: other\ntargets:\n  - clusterSelector: {}\n",
    "apps/other/deployment.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: other}\nspec:\n  selector: {matchLabels: {a: b}}\n"
        "  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: o, image: nginx:1.27}]\n"
    ),
}


def fleet(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def example(fleet_repo: FleetRepo) -> FleetRepo:
    copy_example(fleet_repo.work_path)
    fleet_repo.write(OTHER_APP)
    fleet_repo.commit(message="example fleet")
    return fleet_repo


def images_by_cluster(root: Path, app: str) -> dict[str, str]:
    inventory = load_inventory(root)
    bundles = Renderer(inventory).render(plan_fleet(inventory)).bundles
    return {
        cluster: obj["spec"]["template"]["spec"]["containers"][0]["image"]
        for cluster, bundle in bundles.items()
        for obj in bundle.objects
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == app
    }


def test_rewrites_only_the_apps_manifests(example: FleetRepo) -> None:
    before = {p: p.read_bytes() for p in example.work_path.rglob("*") if p.is_file() and ".git" not in p.parts}

    result = fleet("image", "set", "web", "nginx:1.28", str(example.work_path))

    assert result.exit_code == 0, result.output
    assert result.output == "apps/web/deployment.yaml:15: nginx:1.27 -> nginx:1.28\n"
    after = {p: p.read_bytes() for p in before}
    changed = sorted(str(p.relative_to(example.work_path)) for p in before if before[p] != after[p])
    assert changed == ["apps/web/deployment.yaml"]  # apps/other runs nginx too, and is left alone
    web = example.work_path / "apps/web/deployment.yaml"
    assert after[web] == before[web].replace(b"image: nginx:1.27", b"image: nginx:1.28")
    assert set(images_by_cluster(example.work_path, "web").values()) == {"nginx:1.28"}
    assert example.head() == example.repo.head.commit.hexsha  # nothing committed without --commit


def test_commit_takes_only_the_apps_files_with_the_git_author(example: FleetRepo) -> None:
    # someone's unrelated work in progress, staged and unstaged
    (example.work_path / "README.md").write_text("draft\n")
    example.repo.git.add("README.md")
    edit(example.work_path / "clusters/dev.yaml", "hello from dev", "hi")

    result = fleet("image", "set", "web", "nginx:1.28", "--commit", str(example.work_path))

    assert result.exit_code == 0, result.output
    commit = example.repo.head.commit
    assert result.output.splitlines()[-1] == f"committed {commit.hexsha[:12]} on main: image: web nginx 1.27 -> 1.28"
    assert commit.message.strip() == "image: web nginx 1.27 -> 1.28"
    assert (commit.author.name, commit.author.email) == ("Fleet Tester", "tester@fleet.test")
    assert sorted(commit.stats.files) == ["apps/web/deployment.yaml"]
    # the unrelated changes are still there, uncommitted
    assert example.repo.git.diff("--cached", "--name-only") == "README.md"
    assert example.repo.git.diff("--name-only") == "clusters/dev.yaml"


def test_cluster_selector_sets_a_target_override(example: FleetRepo) -> None:
    result = fleet(
        "image", "set", "web", "nginx:1.29", "--cluster-selector", "env=prod", "--branch", "prod-bump",
        str(example.work_path),
    )
    assert result.exit_code == 0, result.output
    assert example.repo.active_branch.name == "prod-bump"
    commit = example.repo.head.commit
    assert commit.message.strip() == "image: web nginx 1.27 -> 1.29 (env=prod)"
    assert sorted(commit.stats.files) == ["apps/web/fleet.yaml"]
    assert images_by_cluster(example.work_path, "web") == {
        "dev": "nginx:1.27",
        "prod-us-east": "nginx:1.29",
        "prod-us-west": "nginx:1.29",
    }
    assert fleet("validate", str(example.work_path)).exit_code == 0


def test_nothing_matched_exits_1_and_changes_nothing(example: FleetRepo) -> None:
    result = fleet("image", "set", "web", "redis:7", "--branch", "redis", str(example.work_path))
    assert result.exit_code == 1
    assert "no container in apps/web/ runs redis (compared without tag or digest); nothing changed" in result.output
    # back where we were, without the branch we would have made
    assert example.repo.active_branch.name == "main"
    assert "redis" not in [h.name for h in example.repo.heads]
    assert not example.repo.is_dirty(untracked_files=True)

    result = fleet("image", "set", "web", "nginx:1.28", "--cluster-selector", "env=qa", str(example.work_path))
    assert result.exit_code == 1
    assert "no target has clusterSelector.matchLabels equal to env=qa" in result.output

    result = fleet("image", "set", "nope", "nginx:1.28", str(example.work_path))
    assert result.exit_code == 1
    assert "no app 'nope': apps/nope/ does not exist" in result.output


def test_already_at_the_tag_is_not_an_error(example: FleetRepo) -> None:
    result = fleet("image", "set", "web", "nginx:1.27", "--commit", str(example.work_path))
    assert result.exit_code == 0
    assert result.output == "web: nginx is already at 1.27; nothing to change\n"
    assert example.repo.head.commit.hexsha == example.head()


def test_refuses_to_commit_over_uncommitted_app_changes(example: FleetRepo) -> None:
    edit(example.work_path / "apps/web/service.yaml", "port: 80", "port: 8080")
    result = fleet("image", "set", "web", "nginx:1.28", "--commit", str(example.work_path))
    assert result.exit_code == 1
    assert "apps/web/ has uncommitted changes; commit or stash them first" in result.output
    assert "nginx:1.27" in (example.work_path / "apps/web/deployment.yaml").read_text()


def test_symlinks_out_of_the_app_are_never_written(example: FleetRepo, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: nginx:1.27}]\n"
    )
    (example.work_path / "apps/web/linked.yaml").symlink_to(outside)
    result = fleet("image", "set", "web", "nginx:1.28", str(example.work_path))
    assert result.exit_code == 0, result.output
    assert "nginx:1.27" in outside.read_text()
