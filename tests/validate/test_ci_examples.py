"""The CI examples in deploy/ci and the pre-commit hook: well-formed, and their commands really run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.gitrepo import FleetRepo
from tests.validate.example import PROJECT_ROOT, copy_example, edit

CI = PROJECT_ROOT / "deploy" / "ci"
GITHUB_WORKFLOW = CI / "github" / "fleet-pr.yml"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def step(job: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in job["steps"] if s.get("name") == name)


def shell_env(**extra: str) -> dict[str, str]:
    """The environment CI gives a step: fleet on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def test_every_example_parses() -> None:
    files = [p for p in CI.rglob("*") if p.suffix in (".yml", ".yaml")]
    assert len(files) >= 4
    for path in files:
        assert load(path) is not None, path
    assert load(PROJECT_ROOT / ".pre-commit-hooks.yaml")


def test_github_workflow_gates_pull_requests() -> None:
    workflow = load(GITHUB_WORKFLOW)
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as true
    validate, plan = workflow["jobs"]["validate"], workflow["jobs"]["plan"]
    assert validate["permissions"]["security-events"] == "write"
    assert "--sarif-file fleet.sarif" in step(validate, "fleet validate")["run"]
    assert step(validate, "Upload findings (SARIF)")["with"]["sarif_file"] == "fleet.sarif"
    assert step(validate, "Upload findings (SARIF)")["uses"].startswith("github/codeql-action/upload-sarif@")
    assert plan["permissions"]["pull-requests"] == "write"
    assert "fleet plan . --base HEAD^1 --head HEAD -o markdown" in step(plan, "fleet plan")["run"]
    assert "gh pr comment" in step(plan, "Comment the plan on the pull request")["run"]


def test_github_steps_run_as_written(fleet_repo: FleetRepo, tmp_path: Path) -> None:
    workflow = load(GITHUB_WORKFLOW)
    copy_example(fleet_repo.work_path)
    fleet_repo.commit(message="example")
    edit(fleet_repo.work_path / "apps/web/deployment.yaml", "nginx:1.27", "nginx:1.28")
    fleet_repo.commit(message="bump")
    summary = tmp_path / "summary.md"
    env = shell_env(KUBERNETES_VERSION=workflow["env"]["KUBERNETES_VERSION"], GITHUB_STEP_SUMMARY=str(summary))
    env.pop("FLEET_HUB_URL", None)

    for job, name in (("validate", "fleet validate"), ("plan", "fleet plan")):
        script = step(workflow["jobs"][job], name)["run"]
        result = subprocess.run(
            ["bash", "-e", "-c", script], cwd=fleet_repo.work_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, (name, result.stdout, result.stderr)

    assert (fleet_repo.work_path / "fleet.sarif").is_file()
    plan = (fleet_repo.work_path / "plan.md").read_text()
    assert plan.startswith("### fleet plan\n")
    assert '+     /spec/template/spec/containers/0/image: "nginx:1.28"' in plan
    assert summary.read_text() == plan


def test_gitlab_jobs_run_on_merge_requests() -> None:
    jobs = load(CI / "gitlab" / "fleet.gitlab-ci.yml")
    assert jobs[".fleet"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert any("fleet validate ." in line for line in jobs["fleet-validate"]["script"])
    plan = jobs["fleet-plan"]
    assert any("fleet plan . --base" in line and "-o markdown" in line for line in plan["script"])
    assert any("merge_requests/$CI_MERGE_REQUEST_IID/notes" in line for line in plan["script"])
    assert plan["variables"]["GIT_DEPTH"] == 0


def test_pre_commit_hook_runs_fleet_validate(tmp_path: Path) -> None:
    (hook,) = load(PROJECT_ROOT / ".pre-commit-hooks.yaml")
    assert hook["id"] == "fleet-validate" and hook["language"] == "python" and hook["pass_filenames"] is False
    files = re.compile(hook["files"])
    for path in ("fleet.yaml", ".sops.yaml", "clusters/dev.yaml", "apps/web/deployment.yaml", "secrets/common/a.yaml"):
        assert files.search(path), path
    assert not files.search("README.md") and not files.search("docs/apps/x.md")
    # the entry is the console script this project installs
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text()
    assert 'fleet = "fleet.cli:main"' in pyproject

    example_hooks = load(CI / ".pre-commit-config.yaml")["repos"][0]["hooks"]
    args = next(h for h in example_hooks if h["id"] == "fleet-validate")["args"]
    repo = copy_example(tmp_path / "fleet")
    command = [*shlex.split(hook["entry"]), *args]
    ok = subprocess.run(command, cwd=repo, env=shell_env(), capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    edit(repo / "apps/web/service.yaml", "      targetPort: 80\n", "      targetPort: 80\n      protocl: TCP\n")
    bad = subprocess.run(command, cwd=repo, env=shell_env(), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "apps/web/service.yaml:10: error: spec.ports[0].protocl: unknown field (Service web)" in bad.stdout
