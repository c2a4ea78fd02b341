"""In-place image edits: only the image scalar changes, everything else stays byte for byte."""

from __future__ import annotations

import difflib

import pytest
import yaml

from fleet.imageset import ImageRef, ImageSetError, parse_selector, set_manifest_images, set_target_image
from fleet.imageset.rewrite import set_kustomization_images
from fleet.inventory.models import AppSpec

MANIFESTS = """\
# The web tier. Keep the comments!
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # trailing comment
  annotations: {note: "nginx:1.27 in a note is not an image"}
spec:
  template:
    spec:
      initContainers:
      - name: migrate
        image: 'nginx:1.26'     # quoted with single quotes
      containers:
          - name: web
            image: "nginx:1.27"
          - name: sidecar
            image: registry.example.com:5000/nginx:1.27
          - {name: flow, image: nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000}
          - name: templated
            image: nginx:${tag}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: job
              image: nginx
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: p}
    spec:
      containers: [{name: c, image: nginx:1.27}, {name: d, image: redis:7}]
"""


def changed_lines(old: str, new: str) -> list[tuple[str, str]]:
    """(removed, added) line pairs; asserts that nothing but replaced lines differ."""
    pairs = []
    matcher = difflib.SequenceMatcher(a=old.splitlines(), b=new.splitlines(), autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            continue
        assert tag == "replace" and a1 - a0 == b1 - b0, (tag, old.splitlines()[a0:a1], new.splitlines()[b0:b1])
        pairs.extend(zip(old.splitlines()[a0:a1], new.splitlines()[b0:b1], strict=True))
    return pairs


def test_only_matching_image_scalars_change_and_keep_their_quotes() -> None:
    edit = set_manifest_images(MANIFESTS, "apps/web/all.yaml", ImageRef.parse("nginx:1.28"))

    assert changed_lines(MANIFESTS, edit.new_text) == [
        ("        image: 'nginx:1.26'     # quoted with single quotes", "        image: 'nginx:1.28'     # quoted with single quotes"),
        ('            image: "nginx:1.27"', '            image: "nginx:1.28"'),
        (
            "          - {name: flow, image: nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000}",
            "          - {name: flow, image: nginx:1.28}",
        ),
        ("              image: nginx", "              image: nginx:1.28"),
        ("      containers: [{name: c, image: nginx:1.27}, {name: d, image: redis:7}]",
         "      containers: [{name: c, image: nginx:1.28}, {name: d, image: redis:7}]"),
    ]
    assert [(c.line, c.old, c.new) for c in edit.changes] == [
        (12, "nginx:1.26", "nginx:1.28"),
        (15, "nginx:1.27", "nginx:1.28"),
        (18, "nginx@sha256:" + "0" * 64, "nginx:1.28"),
        (32, "nginx", "nginx:1.28"),
        (41, "nginx:1.27", "nginx:1.28"),
    ]
    # the registry-qualified image is another name; the templated one is left for its value
    assert edit.matched == 6
    assert edit.skipped == ("apps/web/all.yaml:20: nginx:${tag} is set through a value; change the value instead",)


def test_registry_with_port_and_digest_pins() -> None:
    edit = set_manifest_images(MANIFESTS, "f.yaml", ImageRef.parse("registry.example.com:5000/nginx:2.0@sha256:" + "a" * 64))
    assert changed_lines(MANIFESTS, edit.new_text) == [
        (
            "            image: registry.example.com:5000/nginx:1.27",
            f"            image: registry.example.com:5000/nginx:2.0@sha256:{'a' * 64}",
        )
    ]


def test_nothing_to_change_leaves_the_text_identical() -> None:
    text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - {name: c, image: nginx:1.28}\n"
    edit = set_manifest_images(text, "p.yaml", ImageRef.parse("nginx:1.28"))
    assert edit.matched == 1 and not edit.changed and edit.new_text == text


def test_kustomization_image_entries() -> None:
    text = "resources: [deployment.yaml]\nimages:\n  - name: nginx\n    newTag: '1.27'  # pinned by CI\n  - name: redis\n"
    edit = set_kustomization_images(text, "kustomization.yaml", ImageRef.parse("nginx:1.28"))
    assert edit.new_text == text.replace("'1.27'", "'1.28'")


FLEET_YAML = """\
# The public web frontend.
namespace: web
targets:
  - name: prod   # the big one
    clusterSelector:
      matchLabels: {env: prod}
    replicas:
      - {name: web, count: 3}
  - name: eu
    clusterSelector:
      matchLabels:
        env: prod
        region: eu
    images:
      - name: nginx
        newTag: "1.26"   # held back
  - clusterSelector: {}
"""


def test_target_override_is_added_in_the_files_style() -> None:
    edit, index = set_target_image(FLEET_YAML, "apps/web/fleet.yaml", {"env": "prod"}, ImageRef.parse("nginx:1.28"))
    assert index == 0
    assert edit.new_text == FLEET_YAML.replace(
        "      - {name: web, count: 3}\n",
        '      - {name: web, count: 3}\n    images:\n      - {name: nginx, newTag: "1.28"}\n',
    )
    spec = AppSpec.model_validate({"name": "web", **yaml.safe_load(edit.new_text)})
    assert spec.targets[0].images[0].newTag == "1.28"  # a string, not the number 1.28


def test_existing_override_is_updated_and_other_images_appended() -> None:
    edit, index = set_target_image(
        FLEET_YAML, "f.yaml", parse_selector("region=eu, env=prod"), ImageRef.parse("nginx:1.28")
    )
    assert index == 1
    assert edit.new_text == FLEET_YAML.replace('newTag: "1.26"   # held back', 'newTag: "1.28"   # held back')
    assert [(c.old, c.new) for c in edit.changes] == [("1.26", "1.28")]

    edit, _ = set_target_image(edit.new_text, "f.yaml", {"env": "prod", "region": "eu"}, ImageRef.parse("redis:7.2"))
    assert edit.new_text.endswith(
        '        newTag: "1.28"   # held back\n      - {name: redis, newTag: "7.2"}\n  - clusterSelector: {}\n'
    )

    edit, index = set_target_image(FLEET_YAML, "f.yaml", {}, ImageRef.parse("nginx:1.28"))
    assert index == 2
    assert edit.new_text.endswith('  - clusterSelector: {}\n    images:\n      - {name: nginx, newTag: "1.28"}\n')


def test_flow_style_targets_and_files_without_final_newline() -> None:
    text = "targets:\n  - {clusterSelector: {matchLabels: {env: prod}}}  # one line"
    edit, _ = set_target_image(text, "f.yaml", {"env": "prod"}, ImageRef.parse("ghcr.io/acme/web:v2"))
    assert edit.new_text == (
        'targets:\n  - {clusterSelector: {matchLabels: {env: prod}}, images: [{name: ghcr.io/acme/web, newTag: v2}]}'
        "  # one line"
    )
    block = "targets:\n  - clusterSelector:\n      matchLabels: {env: prod}"
    edit, _ = set_target_image(block, "f.yaml", {"env": "prod"}, ImageRef.parse("nginx:1.28"))
    assert edit.new_text == block + '\n    images:\n      - {name: nginx, newTag: "1.28"}\n'


def test_no_matching_target_and_digest_pins_are_refused() -> None:
    with pytest.raises(ImageSetError) as missing:
        set_target_image(FLEET_YAML, "apps/web/fleet.yaml", {"env": "qa"}, ImageRef.parse("nginx:1.28"))
    assert str(missing.value) == (
        "apps/web/fleet.yaml: no target has clusterSelector.matchLabels equal to env=qa "
        "(targets: [0] env=prod; [1] env=prod,region=eu; [2] {})"
    )
    pinned = FLEET_YAML.replace('newTag: "1.26"   # held back', "digest: sha256:abc")
    with pytest.raises(ImageSetError, match=r"f.yaml:16: targets\[1\].images\[0\] pins nginx to a digest"):
        set_target_image(pinned, "f.yaml", {"env": "prod", "region": "eu"}, ImageRef.parse("nginx:1.28"))


@pytest.mark.parametrize("text", ["nginx", "", ":1.0"])
def test_image_reference_needs_a_tag(text: str) -> None:
    with pytest.raises(ImageSetError, match="give the image with its new tag"):
        ImageRef.parse(text)


@pytest.mark.parametrize("text", ["env", "=prod", "env=prod,,x=y"])
def test_bad_selectors(text: str) -> None:
    with pytest.raises(ImageSetError, match="expected key=value"):
        parse_selector(text)
