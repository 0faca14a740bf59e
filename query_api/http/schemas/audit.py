"""Response models of the write barrier and denial audit routes."""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["BarrierPublic", "DenialList", "DenialPublic"]


class BarrierPublic(BaseModel):
    """A namespace's write barrier: agents and tools (with key prefixes) allowed; nulls: no barrier."""

    namespace: str
    agents: list[str] | None
    tools: dict[str, list[str]] | None


class DenialPublic(BaseModel):
    """One write a barrier refused: position, log time, sender, keys it would have written, and why."""

    tenant: str
    namespace: str
    partition: int
    offset: int
    log_time_ms: int
    command_id: str
    type: str
    agent_id: str | None
    tool_id: str | None
    keys: list[str] | None
    reason: str


class DenialList(BaseModel):
    """Denials oldest first."""

    items: list[DenialPublic]
