"""The failover controller: watches each group's active cluster and moves its apps when it fails.

Decisions are the pure functions in `fleet.plan.failover`; this module feeds
them with heartbeats and reported health, and carries out a move: bump the
epoch (fencing), re-render, point DNS, notify. The old primary is never
fought over: when it returns, its agent receives the newer epoch and stands
down (scales to zero or removes the apps, per policy).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fleet.hub.core import Hub, HubError
from fleet.hub.notify import NotifyError, point_route53_record, post_webhook
from fleet.inventory.models import ClusterSpec, FailoverGroupSettings
from fleet.plan.failover import GroupState, MemberSignal, decide_failover, member_failed, move_to, primary_of
from fleet.store.models import ClusterRecord, utcnow

log = logging.getLogger("fleet.hub.failover")

TICK_SECONDS = 2.0


def _seconds_since(when: datetime | None, now: datetime) -> float | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=now.tzinfo)
    return max(0.0, (now - when).total_seconds())


class FailoverController:
    def __init__(
        self,
        hub: Hub,
        *,
        route53_endpoint: str | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.hub = hub
        self.route53_endpoint = route53_endpoint or os.environ.get("FLEET_ROUTE53_ENDPOINT")
        self.now = now
        self.lock = threading.Lock()
        self._warned: set[tuple[str, str]] = set()
        self.watching_since = now()

    def watch_from_now(self) -> None:
        """Called when this hub starts judging (start-up, leadership gained): silence while the hub
        itself was down is no evidence that a cluster failed."""
        self.watching_since = self.now()

    # ------------------------------------------------------------ state

    def _groups(self) -> dict[str, list[ClusterSpec]]:
        current = self.hub.reconciler.current
        return current.inventory.failover_groups() if current else {}

    def _settings(self, group: str) -> FailoverGroupSettings:
        current = self.hub.reconciler.current
        settings = current.inventory.settings.failover.groups.get(group) if current else None
        return settings or FailoverGroupSettings()

    def state(self, group: str, members: list[ClusterSpec]) -> tuple[GroupState, datetime | None]:
        record = self.hub.store.failover_groups().get(group)
        if record is None or record.active not in {m.name for m in members}:
            return GroupState(group=group, active=primary_of(members), epoch=record.epoch if record else 0), None
        return GroupState(group=group, active=record.active, epoch=record.epoch, reason=record.reason), record.moved_at

    def signals(self, members: list[ClusterSpec]) -> dict[str, MemberSignal]:
        now = self.now()
        poll = float(self.hub.agent_poll_interval)
        records: dict[str, ClusterRecord] = {r.name: r for r in self.hub.store.clusters()}
        result = {}
        for member in members:
            record = records.get(member.name)
            if record is None:
                continue
            last_seen = record.agent_last_seen
            if last_seen is not None:
                if last_seen.tzinfo is None:
                    last_seen = last_seen.replace(tzinfo=now.tzinfo)
                last_seen = max(last_seen, self.watching_since)
            result[member.name] = MemberSignal(
                seconds_since_heartbeat=_seconds_since(last_seen, now),
                poll_interval=poll,
                seconds_unhealthy=_seconds_since(record.unhealthy_since, now),
            )
        return result

    # ------------------------------------------------------------ scheduled

    def tick(self) -> None:
        """Scheduled: evaluate every group; move automatically where the policy says auto."""
        with self.lock:
            for group, members in sorted(self._groups().items()):
                try:
                    self._evaluate(group, members)
                except Exception:
                    log.exception("failover evaluation of group %s failed", group)

    def _evaluate(self, group: str, members: list[ClusterSpec]) -> None:
        settings = self._settings(group)
        state, moved_at = self.state(group, members)
        signals = self.signals(members)
        active = signals.get(state.active)
        failed = active is not None and member_failed(active, settings.missedHeartbeats, settings.unhealthyReports)
        if not failed:
            self._warned.discard((group, state.active))
            return
        if settings.policy == "manual":
            if (group, state.active) not in self._warned:
                self._warned.add((group, state.active))
                self.hub.store.add_event(
                    "failover.needed",
                    f"group {group}: active cluster {state.active} has failed; policy is manual, "
                    f"run `fleet failover {group}` to move its apps",
                    severity="error",
                    cluster=state.active,
                )
            return
        decision = decide_failover(
            state,
            members,
            signals,
            missed=settings.missedHeartbeats,
            unhealthy_intervals=settings.unhealthyReports,
            seconds_since_last_move=_seconds_since(moved_at, self.now()),
            hold_down=float(settings.holdDown),
        )
        if decision.move_to is None:
            key = (group, decision.reason)
            if key not in self._warned:
                self._warned.add(key)
                self.hub.store.add_event(
                    "failover.blocked", f"group {group}: {decision.reason}", severity="warning", cluster=state.active
                )
            return
        self._move(group, state, decision.move_to, f"automatic: {decision.reason}")

    # ------------------------------------------------------------ moves

    def _move(self, group: str, state: GroupState, target: str, reason: str) -> GroupState:
        moved = move_to(state, target, reason)
        settings = self._settings(group)
        dns_value = None
        notes: list[str] = []
        if settings.dns is not None:
            value = settings.dns.targets.get(target)
            if value is None:
                notes.append(f"no DNS value declared for {target}; record {settings.dns.record} unchanged")
            else:
                try:
                    point_route53_record(settings.dns, value, self.route53_endpoint)
                    dns_value = value
                    notes.append(f"{settings.dns.record} -> {value}")
                except NotifyError as exc:
                    notes.append(str(exc))
        self.hub.store.put_failover_group(group, moved.active, moved.epoch, reason, dns_value)
        message = (
            f"group {group} failed over from {state.active} to {target} (epoch {moved.epoch}): {reason}"
            + (f"; {'; '.join(notes)}" if notes else "")
        )
        self.hub.store.add_event("failover", message, severity="warning", cluster=target)
        self.hub.reconciler.rerender(f"failover of group {group} to {target} (epoch {moved.epoch})")
        if settings.webhook:
            event: dict[str, Any] = {
                "kind": "failover",
                "group": group,
                "from": state.active,
                "to": target,
                "epoch": moved.epoch,
                "reason": reason,
                "dns": dns_value,
            }
            try:
                post_webhook(settings.webhook, f":rotating_light: fleet: {message}", event)
            except NotifyError as exc:
                self.hub.store.add_event("failover.notify-failed", str(exc), severity="warning", cluster=target)
        log.warning(message)
        return moved

    def failover(self, group: str, to: str | None, actor: str = "operator") -> GroupState:
        """`fleet failover GROUP [--to CLUSTER]`: a person decides (any policy)."""
        with self.lock:
            members = self._groups().get(group)
            if not members:
                raise HubError(404, f"no failover group {group!r} in the revision in force")
            state, _ = self.state(group, members)
            names = {m.name for m in members}
            if to is not None and to not in names:
                raise HubError(400, f"{to!r} is not a member of group {group!r} ({', '.join(sorted(names))})")
            if to is None:
                settings = self._settings(group)
                signals = self.signals(members)
                healthy = {
                    name: sig.seconds_since_heartbeat is not None
                    and not member_failed(sig, settings.missedHeartbeats, settings.unhealthyReports)
                    for name, sig in signals.items()
                }
                candidates = sorted(
                    (m for m in members if m.name != state.active and healthy.get(m.name)),
                    key=lambda m: (-(m.failover.priority if m.failover else 0), m.name),
                )
                if not candidates:
                    raise HubError(409, f"group {group}: no healthy standby to fail over to")
                to = candidates[0].name
            if to == state.active:
                raise HubError(409, f"{to} is already the active cluster of group {group}")
            return self._move(group, state, to, f"manual failover by {actor}")

    def failback(self, group: str, actor: str = "operator") -> GroupState:
        """`fleet failback GROUP`: return the group's apps to its primary."""
        with self.lock:
            members = self._groups().get(group)
            if not members:
                raise HubError(404, f"no failover group {group!r} in the revision in force")
            state, _ = self.state(group, members)
            primary = primary_of(members)
            if state.active == primary:
                raise HubError(409, f"group {group} already runs on its primary {primary}")
            return self._move(group, state, primary, f"failback to primary by {actor}")

    def adopt_reported_epoch(self, cluster: str, epoch: int) -> None:
        """After a store rebuild, agents know a newer epoch than the store: continue from it,
        so the fencing never locks the fleet out."""
        with self.lock:
            for group, members in self._groups().items():
                if cluster not in {m.name for m in members}:
                    continue
                state, _ = self.state(group, members)
                if epoch > state.epoch:
                    self.hub.store.put_failover_group(group, state.active, epoch, "epoch adopted from agent report")
                    self.hub.store.add_event(
                        "failover.epoch-adopted",
                        f"group {group}: continuing from epoch {epoch} reported by {cluster}'s agent",
                        cluster=cluster,
                    )
                    self.hub.reconciler.rerender(f"epoch adopted for group {group}")


def install_failover(daemon: Any) -> FailoverController:
    controller = FailoverController(daemon.hub)
    daemon.hub.failover = controller

    def install(d: Any) -> None:
        d.scheduler.add_job(controller.tick, "interval", seconds=TICK_SECONDS, id="failover")

    daemon.add_job_installer(install)
    return controller
