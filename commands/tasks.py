"""Task queue commands (seed 000): enqueue with priority, atomic claim, complete, fail.

A queue is the envelope's namespace, so one queue's commands share a partition and apply in one
order. Which task a claim gets, and whether a claim's lease ran out, is decided by the projection in
log time: highest priority first, then the oldest, ties by task id; a claim whose lease ended is
claimable again (the stale claim is released by the next claim that finds it).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from commands.fields import Id, JsonData, Positive, ScopedCommand, TtlSeconds

__all__ = ["TaskClaim", "TaskComplete", "TaskEnqueue", "TaskFail"]

#: Bounds of a task's priority (higher is claimed first).
PRIORITY_MIN = -1_000_000
PRIORITY_MAX = 1_000_000

Priority = Annotated[int, Field(ge=PRIORITY_MIN, le=PRIORITY_MAX)]


class TaskEnqueue(ScopedCommand):
    """`task.enqueue`: add task `task_id` with `payload` and `priority` to the queue (the namespace)."""

    type: Literal["task.enqueue"] = "task.enqueue"
    task_id: Id
    payload: JsonData = None
    priority: Priority = 0


class TaskClaim(ScopedCommand):
    """`task.claim`: give `worker` the next claimable task for `lease_s` seconds of log time."""

    type: Literal["task.claim"] = "task.claim"
    worker: Id
    lease_s: TtlSeconds


class TaskComplete(ScopedCommand):
    """`task.complete`: finish `task_id` with `result`; `claim` must be the current claim's number."""

    type: Literal["task.complete"] = "task.complete"
    task_id: Id
    claim: Positive
    result: JsonData = None


class TaskFail(ScopedCommand):
    """`task.fail`: give up on `task_id` (`requeue`: back to pending, else failed for good)."""

    type: Literal["task.fail"] = "task.fail"
    task_id: Id
    claim: Positive
    error: Annotated[str, Field(max_length=4_096)] = ""
    requeue: bool = False
