"""The pure plan diff: created, changed and deleted objects, clusters and apps, and Secret redaction."""

from __future__ import annotations

import json
from typing import Any

from fleet.diff import ABSENT, REDACTED, diff_bundles
from fleet.diff.bundles import FieldChange, diff_values, pointer
from fleet.diff.live import HubState, compare_live, strip_hub_annotations
from fleet.diff.redact import LAST_APPLIED
from fleet.protocol import ANNOTATION_SECRET_DIGEST, ANNOTATION_SECRETS_CHECKSUM, LABEL_APP


def obj(kind: str, name: str, namespace: str = "web", app: str = "web", api: str = "v1", **fields: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {LABEL_APP: app}}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api, "kind": kind, "metadata": meta, **fields}


def deployment(image: str = "nginx:1.27", replicas: int = 1, env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "web", "image": image}
    if env is not None:
        container["env"] = env
    return obj(
        "Deployment",
        "web",
        api="apps/v1",
        spec={"replicas": replicas, "template": {"spec": {"containers": [container]}}},
    )


def test_created_changed_and_deleted_objects() -> None:
    config = obj("ConfigMap", "web-config", data={"greeting": "hi"})
    service = obj("Service", "web", spec={"ports": [{"port": 80}]})
    base = {"dev": [config, deployment()]}
    head = {"dev": [deployment("nginx:1.28"), service]}

    plan = diff_bundles(base, head)

    dev = plan.cluster("dev")
    assert dev is not None and dev.status == "changed"
    assert [(c.action, c.key) for c in dev.objects] == [
        ("update", "apps/Deployment/web/web"),
        ("create", "/Service/web/web"),
        ("delete", "/ConfigMap/web/web-config"),
    ]
    update = dev.objects[0]
    assert update.fields == (
        FieldChange("/spec/template/spec/containers/0/image", "nginx:1.27", "nginx:1.28"),
    )
    assert update.title == "Deployment web/web" and update.app == "web"
    assert plan.totals() == {
        "create": 1, "update": 1, "delete": 1,
        "clustersAdded": 0, "clustersRemoved": 0, "clustersChanged": 1, "clustersUnchanged": 0,
    }


def test_clusters_added_removed_and_unchanged() -> None:
    same = [obj("ConfigMap", "a")]
    plan = diff_bundles({"old": same, "stay": same}, {"new": same, "stay": [obj("ConfigMap", "a")]})
    assert [(c.cluster, c.status) for c in plan.clusters] == [("new", "added"), ("old", "removed"), ("stay", "unchanged")]
    assert [c.action for c in plan.cluster("new").objects] == ["create"]  # type: ignore[union-attr]
    assert [c.action for c in plan.cluster("old").objects] == ["delete"]  # type: ignore[union-attr]
    assert plan.cluster("new").apps_added == ("web",)  # type: ignore[union-attr]
    # apps coming and going with a whole cluster are not "moves"
    assert plan.moves == ()
    assert [c.cluster for c in plan.changed] == ["new", "old"]


def test_apps_moving_between_existing_clusters() -> None:
    payments = obj("Deployment", "payments", namespace="payments", app="payments", api="apps/v1")
    base = {"east": [payments], "west": [obj("ConfigMap", "x", app="base")]}
    head = {"east": [], "west": [obj("ConfigMap", "x", app="base"), payments]}
    plan = diff_bundles(base, head)
    assert [(m.app, m.added, m.removed) for m in plan.moves] == [("payments", ("west",), ("east",))]


def test_field_paths_are_json_pointers_and_types_matter() -> None:
    old = {"metadata": {"labels": {"app.kubernetes.io/name": "a", "x~y": "1"}}, "spec": {"flag": 1}}
    new = {"metadata": {"labels": {"app.kubernetes.io/name": "b", "x~y": "1"}}, "spec": {"flag": True}}
    assert list(diff_values(old, new)) == [
        (("metadata", "labels", "app.kubernetes.io/name"), "a", "b"),
        (("spec", "flag"), 1, True),
    ]
    assert pointer(("metadata", "labels", "app.kubernetes.io/name")) == "/metadata/labels/app.kubernetes.io~1name"
    assert pointer(("a", "x~y", 0)) == "/a/x~0y/0"


