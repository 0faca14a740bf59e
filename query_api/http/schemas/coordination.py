"""Response models of the state record and lock routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["LockPublic", "StateList", "StatePublic"]


class StatePublic(BaseModel):
    """A state record with its version and last write (log time)."""

    namespace: str
    name: str
    value: Any
    version: int
    created_at_ms: int
    updated_at_ms: int
    updated_by: str | None


class StateList(BaseModel):
    """A page of state records in name order; `next_cursor` pages on."""

    items: list[StatePublic]
    next_cursor: str | None


class LockPublic(BaseModel):
    """A lock: holder, fencing token, lease end (log time) and whether it is held now."""

    namespace: str
    name: str
    holder: str | None
    fencing_token: int
    expires_at_ms: int | None
    held: bool
