"""Which SOPS files reach which cluster, including a randomised check that nothing leaks out of scope."""

from __future__ import annotations

import random
from typing import Any

from fleet.inventory.models import ClusterSpec, LabelSelector, SecretScope
from fleet.plan.targeting import selector_matches
from fleet.secrets.scope import secret_files_for, unscoped_files


def cluster(name: str, **labels: str) -> ClusterSpec:
    return ClusterSpec.model_validate(
        {"name": name, "provider": {"type": "kubeconfig", "context": name}, "labels": labels}
    )


PROD = SecretScope(path="secrets/prod", clusterSelector=LabelSelector(matchLabels={"env": "prod"}))
EU = SecretScope.model_validate(
    {"path": "secrets/prod/eu", "clusterSelector": {"matchExpressions": [{"key": "region", "operator": "In", "values": ["eu-west-1"]}]}}
)
FILES = [
    "secrets/common/registry.yaml",
    "secrets/clusters/prod-a/db.yaml",
    "secrets/clusters/prod-a/nested/tls.yaml",
    "secrets/clusters/dev-a/db.yaml",
    "secrets/clusters/stray.yaml",
    "secrets/prod/payments.yaml",
    "secrets/prod/eu/gdpr.yaml",
    "secrets/production/db.yaml",
    "secrets/other/x.yaml",
    "secrets/common/../clusters/dev-a/db.yaml",
    "/secrets/common/abs.yaml",
    "apps/secrets/common/x.yaml",
]


def test_common_cluster_and_label_scopes() -> None:
    scopes = [PROD, EU]
    prod_eu = cluster("prod-a", env="prod", region="eu-west-1")
    prod_us = cluster("prod-b", env="prod", region="us-east-1")
    dev = cluster("dev-a", env="dev", region="eu-west-1")
    assert secret_files_for(prod_eu, FILES, scopes) == [
        "secrets/clusters/prod-a/db.yaml",
        "secrets/clusters/prod-a/nested/tls.yaml",
        "secrets/common/registry.yaml",
        "secrets/prod/eu/gdpr.yaml",
        "secrets/prod/payments.yaml",
    ]
    assert secret_files_for(prod_us, FILES, scopes) == ["secrets/common/registry.yaml", "secrets/prod/payments.yaml"]
    assert secret_files_for(dev, FILES, scopes) == ["secrets/clusters/dev-a/db.yaml", "secrets/common/registry.yaml"]


def test_unscoped_files_are_reported() -> None:
    assert unscoped_files(FILES, [PROD, EU]) == sorted(
        [
            "secrets/clusters/stray.yaml",
            "secrets/production/db.yaml",
            "secrets/other/x.yaml",
            "secrets/common/../clusters/dev-a/db.yaml",
            "/secrets/common/abs.yaml",
            "apps/secrets/common/x.yaml",
        ]
    )


def test_a_scope_over_a_cluster_directory_only_narrows() -> None:
    widening = SecretScope(path="secrets/clusters/prod-a", clusterSelector=LabelSelector())
    assert secret_files_for(cluster("dev-a"), ["secrets/clusters/prod-a/db.yaml"], [widening]) == []
    assert secret_files_for(cluster("prod-a"), ["secrets/clusters/prod-a/db.yaml"], [widening]) == [
        "secrets/clusters/prod-a/db.yaml"
    ]
    everything = SecretScope(path="secrets/clusters", clusterSelector=LabelSelector())
    assert secret_files_for(cluster("dev-a"), ["secrets/clusters/stray.yaml"], [everything]) == []
    assert unscoped_files(["secrets/clusters/stray.yaml"], [everything]) == ["secrets/clusters/stray.yaml"]


def _random_selector(rng: random.Random) -> dict[str, Any]:
    selector: dict[str, Any] = {}
    if rng.random() < 0.7:
        selector["matchLabels"] = {rng.choice(["env", "region", "tier"]): rng.choice(["a", "b", "c"])}
    if rng.random() < 0.5:
        operator = rng.choice(["In", "NotIn", "Exists", "DoesNotExist"])
        requirement: dict[str, Any] = {"key": rng.choice(["env", "region", "tier"]), "operator": operator}
        if operator in ("In", "NotIn"):
            requirement["values"] = rng.sample(["a", "b", "c"], rng.randint(1, 2))
        selector["matchExpressions"] = [requirement]
    return selector


def test_no_file_ever_reaches_a_cluster_outside_its_scope() -> None:
    rng = random.Random(20240611)
    names = [f"c{i}" for i in range(12)]
    for _ in range(150):
        clusters = [
            cluster(name, **{key: rng.choice(["a", "b", "c"]) for key in ("env", "region", "tier") if rng.random() < 0.8})
            for name in names
        ]
        dirs = rng.sample(["secrets/s1", "secrets/s2", "secrets/s1/deep", "secrets/s3"], rng.randint(0, 4))
        scopes = [SecretScope.model_validate({"path": d, "clusterSelector": _random_selector(rng)}) for d in dirs]
        files = [
            rng.choice(
                [
                    f"secrets/common/f{rng.randint(0, 9)}.yaml",
                    f"secrets/clusters/{rng.choice(names)}/f{rng.randint(0, 9)}.yaml",
                    f"secrets/s1/f{rng.randint(0, 9)}.yaml",
                    f"secrets/s1/deep/f{rng.randint(0, 9)}.yaml",
                    f"secrets/s2/x/f{rng.randint(0, 9)}.yaml",
                    f"secrets/s3/f{rng.randint(0, 9)}.yaml",
                    f"secrets/loose/f{rng.randint(0, 9)}.yaml",
                ]
            )
            for _ in range(25)
        ]
        unscoped = set(unscoped_files(files, scopes))
        for spec in clusters:
            for file in secret_files_for(spec, files, scopes):
                parts = file.split("/")
                assert file not in unscoped
                if parts[1] == "clusters":
                    assert parts[2] == spec.name, (file, spec.name)
                for scope in scopes:
                    if file.startswith(scope.path + "/"):
                        assert selector_matches(scope.clusterSelector, spec.labels), (file, scope, spec.labels)
        # A common file reaches everyone unless a scope narrows it; an unscoped one reaches nobody.
        for file in unscoped:
            assert all(file not in secret_files_for(spec, [file], scopes) for spec in clusters)
        for file in files:
            if file.startswith("secrets/common/"):
                assert all(file in secret_files_for(spec, [file], scopes) for spec in clusters)
