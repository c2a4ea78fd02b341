"""Label and field selector parsing and matching."""

from __future__ import annotations

import pytest

from fleet.kubesim.selectors import (
    SelectorError,
    fields_match,
    format_label_selector,
    labels_match,
    parse_field_selector,
    parse_label_selector,
    selector_from_label_selector_object,
    validate_field_selector,
)

LABELS = {"app": "web", "tier": "frontend", "env": "prod"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("tier in (frontend,backend)", True),
        ("tier in (backend)", False),
        ("tier notin (backend)", True),
        ("tier notin (frontend)", False),
        ("missing notin (x)", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=web,env=prod", True),
        ("app=web,env=dev", False),
        ("app=web, tier in (frontend), !canary", True),
        ("", True),
    ],
)
def test_label_selector_matching(selector: str, expected: bool) -> None:
    assert labels_match(parse_label_selector(selector), LABELS) is expected


@pytest.mark.parametrize("bad", ["app=web,", "=web", "app in (a", "a b c", "app=we b"])
def test_bad_label_selectors_raise(bad: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(bad)


def test_label_selector_object_and_format() -> None:
    selector = {"matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                     {"key": "canary", "operator": "DoesNotExist"}]}  # fmt: skip
    requirements = selector_from_label_selector_object(selector)
    assert labels_match(requirements, {"app": "web", "tier": "a"})
    assert not labels_match(requirements, {"app": "web", "tier": "a", "canary": "1"})
    assert format_label_selector(selector) == "app=web,tier in (a,b),!canary"
    with pytest.raises(SelectorError):
        selector_from_label_selector_object({"matchExpressions": [{"key": "x", "operator": "Near"}]})


def test_field_selectors() -> None:
    obj = {"metadata": {"name": "a", "namespace": "ns"}, "type": "Opaque", "status": {"phase": "Running"}}
    assert fields_match(parse_field_selector("metadata.name=a"), obj)
    assert fields_match(parse_field_selector("metadata.name==a,metadata.namespace=ns"), obj)
    assert not fields_match(parse_field_selector("metadata.name!=a"), obj)
    assert fields_match(parse_field_selector("type=Opaque"), obj)
    assert fields_match(parse_field_selector("status.phase=Running"), obj)
    validate_field_selector(parse_field_selector("metadata.name=a"), "ConfigMap")
    validate_field_selector(parse_field_selector("type=Opaque"), "Secret")
    with pytest.raises(SelectorError, match="field label not supported"):
        validate_field_selector(parse_field_selector("spec.replicas=1"), "Deployment")
    with pytest.raises(SelectorError):
        parse_field_selector("metadata.name")
