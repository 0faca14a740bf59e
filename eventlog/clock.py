"""The log's clock: timestamps are stamped at append and never go backwards within a partition."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Clock", "wall_clock_ms"]

#: A source of milliseconds since the epoch; tests pass their own.
Clock = Callable[[], int]


def wall_clock_ms() -> int:
    """Milliseconds since the epoch from the system clock."""
    return time.time_ns() // 1_000_000
