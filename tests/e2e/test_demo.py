"""`fleet demo --no-interactive`: the README's first command runs the whole story and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_runs_the_whole_story(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fleet", "demo", "--no-interactive", "--data-dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for expected in (
        "all clusters Healthy and in sync",
        "all 3 clusters running nginx:1.28 and Healthy",
        "put replicas back to 3",
        "matches Vault",
        "complete on prod-us-east",
        "payments Healthy on prod-us-west (epoch 1)",
        "scaled payments to 0",
        "payments back on prod-us-east",
        "rebuilt it from Git, secrets included",
        "3 clusters: 3 Healthy; 3 in sync",
    ):
        assert expected in output, f"missing {expected!r} in:\n{output[-4000:]}"
    # secret values never reach the demo's output or the hub's log
    secret_values = ["demo-registry-token-not-a-real-secret", "fleet-demo-robot"]
    hub_log = (tmp_path / "demo" / "hub.log").read_text()
    for value in secret_values:
        assert value not in output and value not in hub_log
