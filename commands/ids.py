"""Time-ordered ids (UUIDv7, RFC 9562) for server-made command and run ids.

Only the producer side calls these (the server minting ids for requests that bring none); nothing a
projection computes depends on them. Ids from one generator are strictly increasing, also within a
millisecond (RFC 9562 §6.2 method 1: `rand_a` is a 12-bit counter seeded randomly each millisecond;
when it overflows the timestamp is advanced by one millisecond).
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable

__all__ = ["UuidV7Generator", "new_id", "uuid7", "uuid7_timestamp_ms"]

_COUNTER_MASK = 0xFFF


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class UuidV7Generator:
    """A thread-safe source of strictly increasing UUIDv7 values; the clock and randomness are injectable."""

    def __init__(self, clock_ms: Callable[[], int] = _wall_ms, randbits: Callable[[int], int] = secrets.randbits):
        self._clock_ms = clock_ms
        self._randbits = randbits
        self._lock = threading.Lock()
        self._last_ms = -1
        self._counter = 0

    def __call__(self) -> uuid.UUID:
        """The next UUIDv7."""
        with self._lock:
            now = self._clock_ms()
            if now > self._last_ms:
                self._last_ms = now
                self._counter = self._randbits(11)  # top bit clear: room to count within the millisecond
            else:
                self._counter += 1
                if self._counter > _COUNTER_MASK:
                    self._last_ms += 1
                    self._counter = self._randbits(11)
            ms, counter = self._last_ms, self._counter
        value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | self._randbits(62)
        return uuid.UUID(int=value)


_DEFAULT = UuidV7Generator()


def uuid7() -> uuid.UUID:
    """A new UUIDv7 from the process-wide generator."""
    return _DEFAULT()


def new_id() -> str:
    """A new UUIDv7 as its canonical 36-character string (lexicographic order = creation order)."""
    return str(_DEFAULT())


def uuid7_timestamp_ms(value: str | uuid.UUID) -> int:
    """The Unix time in milliseconds stored in a UUIDv7 (ValueError if it is not one)."""
    parsed = value if isinstance(value, uuid.UUID) else uuid.UUID(value)
    if parsed.version != 7:
        raise ValueError(f"{value} is not a UUIDv7")
    return parsed.int >> 80
