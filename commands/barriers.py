"""`barrier.set` (internal: only an admin route of the server stamps it): who may write in a namespace.

A barrier is namespaced, so it routes to the partition of every write it governs and is applied in
order with them: the same writes are denied on every node and in every rebuild. With a barrier set,
a write in the namespace applies only if its agent is listed in `agents` (when given) and its tool
is a key of `tools` (when given) and every key it writes starts with one of that tool's prefixes
(an empty list: any key). Both None removes the barrier.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from commands.fields import Id, ScopedCommand

__all__ = ["MAX_BARRIER_ENTRIES", "BarrierSet"]

#: Most agents, tools, or prefixes of one tool, a barrier lists.
MAX_BARRIER_ENTRIES = 256


class BarrierSet(ScopedCommand):
    """`barrier.set`: replace the namespace's write barrier (agents allowed; tools and their key prefixes)."""

    internal: ClassVar[bool] = True

    type: Literal["barrier.set"] = "barrier.set"
    agents: Annotated[list[Id], Field(max_length=MAX_BARRIER_ENTRIES)] | None = None
    tools: Annotated[
        dict[Id, Annotated[list[Annotated[str, Field(max_length=512)]], Field(max_length=MAX_BARRIER_ENTRIES)]],
        Field(max_length=MAX_BARRIER_ENTRIES),
    ] | None = None

