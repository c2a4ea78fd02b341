"""Failover decisions: which member of a group is active. Pure functions.

The hub's failover controller feeds these with heartbeats and health, and
persists the resulting GroupState (with its fencing epoch) in the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from fleet.inventory.loader import Inventory
from fleet.inventory.models import ClusterSpec


@dataclass(frozen=True)
class GroupState:
    group: str
    active: str
    epoch: int = 0
    reason: str = ""


def primary_of(members: Sequence[ClusterSpec]) -> str:
    for member in members:
        if member.failover is not None and member.failover.role == "primary":
            return member.name
    return sorted(m.name for m in members)[0]


def initial_group_states(inventory: Inventory) -> dict[str, GroupState]:
    """Every group starts on its primary at epoch 0."""
    return {
        group: GroupState(group=group, active=primary_of(members), epoch=0, reason="initial")
        for group, members in inventory.failover_groups().items()
    }


def choose_standby(
    members: Sequence[ClusterSpec], exclude: str, healthy: Mapping[str, bool], prefer: str | None = None
) -> str | None:
    """The healthy member with the highest priority, other than `exclude`.

    `prefer` (from `fleet failover --to`) wins when it is a healthy member.
    """
    candidates = [m for m in members if m.name != exclude and healthy.get(m.name, False)]
    if prefer is not None:
        return prefer if any(m.name == prefer for m in candidates) else None
    if not candidates:
        return None
    candidates.sort(key=lambda m: (-(m.failover.priority if m.failover else 0), m.name))
    return candidates[0].name


def move_to(state: GroupState, cluster: str, reason: str) -> GroupState:
    """Every move increments the epoch, so agents can fence stale instructions."""
    return replace(state, active=cluster, epoch=state.epoch + 1, reason=reason)


@dataclass(frozen=True)
class MemberSignal:
    """What the hub knows about a member when deciding."""

    seconds_since_heartbeat: float | None  # None: never seen
    poll_interval: float
    seconds_unhealthy: float | None = None  # how long its agent has reported Unreachable/Degraded, if it does


def missed_heartbeats(signal: MemberSignal, missed: int) -> bool:
    return signal.seconds_since_heartbeat is not None and signal.seconds_since_heartbeat > missed * signal.poll_interval


def member_failed(signal: MemberSignal, missed: int, unhealthy_intervals: int) -> bool:
    """Failed: `missed` heartbeat intervals without a word, or unhealthy for `unhealthy_intervals` intervals.

    Agents report on change, so unhealthiness is measured in time, not in reports.
    """
    if signal.seconds_since_heartbeat is None:
        return False  # never seen: not evidence of failure (e.g. the hub just started)
    if missed_heartbeats(signal, missed):
        return True
    return signal.seconds_unhealthy is not None and signal.seconds_unhealthy >= unhealthy_intervals * signal.poll_interval


@dataclass(frozen=True)
class FailoverDecision:
    move_to: str | None
    reason: str


def decide_failover(
    state: GroupState,
    members: Sequence[ClusterSpec],
    signals: Mapping[str, MemberSignal],
    *,
    missed: int,
    unhealthy_intervals: int,
    seconds_since_last_move: float | None,
    hold_down: float,
) -> FailoverDecision:
    """Automatic policy: move off a failed active cluster to the best healthy standby.

    Hysteresis: no automatic move within `hold_down` seconds of the last one,
    and only to a member that is itself heartbeating and healthy.
    """
    active_signal = signals.get(state.active)
    if active_signal is None or not member_failed(active_signal, missed, unhealthy_intervals):
        return FailoverDecision(None, "active cluster is healthy")
    if seconds_since_last_move is not None and seconds_since_last_move < hold_down:
        return FailoverDecision(None, f"held down: last move {seconds_since_last_move:.0f}s ago (< {hold_down:.0f}s)")
    healthy = {
        name: (not member_failed(sig, missed, unhealthy_intervals) and sig.seconds_since_heartbeat is not None)
        for name, sig in signals.items()
    }
    target = choose_standby(members, exclude=state.active, healthy=healthy)
    if target is None:
        return FailoverDecision(None, f"{state.active} failed but no healthy standby is available")
    if missed_heartbeats(active_signal, missed):
        why = f"{state.active} missed {missed} heartbeats"
    else:
        why = f"{state.active} has reported an unhealthy cluster for {active_signal.seconds_unhealthy or 0:.0f}s"
    return FailoverDecision(target, why)
