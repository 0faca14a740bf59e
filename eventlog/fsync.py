"""Durability policies of the embedded log: `always` (default), `interval:<ms>`, `never`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from eventlog.errors import InvalidRequestError

__all__ = ["FsyncPolicy"]

#: Longest interval the `interval:<ms>` policy accepts.
MAX_FSYNC_INTERVAL_MS = 60_000


@dataclass(frozen=True, slots=True)
class FsyncPolicy:
    """When the embedded log forces appended bytes to disk.

    - `always`: an append returns only after fdatasync of its segment (and of the directory on roll).
    - `interval`: an append returns after write(); a timer syncs every `interval_ms`. A crash may lose
      the last interval of acknowledged appends.
    - `never`: the OS decides (tests and benchmarks only). A crash may lose acknowledged appends.
    """

    mode: Literal["always", "interval", "never"] = "always"
    interval_ms: int = 0

    @classmethod
    def parse(cls, text: str | FsyncPolicy) -> FsyncPolicy:
        """Parse `always`, `never` or `interval:<ms>`."""
        if isinstance(text, FsyncPolicy):
            return text
        if text == "always":
            return cls("always")
        if text == "never":
            return cls("never")
        if text.startswith("interval:"):
            try:
                interval_ms = int(text.removeprefix("interval:"))
            except ValueError:
                interval_ms = -1
            if 1 <= interval_ms <= MAX_FSYNC_INTERVAL_MS:
                return cls("interval", interval_ms)
        raise InvalidRequestError(
            f"fsync policy {text!r}: expected always, never or interval:<ms> with 1..{MAX_FSYNC_INTERVAL_MS} ms"
        )

    def __str__(self) -> str:
        return f"interval:{self.interval_ms}" if self.mode == "interval" else self.mode
