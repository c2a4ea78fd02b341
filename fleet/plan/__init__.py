"""Pure planning: who gets which app, failover placement. No I/O."""

from fleet.plan.failover import GroupState
from fleet.plan.placement import FleetPlan, Placement, plan_fleet
from fleet.plan.targeting import selector_matches

__all__ = ["FleetPlan", "GroupState", "Placement", "plan_fleet", "selector_matches"]
