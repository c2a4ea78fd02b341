"""Object validation and schema checks."""

from __future__ import annotations

from fleet.kubesim import schema
from fleet.kubesim.resources import BUILTIN_TYPES, ResourceType
from fleet.kubesim.validation import (
    prune_unknown,
    unknown_fields,
    validate_against_schema,
    validate_name,
    validate_object,
)


def _type(kind: str) -> ResourceType:
    return next(t for t in BUILTIN_TYPES if t.kind == kind and t.preferred)


def test_names() -> None:
    assert validate_name(_type("ConfigMap"), "good.name-1") == []
    assert validate_name(_type("ConfigMap"), "Bad_Name")[0]["field"] == "metadata.name"
    assert validate_name(_type("ConfigMap"), "a" * 254)
    assert validate_name(_type("Namespace"), "has.dot")  # a label, not a subdomain
    assert validate_name(_type("Service"), "1abc")  # DNS-1035: must start with a letter
    assert validate_name(_type("ClusterRole"), "system:controller:x") == []
    assert validate_name(_type("ConfigMap"), "")[0]["reason"] == "FieldValueRequired"


def test_deployment_selector_must_match_template() -> None:
    deployment = {"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "a"}},
        "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}  # fmt: skip
    causes = validate_object(_type("Deployment"), deployment)
    assert causes[0]["field"] == "spec.template.metadata.labels"
    assert "`selector` does not match template `labels`" in causes[0]["message"]
    deployment["spec"]["template"]["metadata"]["labels"] = {"app": "a"}
    assert validate_object(_type("Deployment"), deployment) == []
    deployment["spec"]["template"]["spec"]["containers"] = [{"name": "c"}]
    assert validate_object(_type("Deployment"), deployment)[0]["field"] == "spec.template.spec.containers[0].image"


def test_secret_data_must_be_base64_without_echoing_it() -> None:
    causes = validate_object(_type("Secret"), {"metadata": {"name": "s"}, "data": {"password": "not base64!!"}})
    assert causes and causes[0]["field"] == "data[password]"
    assert "not base64" not in str(causes)
    assert validate_object(_type("Secret"), {"metadata": {"name": "s"}, "data": {"password": "czNjcjN0"}}) == []


def test_labels_and_job_restart_policy() -> None:
    assert validate_object(_type("ConfigMap"), {"metadata": {"name": "c", "labels": {"bad key!": "x"}}})
    assert validate_object(_type("ConfigMap"), {"metadata": {"name": "c", "labels": {"ok": "bad value!"}}})
    job = {"metadata": {"name": "j"}, "spec": {"template": {"spec": {"restartPolicy": "Always",
                                                                     "containers": [{"name": "c", "image": "i"}]}}}}  # fmt: skip
    assert validate_object(_type("Job"), job)[0]["field"] == "spec.template.spec.restartPolicy"


def test_unknown_fields_and_pruning_use_the_real_schema() -> None:
    root = schema.builtin_root("apps", "v1", "Deployment")
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "bogusMeta": 1},
           "spec": {"replicas": 1, "bogus": True, "template": {"spec": {"containers": [{"name": "c", "typo": 1}]}}}}  # fmt: skip
    assert sorted(unknown_fields(obj, root)) == [".metadata.bogusMeta", ".spec.bogus", ".spec.template.spec.containers[0].typo"]
    prune_unknown(obj, root)
    assert obj["spec"] == {"replicas": 1, "template": {"spec": {"containers": [{"name": "c"}]}}}
    assert obj["metadata"] == {"name": "d"}
    # map values (labels, data) are free-form
    assert unknown_fields({"metadata": {"labels": {"anything": "x"}}, "data": {"k": "v"}},
                          schema.builtin_root("", "v1", "ConfigMap")) == []  # fmt: skip


def test_custom_resource_schema_checks() -> None:
    node = {"type": "object", "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
        "size": {"type": "integer"}, "mode": {"type": "string", "enum": ["a", "b"]},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}  # fmt: skip
    assert validate_against_schema({"spec": {"size": 1, "mode": "a", "free": {"x": 1}}}, node) == []
    causes = validate_against_schema({"spec": {"size": "one", "mode": "c"}}, node)
    assert {c["field"] for c in causes} == {"spec.size", "spec.mode"}
    assert validate_against_schema({"spec": {}}, node)[0]["reason"] == "FieldValueRequired"
    assert unknown_fields({"apiVersion": "x/v1", "kind": "X", "spec": {"size": 1, "extra": 2, "free": {"y": 1}}}, node) == [".spec.extra"]
