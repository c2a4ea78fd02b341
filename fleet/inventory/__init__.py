"""Parse and validate the fleet repo (`clusters/`, `apps/`, `fleet.yaml`) into typed specs.

No network access here: the hub, `fleet validate` and `fleet plan` all load the
same checkout the same way.
"""

from fleet.inventory.loader import Inventory, load_inventory
from fleet.inventory.models import AppSpec, ClusterSpec, FleetSettings

__all__ = ["AppSpec", "ClusterSpec", "FleetSettings", "Inventory", "load_inventory"]