def test_named_lists_match_by_name() -> None:
    env_old = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    env_new = [{"name": "NEW", "value": "0"}, {"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    plan = diff_bundles({"c": [deployment(env=env_old)]}, {"c": [deployment(env=env_new)]})
    fields = plan.cluster("c").objects[0].fields  # type: ignore[union-attr]
    base = "/spec/template/spec/containers/0/env"
    assert [(f.path, f.op, f.old, f.new) for f in fields] == [
        (f"{base}/0", "add", ABSENT, {"name": "NEW", "value": "0"}),
        (f"{base}/2/value", "replace", "2", "3"),
    ]


def test_reordered_lists_fall_back_to_positions() -> None:
    old = [{"name": "a", "v": 1}, {"name": "b", "v": 2}]
    new = [{"name": "b", "v": 2}, {"name": "a", "v": 1}]
    assert [path for path, _, _ in diff_values(old, new)] == [(0, "name"), (0, "v"), (1, "name"), (1, "v")]


def secret(**fields: Any) -> dict[str, Any]:
    return obj("Secret", "db", **fields)


def test_secret_values_are_always_redacted() -> None:
    base = secret(
        data={"password": "c2VjcmV0LW9sZA=="},
        stringData={"token": "tok-old", "ref": "vault:kv/shared/db#password"},
    )
    head = secret(
        data={"password": "c2VjcmV0LW5ldw==", "added": "bmV3"},
        stringData={"token": "tok-new", "ref": "vault:kv/shared/db#password?version=2"},
    )
    head["metadata"]["annotations"] = {"fleet.dev/secret-source": "vault", LAST_APPLIED: '{"data":{"password":"x"}}'}
    plan = diff_bundles({"c": [base]}, {"c": [head]})
    dev = plan.cluster("c")
    assert dev is not None
    fields = {f.path: (f.old, f.new) for f in dev.objects[0].fields}
    assert fields == {
        "/data/password": (REDACTED, REDACTED),  # changed, but never shown
        "/data/added": (ABSENT, REDACTED),
        "/stringData/token": (REDACTED, REDACTED),
        # references are placeholders: reviewers see which Vault path a Secret reads
        "/stringData/ref": ("vault:kv/shared/db#password", "vault:kv/shared/db#password?version=2"),
        "/metadata/annotations": (
            ABSENT,
            {"fleet.dev/secret-source": "vault", LAST_APPLIED: REDACTED},
        ),
    }
    dumped = json.dumps(plan.to_dict())
    for value in ("c2VjcmV0", "tok-old", "tok-new", "bmV3", '\\"password\\":\\"x\\"'):
        assert value not in dumped


def test_a_whole_secret_field_added_is_redacted_leaf_by_leaf() -> None:
    plan = diff_bundles({"c": [secret()]}, {"c": [secret(stringData={"a": "plain", "b": {"nested": "deep"}})]})
    change = plan.cluster("c").objects[0].fields[0]  # type: ignore[union-attr]
    assert change.path == "/stringData"
    assert change.new == {"a": REDACTED, "b": {"nested": REDACTED}}


def test_look_alike_secret_kinds_are_redacted_too() -> None:
    odd = obj("Secret", "x", api="example.com/v1", spec={"password": "p1"})
    new = obj("Secret", "x", api="example.com/v1", spec={"password": "p2"})
    change = diff_bundles({"c": [odd]}, {"c": [new]}).cluster("c").objects[0].fields[0]  # type: ignore[union-attr]
    assert (change.old, change.new) == (REDACTED, REDACTED)


def test_live_comparison_ignores_hub_stamps_and_marks_sync() -> None:
    stamped = deployment()
    stamped["spec"]["template"]["metadata"] = {"annotations": {ANNOTATION_SECRETS_CHECKSUM: "abc"}}
    hub_secret = secret()
    hub_secret["metadata"]["annotations"] = {ANNOTATION_SECRET_DIGEST: "hmac", "keep": "me"}
    assert strip_hub_annotations(hub_secret)["metadata"]["annotations"] == {"keep": "me"}

    head_secret = secret()
    head_secret["metadata"]["annotations"] = {"keep": "me"}
    local = deployment()
    local["spec"]["template"]["metadata"] = {}
    live = compare_live(
        {"dev": [local, head_secret], "new": [local]},
        {
            "dev": HubState("dev", "abc123", "sha256:1", "sha256:1", (stamped, hub_secret)),
            "prod": HubState("prod", "abc123", "sha256:2", "sha256:0", (stamped,)),
        },
    )
    by_name = {c.cluster: c for c in live}
    assert by_name["dev"].in_sync and by_name["dev"].diff.status == "unchanged"
    assert by_name["prod"].state == "out of sync" and by_name["prod"].diff.status == "removed"
    assert by_name["new"].state == "not on the hub yet" and by_name["new"].diff.status == "added"
