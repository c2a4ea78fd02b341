"""Fault injection and request counters for one simulated cluster."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")


@dataclass
class Counters:
    """Requests per verb. `total` sums the seven verbs; discovery requests are counted apart."""

    _counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*VERBS, "discovery"), 0))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, verb: str) -> None:
        with self._lock:
            self._counts[verb] = self._counts.get(verb, 0) + 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            result = dict(self._counts)
        result["total"] = sum(result[verb] for verb in VERBS)
        return result

    def reset(self) -> None:
        with self._lock:
            for key in self._counts:
                self._counts[key] = 0


class Faults:
    """Knobs a test or `fleet sim fault` turns on one cluster.

    `api_down` and the node/workload faults act through callbacks the simulator wires up,
    because they must run on the simulator's event loop.
    """

    def __init__(
        self,
        set_down: Callable[[bool], None],
        set_node_ready: Callable[[str, bool], None],
        set_stuck: Callable[[str, str, str, bool], None],
    ) -> None:
        self._set_down = set_down
        self._set_node_ready = set_node_ready
        self._set_stuck = set_stuck
        self.added_latency = 0.0
        self.failure_rate = 0.0
        self.down = False

    def api_down(self, down: bool = True) -> None:
        """Stop (True) or restart (False) this cluster's listener; clients get connection refused meanwhile."""
        self._set_down(down)

    def latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        self.added_latency = float(seconds)

    def error_rate(self, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("error rate must be between 0 and 1")
        self.failure_rate = float(rate)

    def node_ready(self, node_name: str, ready: bool = True) -> None:
        self._set_node_ready(node_name, ready)

    def stuck(self, kind: str, namespace: str, name: str, stuck: bool = True) -> None:
        self._set_stuck(kind, namespace, name, stuck)

    def should_fail(self) -> bool:
        return self.failure_rate > 0 and random.random() < self.failure_rate

    def clear(self) -> None:
        self.added_latency = 0.0
        self.failure_rate = 0.0
