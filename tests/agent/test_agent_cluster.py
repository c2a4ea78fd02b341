"""The agent against a real kubesim cluster and the stand-in hub."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.agent.identity import FileStateStore
from fleet.agent.inventory import InventoryStore
from fleet.kubesim import SimCluster
from fleet.protocol import ANNOTATION_SECRET_SOURCE, FIELD_MANAGER, AppPolicy, PrunePolicy
from tests.agent import bundle
from tests.agent.harness import Harness
from tests.agent.standin_hub import StandInHub


@pytest.fixture
def env(hub: StandInHub, sim_cluster: SimCluster, sim_kubeconfig: Path, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(hub, sim_cluster, sim_kubeconfig, tmp_path / "state", tmp_path / "bootstrap.token")
    harness.new_token()
    try:
        yield harness
    finally:
        harness.close()


def _managers(live: dict) -> set[str]:
    return {entry["manager"] for entry in live["metadata"].get("managedFields") or []}


def test_applies_bundle_in_order_with_fleet_field_manager(env: Harness) -> None:
    objects = bundle.full_bundle(env.cluster)
    digest = env.hub.set_desired(env.cluster, objects, revision="r1")
    agent = env.agent()
    first = agent.run_once()
    assert first.fetched == "new" and first.applied and not first.apply_failed, first.errors
    for obj in objects:
        live = env.live(obj)
        assert live is not None, bundle.key(obj)
        assert FIELD_MANAGER in _managers(live)
    outcome = env.converge(agent)
    report = env.hub.last_report(env.cluster)
    assert report.appliedDigest == digest and report.appliedRevision == "r1"
    assert report.phase == "Applied" and report.clusterHealth.status == "Healthy"
    health = {o.key: o.health for o in report.objects}
    assert health[bundle.key(bundle.deployment())] == "Healthy"
    assert outcome.errors == []
    inventory = InventoryStore(agent.kube, env.cluster).load()
    assert set(inventory) == {bundle.key(o) for o in objects}


def test_unchanged_digest_is_one_hub_request_and_no_cluster_writes(env: Harness) -> None:
    env.hub.set_desired(env.cluster, bundle.full_bundle(env.cluster))
    agent = env.agent()
    env.converge(agent)
    env.sim.reset_counters()
    before = len(env.hub.requests)
    outcome = agent.run_once(check_drift=False)
    assert outcome.fetched == "unchanged" and not outcome.reported
    assert env.hub.requests[before:] == [("GET", f"/v1/agents/{env.cluster}/desired", 304)]
    assert env.writes() == 0, env.sim.counters()


def test_heartbeat_report_at_least_every_n_cycles(env: Harness) -> None:
    env.hub.set_desired(env.cluster, bundle.full_bundle(env.cluster))
    agent = env.agent(heartbeat_every=3)
    env.converge(agent)
    reported = [agent.run_once(check_drift=False).reported for _ in range(6)]
    assert reported == [False, False, True, False, False, True]


def test_manual_scale_is_detected_and_reverted(env: Harness) -> None:
    env.hub.set_desired(env.cluster, bundle.full_bundle(env.cluster))
    agent = env.agent()
    env.converge(agent)
    env.kubectl("-n", bundle.NAMESPACE, "scale", "deployment/web", "--replicas", "7")
    assert env.live(bundle.deployment())["spec"]["replicas"] == 7
    agent.run_once(check_drift=False)
    assert env.live(bundle.deployment())["spec"]["replicas"] == 7  # not yet: drift runs on its interval
    env.clock.advance(31)
    outcome = agent.run_once()
    assert outcome.drift_checked
    [event] = outcome.drift
    assert event.key == bundle.key(bundle.deployment()) and event.fields == ["spec.replicas"] and event.reverted
    assert env.live(bundle.deployment())["spec"]["replicas"] == 2
    assert env.hub.last_report(env.cluster).drift[0].key == event.key
    # reported once: the next report does not repeat the event
    env.clock.advance(31)
    agent.run_once()
    env.converge(agent)
    assert env.hub.last_report(env.cluster).drift == []


def test_self_heal_off_reports_without_reverting(env: Harness) -> None:
    objects = bundle.full_bundle(env.cluster)
    env.hub.set_desired(env.cluster, objects, apps=[AppPolicy(name="web", selfHeal=False)])
    agent = env.agent()
    env.converge(agent)
    env.kubectl("-n", bundle.NAMESPACE, "scale", "deployment/web", "--replicas", "7")
    outcome = agent.run_once(check_drift=True)
    [event] = outcome.drift
    assert event.fields == ["spec.replicas"] and not event.reverted
    assert env.live(bundle.deployment())["spec"]["replicas"] == 7
    status = {o.key: o for o in env.hub.last_report(env.cluster).objects}
    assert status[bundle.key(bundle.deployment())].drifted


def test_self_heal_annotation_turns_revert_off_per_object(env: Harness) -> None:
    objects = bundle.full_bundle(env.cluster)
    for obj in objects:
        if obj["kind"] == "ConfigMap":
            obj["metadata"]["annotations"] = {"fleet.dev/self-heal": "false"}
    env.hub.set_desired(env.cluster, objects)
    agent = env.agent()
    env.converge(agent)
    env.kubectl("-n", bundle.NAMESPACE, "patch", "configmap/web-config", "--type", "merge", "-p",
                json.dumps({"data": {"greeting": "changed"}}))
    env.kubectl("-n", bundle.NAMESPACE, "scale", "deployment/web", "--replicas", "5")
    outcome = agent.run_once(check_drift=True)
    reverted = {e.key: e.reverted for e in outcome.drift}
    assert reverted == {bundle.key(bundle.configmap()): False, bundle.key(bundle.deployment()): True}
    assert env.live(bundle.configmap())["data"]["greeting"] == "changed"


def test_deleted_object_is_recreated_by_drift_check(env: Harness) -> None:
    env.hub.set_desired(env.cluster, bundle.full_bundle(env.cluster))
    agent = env.agent()
    env.converge(agent)
    env.kubectl("-n", bundle.NAMESPACE, "delete", "configmap", "web-config")
    outcome = agent.run_once(check_drift=True)
    assert [(e.key, e.reverted) for e in outcome.drift] == [(bundle.key(bundle.configmap()), True)]
    assert env.live(bundle.configmap()) is not None


def test_removed_object_is_pruned(env: Harness) -> None:
    objects = bundle.full_bundle(env.cluster)
    env.hub.set_desired(env.cluster, objects)
    agent = env.agent()
    env.converge(agent)
    without_cm = [o for o in objects if o["kind"] != "ConfigMap"]
    env.hub.set_desired(env.cluster, without_cm, revision="r2")
    outcome = agent.run_once()
    assert outcome.pruned == [bundle.key(bundle.configmap())]
    assert env.live(bundle.configmap()) is None
    assert env.hub.last_report(env.cluster).pruned == [bundle.key(bundle.configmap())]
    assert bundle.key(bundle.configmap()) not in InventoryStore(agent.kube, env.cluster).load()


def test_restarted_agent_prunes_from_persisted_inventory(env: Harness) -> None:
    objects = bundle.full_bundle(env.cluster)
    env.hub.set_desired(env.cluster, objects)
    env.converge(env.agent())
    env.hub.set_desired(env.cluster, [o for o in objects if o["kind"] != "Service"], revision="r2")
    fresh = env.agent()  # same state dir, new process memory
    outcome = fresh.run_once()
    assert outcome.pruned == [bundle.key(bundle.service())]


def test_failed_apply_prunes_nothing(env: Harness) -> None:
    objects = bundle.full_bundle(env.cluster)
    env.hub.set_desired(env.cluster, objects)
    agent = env.agent()
    env.converge(agent)
    invalid = bundle.owned({"apiVersion": "nope.example.com/v1", "kind": "Gadget",
                            "metadata": {"name": "g", "namespace": bundle.NAMESPACE}}, env.cluster)
    env.hub.set_desired(env.cluster, [*(o for o in objects if o["kind"] != "ConfigMap"), invalid], revision="r2")
    outcome = agent.run_once()
    assert outcome.apply_failed and outcome.pruned == []
    assert any("Gadget" in e for e in outcome.errors)
    assert env.live(bundle.configmap()) is not None
    report = env.hub.last_report(env.cluster)
    assert report.phase == "Failed" and any("Gadget" in e for e in report.errors)
    # the failed apply is retried on the drift interval (not every poll), though the hub answers 304
    env.sim.reset_counters()
    waiting = agent.run_once()
    assert waiting.fetched == "unchanged" and not waiting.applied and env.writes() == 0
    env.clock.advance(31)
    again = agent.run_once()
    assert again.fetched == "unchanged" and again.applied and again.apply_failed
    assert env.live(bundle.configmap()) is not None
    # fixed in the hub: applied, and only now pruned
    env.hub.set_desired(env.cluster, [o for o in objects if o["kind"] != "ConfigMap"], revision="r3")
    fixed = agent.run_once()
    assert not fixed.apply_failed and fixed.pruned == [bundle.key(bundle.configmap())]
    assert env.hub.last_report(env.cluster).phase in ("Applied", "Progressing")


def test_hub_error_prunes_nothing_and_keeps_last_good_state(env: Harness) -> None:
    env.hub.set_desired(env.cluster, bundle.full_bundle(env.cluster))
    agent = env.agent()
    env.converge(agent)
    env.hub.set_desired(env.cluster, [], revision="r-broken")
    env.hub.desired_failure = 503
    env.sim.reset_counters()
    outcome = agent.run_once()
    assert outcome.fetched == "error" and "vault is down" in (outcome.hub_error or "")
    assert outcome.pruned == [] and env.writes() == 0
    for obj in bundle.full_bundle(env.cluster):
        assert env.live(obj) is not None
    report = env.hub.last_report(env.cluster)  # the hub answered, so the error is reported
    assert any("vault is down" in e for e in report.errors)


def test_mass_prune_is_refused_without_the_flag(env: Harness) -> None:
    objects = bundle.full_bundle(env.cluster)
    env.hub.set_desired(env.cluster, objects)
    agent = env.agent()
    env.converge(agent)
    only_namespace = [o for o in objects if o["kind"] == "Namespace"]
    env.hub.set_desired(env.cluster, only_namespace, revision="r2", prune=PrunePolicy(maxDeleteShare=0.5))
    outcome = agent.run_once()
    assert outcome.pruned == []
    assert any("--allow-mass-prune" in e for e in outcome.errors)
    for obj in objects:
        assert env.live(obj) is not None
    forced = env.agent(allow_mass_prune=True)
    result = forced.run_once()
    assert len(result.pruned) == 5
    assert result.pruned[0].split("/")[1] == "Widget" and result.pruned[-1].split("/")[1] == "CustomResourceDefinition"
    assert env.live(bundle.deployment()) is None and env.live(bundle.namespace()) is not None


def test_prune_false_app_keeps_its_objects(env: Harness) -> None:
    objects = [*bundle.full_bundle(env.cluster), bundle.owned(bundle.configmap("db-config"), env.cluster, app="db")]
    env.hub.set_desired(env.cluster, objects, apps=[AppPolicy(name="db", prune=False)])
    agent = env.agent()
    env.converge(agent)
    env.hub.set_desired(env.cluster, [o for o in objects if o["metadata"]["name"] != "db-config"], revision="r2")
    outcome = agent.run_once()
    assert outcome.pruned == [] and outcome.errors == []
    assert env.live(bundle.configmap("db-config")) is not None


def test_hub_down_leaves_cluster_untouched_and_agent_keeps_trying(env: Harness) -> None:
    env.hub.set_desired(env.cluster, bundle.full_bundle(env.cluster))
    agent = env.agent()
    env.converge(agent)
    env.hub.stop()
    env.sim.reset_counters()
    delays = []
    for _ in range(3):
        outcome = agent.run_once(check_drift=False)
        assert outcome.fetched == "error" and not outcome.reported
        delays.append(agent.next_delay())
    assert env.writes() == 0
    assert agent.hub_failures == 3 and delays[0] < delays[2] <= 15 * 1.1
    # drift revert keeps working from the last good state while the hub is down
    env.kubectl("-n", bundle.NAMESPACE, "scale", "deployment/web", "--replicas", "4")
    outcome = agent.run_once(check_drift=True)
    assert [e.reverted for e in outcome.drift] == [True]
    env.hub.start()
    back = agent.run_once()
    assert back.fetched == "unchanged" and back.reported and agent.hub_failures == 0


def test_stale_epoch_is_fenced(env: Harness) -> None:
    objects = bundle.full_bundle(env.cluster)
    env.hub.set_desired(env.cluster, objects, epoch=5)
    agent = env.agent()
    env.converge(agent)
    assert FileStateStore(env.state_dir).load().max_epoch == 5  # persisted with the identity
    env.hub.set_desired(env.cluster, [o for o in objects if o["kind"] != "ConfigMap"], epoch=4, revision="stale")
    env.sim.reset_counters()
    outcome = agent.run_once()
    assert outcome.fetched == "fenced" and not outcome.applied and env.writes() == 0
    report = env.hub.last_report(env.cluster)
    assert report.phase == "Fenced" and report.epoch == 5 and report.appliedRevision == "r0"
    assert env.live(bundle.configmap()) is not None
    # a restarted agent remembers the epoch
    assert env.agent().run_once().fetched == "fenced"
    env.hub.set_desired(env.cluster, [o for o in objects if o["kind"] != "ConfigMap"], epoch=6, revision="new")
    assert agent.run_once().pruned == [bundle.key(bundle.configmap())]


def test_sealed_secret_values_are_applied_only_from_the_sealed_payload(
    env: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    value = "hunter2-correct-horse-battery"
    placeholder = bundle.owned(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": bundle.NAMESPACE,
                         "annotations": {ANNOTATION_SECRET_SOURCE: "sops:secrets/db.yaml"}},
            "type": "Opaque",
        },
        env.cluster,
    )
    objects = [bundle.owned(bundle.namespace(), env.cluster), placeholder]
    env.hub.set_desired(env.cluster, objects, secret_values={"/Secret/shop/db": {"password": value}})
    agent = env.agent()
    outcome = env.converge(agent)
    live = env.live(placeholder)
    assert live is not None and base64.b64decode(live["data"]["password"]).decode() == value
    # drift on the Secret is found by comparing against the sealed values, and reverted
    env.kubectl("-n", bundle.NAMESPACE, "patch", "secret/db", "--type", "merge", "-p",
                json.dumps({"data": {"password": base64.b64encode(b"tampered").decode()}}))
    outcome = agent.run_once(check_drift=True)
    assert [(e.fields, e.reverted) for e in outcome.drift] == [(["data.password"], True)]
    assert base64.b64decode(env.live(placeholder)["data"]["password"]).decode() == value
    # the value never shows up in what the agent sends, caches or logs
    encoded = base64.b64encode(value.encode()).decode()
    sent = "".join(r.model_dump_json() for r in env.hub.reports[env.cluster])
    cached = (env.state_dir / "desired.json").read_text()
    for text in (sent, cached, caplog.text):
        assert value not in text and encoded not in text


def test_secrets_that_cannot_be_opened_leave_the_last_good_state(env: Harness) -> None:
    objects = bundle.full_bundle(env.cluster)
    env.hub.set_desired(env.cluster, objects)
    agent = env.agent()
    env.converge(agent)
    placeholder = bundle.owned({"apiVersion": "v1", "kind": "Secret",
                                "metadata": {"name": "db", "namespace": bundle.NAMESPACE,
                                             "annotations": {ANNOTATION_SECRET_SOURCE: "vault"}},
                                "stringData": {"password": "vault:kv/db#password"}}, env.cluster)
    # the hub sends a placeholder without sealed values for it: nothing of the revision is applied
    env.hub.set_desired(env.cluster, [*(o for o in objects if o["kind"] != "ConfigMap"), placeholder],
                        revision="r2")
    env.sim.reset_counters()
    outcome = agent.run_once()
    assert outcome.fetched == "refused" and env.writes() == 0
    assert env.live(bundle.configmap()) is not None and env.live(placeholder) is None
    assert any("no sealed values" in e for e in env.hub.last_report(env.cluster).errors)


def test_rejected_credential_rebootstraps_with_a_new_token_file(env: Harness) -> None:
    env.hub.set_desired(env.cluster, bundle.full_bundle(env.cluster))
    agent = env.agent()
    env.converge(agent)
    recipient = FileStateStore(env.state_dir).load().recipient
    env.hub.revoke_credentials(env.cluster)
    stuck = agent.run_once()
    assert stuck.fetched == "error" and any("no unused bootstrap token" in e for e in stuck.errors)
    for obj in bundle.full_bundle(env.cluster):
        assert env.live(obj) is not None
    env.new_token()
    recovered = agent.run_once()
    assert recovered.fetched == "unchanged", recovered.errors
    assert env.hub.requests_to("/bootstrap") == 2
    state = FileStateStore(env.state_dir).load()
    assert state.credential in env.hub.credentials and state.recipient == recipient


def test_api_down_reports_cluster_unreachable(env: Harness) -> None:
    env.hub.set_desired(env.cluster, bundle.full_bundle(env.cluster))
    agent = env.agent()
    env.converge(agent)
    env.sim.faults.api_down(True)
    try:
        outcome = agent.run_once()
        assert outcome.reported
        health = env.hub.last_report(env.cluster).clusterHealth
        assert health.status == "Unreachable" and not health.apiReachable
    finally:
        env.sim.faults.api_down(False)
    assert agent.run_once().report.clusterHealth.status == "Healthy"


def test_not_ready_node_degrades_cluster_health(env: Harness) -> None:
    env.hub.set_desired(env.cluster, bundle.full_bundle(env.cluster))
    agent = env.agent()
    env.converge(agent)
    node = env.kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}")
    env.sim.faults.node_ready(node, False)
    health = agent.run_once().report.clusterHealth
    assert health.status == "Degraded" and health.nodesReady == health.nodesTotal - 1 and node in health.message


def test_stuck_rollout_is_reported_progressing(env: Harness) -> None:
    objects = bundle.full_bundle(env.cluster)
    env.hub.set_desired(env.cluster, objects)
    agent = env.agent()
    env.converge(agent)
    env.sim.faults.stuck("Deployment", bundle.NAMESPACE, "web", True)
    changed = [o if o["kind"] != "Deployment" else bundle.owned(bundle.deployment(replicas=3), env.cluster)
               for o in objects]
    env.hub.set_desired(env.cluster, changed, revision="r2")
    agent.run_once()
    report = agent.run_once(check_drift=False).report
    health = {o.key: o.health for o in report.objects}
    assert health[bundle.key(bundle.deployment())] == "Progressing" and report.phase == "Progressing"


def test_secret_key_store_keeps_identity_in_cluster(env: Harness) -> None:
    env.hub.set_desired(env.cluster, bundle.full_bundle(env.cluster))
    agent = env.agent(key_store="secret")
    env.converge(agent)
    assert not (env.state_dir / "identity.json").exists()
    secret = env.live({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"namespace": "fleet-system", "name": f"fleet-agent-{env.cluster}"}})
    assert secret is not None
    stored = json.loads(base64.b64decode(secret["data"]["state.json"]))
    assert stored["credential"] in env.hub.credentials
    assert env.hub.cluster(env.cluster).recipient == stored["recipient"]
