"""Strong reads (DESIGN §6): learn the log's end offsets, wait until they are applied, then answer.

This is etcd's ReadIndex done through the log: any write acknowledged before the read began has an
offset below the end offsets the read learns, so once the node has applied them the read sees every
such write, on any node (embedded: the writer's end; Kafka: ListOffsets to the partition leaders).
"""

from __future__ import annotations

from typing import Literal

from eventlog.base import EventLog
from projections.engine import Engine
from query_api.node.node import NotApplied, format_cut

__all__ = ["Consistency", "read_index"]

Consistency = Literal["default", "strong"]


async def read_index(log: EventLog, topic: str, engine: Engine, timeout_s: float) -> dict[int, int]:
    """Wait until `engine` has applied `topic`'s end offsets as of now; the cut waited for (NotApplied on timeout)."""
    ends = dict(enumerate(await log.end_offsets(topic)))
    if not await engine.wait_for(ends, timeout_s):
        raise NotApplied(
            f"strong read: this node has not applied the log's end {format_cut(ends)} within {timeout_s * 1000:.0f} ms"
        )
    return ends
