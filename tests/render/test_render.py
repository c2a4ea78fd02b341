from __future__ import annotations

from pathlib import Path

from fleet.inventory import load_inventory
from fleet.plan import plan_fleet
from fleet.protocol import ANNOTATION_SECRET_SOURCE, ANNOTATION_SECRETS_CHECKSUM
from fleet.render import Renderer, finalize, render_fleet
from fleet.render.customize import split_image
from tests.inventory.test_loader import write

CLUSTERS = {
    "clusters/dev.yaml": "name: dev\nprovider: {type: kubeconfig, context: dev}\nlabels: {env: dev}\n",
    "clusters/prod.yaml": "name: prod\nprovider: {type: kubeconfig, context: prod}\nlabels: {env: prod}\n",
}

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.local:5000/nginx:1.27
          envFrom: [{secretRef: {name: db}}]
"""

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader}
rules: []
"""


def render(tmp_path: Path, files: dict[str, str]):  # type: ignore[no-untyped-def]
    write(tmp_path, {**CLUSTERS, **files})
    inventory = load_inventory(tmp_path)
    return inventory, render_fleet(inventory, plan_fleet(inventory))


def test_order_labels_and_customisations(tmp_path: Path) -> None:
    _, result = render(
        tmp_path,
        {
            "apps/web/fleet.yaml": (
                "namespace: web\ntargets:\n"
                "  - clusterName: prod\n    images: [{name: registry.local:5000/nginx, newTag: '1.28'}]\n"
                "    replicas: [{name: web, count: 5}]\n"
                "  - clusterSelector: {}\n"
            ),
            "apps/web/deploy.yaml": DEPLOY,
            "apps/web/crd.yaml": CRD,
        },
    )
    assert result.problems == ()
    prod = result.bundles["prod"]
    assert [o["kind"] for o in prod.objects] == ["CustomResourceDefinition", "Namespace", "Role", "Deployment", "Widget"]
    deploy = prod.objects[3]
    assert deploy["spec"]["replicas"] == 5
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local:5000/nginx:1.28"
    assert deploy["metadata"]["namespace"] == "web"
    assert "namespace" not in prod.objects[0]["metadata"]  # CRDs are cluster-scoped
    assert prod.objects[4]["metadata"]["namespace"] == "web"  # a namespaced custom resource
    for obj in prod.objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "fleet"
        assert labels["fleet.dev/app"] == "web" and labels["fleet.dev/cluster"] == "prod"
    dev_deploy = result.bundles["dev"].objects[3]
    assert dev_deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local:5000/nginx:1.27"


def test_digest_is_deterministic_and_content_addressed(tmp_path: Path) -> None:
    files = {"apps/web/fleet.yaml": "targets: [{clusterSelector: {}}]\n", "apps/web/deploy.yaml": DEPLOY}
    inventory, first = render(tmp_path, files)
    second = Renderer(inventory).render(plan_fleet(inventory))
    assert first.bundles["dev"].digest == second.bundles["dev"].digest
    assert first.bundles["dev"].digest != first.bundles["prod"].digest  # the cluster label differs
    _, changed = render(tmp_path, {**files, "apps/web/deploy.yaml": DEPLOY.replace("replicas: 1", "replicas: 2")})
    assert changed.bundles["dev"].digest != first.bundles["dev"].digest


def test_plaintext_secret_is_refused_with_file_and_line(tmp_path: Path) -> None:
    _, result = render(
        tmp_path,
        {
            "apps/web/fleet.yaml": "targets: [{clusterSelector: {}}]\n",
            "apps/web/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: hunter2\n",
        },
    )
    [problem] = result.problems
    assert problem.file == "apps/web/secret.yaml" and problem.line == 5 and problem.field == "stringData.password"
    assert "hunter2" not in str(problem)


def test_vault_references_become_placeholders_and_roll_consumers(tmp_path: Path) -> None:
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\n"
        "stringData:\n  password: vault:kv/clusters/${cluster.name}/db#password\n"
    )
    _, result = render(
        tmp_path,
        {
            "apps/web/fleet.yaml": "namespace: web\ntargets: [{clusterSelector: {}}]\n",
            "apps/web/secret.yaml": secret,
            "apps/web/deploy.yaml": DEPLOY,
        },
    )
    assert result.problems == ()
    bundle = result.bundles["dev"]
    placeholder = next(o for o in bundle.objects if o["kind"] == "Secret")
    assert placeholder["metadata"]["annotations"][ANNOTATION_SECRET_SOURCE] == "vault"
    assert placeholder["stringData"] == {"password": "vault:kv/clusters/dev/db#password"}
    done = finalize(bundle, {"/Secret/web/db": "hmac-sha256:aaa"})
    deploy = next(o for o in done.objects if o["kind"] == "Deployment")
    checksum = deploy["spec"]["template"]["metadata"]["annotations"][ANNOTATION_SECRETS_CHECKSUM]
    rotated = finalize(bundle, {"/Secret/web/db": "hmac-sha256:bbb"})
    deploy2 = next(o for o in rotated.objects if o["kind"] == "Deployment")
    assert deploy2["spec"]["template"]["metadata"]["annotations"][ANNOTATION_SECRETS_CHECKSUM] != checksum
    assert rotated.digest != done.digest


def test_vault_reference_outside_allowed_prefixes_is_refused(tmp_path: Path) -> None:
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: vault:kv/clusters/prod/db#password\n"
    _, result = render(
        tmp_path, {"apps/web/fleet.yaml": "targets: [{clusterSelector: {}}]\n", "apps/web/secret.yaml": secret}
    )
    problems = [str(p) for p in result.problems]
    assert len(problems) == 1 and "dev" in problems[0], problems  # prod may read its own path, dev may not


def test_unknown_value_names_file_field_and_cluster(tmp_path: Path) -> None:
    _, result = render(
        tmp_path,
        {
            "apps/web/fleet.yaml": "targets: [{clusterName: dev}]\n",
            "apps/web/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  x: ${nope}\n",
        },
    )
    [problem] = result.problems
    assert problem.file == "apps/web/cm.yaml" and problem.field == "data.x" and "${nope}" in problem.message


def test_duplicate_objects_in_one_cluster(tmp_path: Path) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same, namespace: default}\n"
    _, result = render(
        tmp_path,
        {
            "apps/a/fleet.yaml": "targets: [{clusterName: dev}]\n",
            "apps/a/cm.yaml": cm,
            "apps/b/fleet.yaml": "targets: [{clusterName: dev}]\n",
            "apps/b/cm.yaml": cm,
        },
    )
    [problem] = result.problems
    assert "declared twice" in problem.message and "apps a and b" in problem.message


def test_kustomize_directory(tmp_path: Path) -> None:
    _, result = render(
        tmp_path,
        {
            "apps/k/fleet.yaml": "targets: [{clusterName: dev}]\n",
            "apps/k/kustomization.yaml": "resources: [cm.yaml]\nnamePrefix: kz-\n",
            "apps/k/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\n",
        },
    )
    assert result.problems == ()
    assert [o["metadata"]["name"] for o in result.bundles["dev"].objects] == ["kz-c"]


def test_split_image() -> None:
    assert split_image("nginx") == ("nginx", None, None)
    assert split_image("host:5000/a/b:1.2@sha256:abc") == ("host:5000/a/b", "1.2", "sha256:abc")
    assert split_image("host:5000/a") == ("host:5000/a", None, None)
