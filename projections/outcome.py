"""What applying one command yields: `applied` with a result, or `rejected` with a reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["REJECT_REASONS", "Outcome", "Rejected", "UnknownReasonError"]

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
    "idempotency_key_reused",
    "lease_expired",
)


class UnknownReasonError(ValueError):
    """A read model named a rejection reason that is not in `REJECT_REASONS` (a bug, never data)."""


class Rejected(Exception):
    """Raised by a read model's apply method: the command changes nothing and is recorded as rejected."""

    def __init__(self, reason: str, detail: str, **extra: Any) -> None:
        if reason not in REJECT_REASONS:
            raise UnknownReasonError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.extra = extra


@dataclass(frozen=True, slots=True)
class Outcome:
    """The recorded result of one command, kept by tenant and `command_id` for idempotent retries.

    `fingerprint` is the `command_fingerprint` of the command it is the outcome of (empty for
    outcomes never remembered), so a retry is recognised and a reused key is refused.
    """

    status: Literal["applied", "rejected"]
    result: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    detail: str | None = None
    fingerprint: str = ""

    def public(self) -> dict[str, Any]:
        """The outcome as JSON for clients: status, result, reason, detail (no fingerprint)."""
        return {"status": self.status, "result": self.result, "reason": self.reason, "detail": self.detail}
