from __future__ import annotations

from pathlib import Path

from fleet.inventory import load_inventory
from fleet.inventory.models import LabelSelector, LabelSelectorRequirement
from fleet.plan import GroupState, plan_fleet, selector_matches
from fleet.plan.failover import MemberSignal, decide_failover, move_to
from tests.inventory.test_loader import write


def cluster(name: str, env: str, extra: str = "") -> str:
    return f"name: {name}\nprovider: {{type: kubeconfig, context: {name}}}\nlabels: {{env: {env}}}\n{extra}"


def test_selector_semantics() -> None:
    labels = {"env": "prod", "tier": "web"}
    assert selector_matches(LabelSelector(), labels)
    assert selector_matches(LabelSelector(matchLabels={"env": "prod"}), labels)
    assert not selector_matches(LabelSelector(matchLabels={"env": "dev"}), labels)
    expr = LabelSelectorRequirement
    assert selector_matches(LabelSelector(matchExpressions=[expr(key="env", operator="In", values=["prod", "x"])]), labels)
    assert not selector_matches(LabelSelector(matchExpressions=[expr(key="env", operator="NotIn", values=["prod"])]), labels)
    assert selector_matches(LabelSelector(matchExpressions=[expr(key="gpu", operator="DoesNotExist")]), labels)
    assert not selector_matches(LabelSelector(matchExpressions=[expr(key="gpu", operator="Exists")]), labels)


def test_first_matching_target_customises(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "clusters/dev.yaml": cluster("dev", "dev", "values: {color: blue}\n"),
            "clusters/prod.yaml": cluster("prod", "prod"),
            "clusters/lab.yaml": cluster("lab", "lab"),
            "apps/web/fleet.yaml": (
                "values: {color: red, replicas: 1}\n"
                "targets:\n"
                "  - name: prod\n    clusterSelector: {matchLabels: {env: prod}}\n    values: {replicas: 3}\n"
                "  - name: all-but-lab\n    clusterSelector:\n"
                "      matchExpressions: [{key: env, operator: NotIn, values: [lab]}]\n"
                "  - name: nothing\n    clusterName: ghost-cluster\n"
            ),
        },
    )
    plan = plan_fleet(load_inventory(tmp_path))
    assert plan.apps_on("lab") == []
    [prod] = plan.placements["prod"]
    assert prod.target.name == "prod"
    assert prod.values["replicas"] == 3 and prod.values["color"] == "red"
    [dev] = plan.placements["dev"]
    assert dev.target.name == "all-but-lab"
    assert dev.values["color"] == "blue"  # cluster values beat app defaults
    assert dev.values["cluster"]["name"] == "dev"
    assert [w.field for w in plan.warnings] == ["targets[2]"]


def test_dependency_order_and_missing_dependency(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "clusters/dev.yaml": cluster("dev", "dev"),
            "clusters/prod.yaml": cluster("prod", "prod"),
            "apps/app/fleet.yaml": "targets: [{clusterSelector: {}}]\ndependsOn: [db]\n",
            "apps/db/fleet.yaml": "targets: [{clusterName: dev}]\n",
        },
    )
    plan = plan_fleet(load_inventory(tmp_path))
    assert plan.apps_on("dev") == ["db", "app"]
    [problem] = plan.problems
    assert "does not target cluster 'prod'" in problem.message


def _failover_repo(tmp_path: Path, mode: str) -> None:
    member = "failover: {{group: web, role: {role}, priority: {prio}}}\n"
    write(
        tmp_path,
        {
            "fleet.yaml": f"failover:\n  groups:\n    web: {{mode: {mode}, policy: auto}}\n",
            "clusters/east.yaml": cluster("east", "prod", member.format(role="primary", prio=100)),
            "clusters/west.yaml": cluster("west", "prod", member.format(role="standby", prio=50)),
            "clusters/north.yaml": cluster("north", "prod", member.format(role="standby", prio=80)),
            "apps/pay/fleet.yaml": "failover: true\nfailoverGroup: web\ntargets: [{clusterSelector: {}}]\n",
        },
    )


def test_cold_failover_placement_and_epochs(tmp_path: Path) -> None:
    _failover_repo(tmp_path, "cold")
    inv = load_inventory(tmp_path)
    plan = plan_fleet(inv)
    assert plan.apps_on("east") == ["pay"] and plan.apps_on("west") == [] and plan.apps_on("north") == []
    moved = plan_fleet(inv, {"web": move_to(GroupState("web", "east"), "west", "test")})
    assert moved.apps_on("west") == ["pay"]
    assert moved.placements["west"][0].scale_to_zero is False
    # the old primary stands down in place (scale-down policy) rather than fighting
    assert moved.placements["east"][0].scale_to_zero is True
    assert moved.epochs == {"east": 1, "west": 1, "north": 1}


def test_warm_standby_runs_at_zero(tmp_path: Path) -> None:
    _failover_repo(tmp_path, "warm")
    plan = plan_fleet(load_inventory(tmp_path))
    assert [p.scale_to_zero for p in plan.placements["west"]] == [True]
    assert [p.scale_to_zero for p in plan.placements["east"]] == [False]


def test_decide_failover_prefers_priority_and_holds_down(tmp_path: Path) -> None:
    _failover_repo(tmp_path, "cold")
    inv = load_inventory(tmp_path)
    members = inv.failover_groups()["web"]
    state = GroupState("web", "east")
    ok = MemberSignal(seconds_since_heartbeat=1, poll_interval=5)
    dead = MemberSignal(seconds_since_heartbeat=16, poll_interval=5)
    kwargs = {"missed": 3, "unhealthy_intervals": 3, "hold_down": 120.0}
    healthy = decide_failover(state, members, {"east": ok, "west": ok, "north": ok}, seconds_since_last_move=None, **kwargs)
    assert healthy.move_to is None
    decision = decide_failover(state, members, {"east": dead, "west": ok, "north": ok}, seconds_since_last_move=None, **kwargs)
    assert decision.move_to == "north"  # highest priority healthy standby
    assert "missed 3 heartbeats" in decision.reason
    held = decide_failover(state, members, {"east": dead, "west": ok, "north": ok}, seconds_since_last_move=30, **kwargs)
    assert held.move_to is None and "held down" in held.reason
    briefly = MemberSignal(seconds_since_heartbeat=1, poll_interval=5, seconds_unhealthy=10)
    assert decide_failover(state, members, {"east": briefly, "west": ok}, seconds_since_last_move=None, **kwargs).move_to is None
    unhealthy = MemberSignal(seconds_since_heartbeat=1, poll_interval=5, seconds_unhealthy=15)
    decision = decide_failover(state, members, {"east": unhealthy, "west": ok, "north": dead}, seconds_since_last_move=None, **kwargs)
    assert decision.move_to == "west"
    assert "unhealthy cluster for 15s" in decision.reason


def test_old_primary_removes_failover_apps_when_policy_says_remove(tmp_path: Path) -> None:
    _failover_repo(tmp_path, "cold")
    settings = (tmp_path / "fleet.yaml").read_text().replace("policy: auto}", "policy: auto, oldPrimary: remove}")
    (tmp_path / "fleet.yaml").write_text(settings)
    inv = load_inventory(tmp_path)
    moved = plan_fleet(inv, {"web": move_to(GroupState("web", "east"), "west", "test")})
    assert moved.apps_on("west") == ["pay"]
    assert moved.apps_on("east") == []  # pruned there by its agent once it is back
