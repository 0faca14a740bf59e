"""What applying one command yields: `applied` with a result, or `rejected` with a reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Outcome", "Rejected"]

#: Reasons a projection may reject a command; each maps to an HTTP status in the query API.
REJECT_REASONS = (
    "version_conflict",
    "forbidden",
    "schema_violation",
    "not_found",
    "cross_partition",
    "already_exists",
    "precondition_failed",
    "invalid",
    "lock_held",
    "run_closed",
    "lease_expired",
)


class Rejected(Exception):
    """Raised by a read model's apply method: the command changes nothing and is recorded as rejected."""

    def __init__(self, reason: str, detail: str, **extra: Any) -> None:
        assert reason in REJECT_REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.extra = extra


@dataclass(frozen=True, slots=True)
class Outcome:
    """The recorded result of one command, kept by `command_id` for idempotent retries."""

    status: Literal["applied", "rejected"]
    result: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    detail: str | None = None
