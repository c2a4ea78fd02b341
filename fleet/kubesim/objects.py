"""Small helpers about objects and time shared by the simulator modules."""

from __future__ import annotations

import datetime as dt
import random
import sys
import uuid
from typing import Any

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def timestamp(moment: dt.datetime | None = None) -> str:
    """RFC 3339 with second precision, as Kubernetes writes metav1.Time."""
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_suffix(length: int = 5) -> str:
    return "".join(random.choice(_GENERATE_ALPHABET) for _ in range(length))


def deep_copy(obj: Any) -> Any:
    """Copy a JSON-shaped value, interning keys and short strings.

    Thousands of stored objects repeat the same keys and values ("metadata",
    "imagePullPolicy", "TCP"); sharing one string object each keeps a 100-cluster
    simulator's memory down.
    """
    kind = type(obj)
    if kind is dict:
        return {_intern(key): deep_copy(value) for key, value in obj.items()}
    if kind is list:
        return [deep_copy(value) for value in obj]
    if kind is str and len(obj) <= 64:
        return _intern(obj)
    return obj


_intern = sys.intern


def human_duration(seconds: float) -> str:
    """Kubernetes' duration.HumanDuration (what `kubectl get` shows in AGE)."""
    total = int(seconds)
    if total < 0:
        return "<invalid>"
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        rest = total % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = total // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24
        rest = days % 365
        return f"{days // 365}y{rest}d" if rest else f"{days // 365}y"
    return f"{hours // 24 // 365}y"

