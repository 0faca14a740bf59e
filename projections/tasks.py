"""The task queue read model (seed 000): priority, atomic claim, leases in log time, complete, fail.

A queue is `(tenant, namespace)`. Each task is a plain dict (its status `pending`, `claimed`,
`completed` or `failed`, its claim number, worker, lease end, result or error). A claim applies in
the queue's one partition order, so two claims never get one task:

- `task.claim` at log time T first releases every claim whose lease ended (`lease_until_ms <= T`)
  back to pending, then takes the pending task with the highest priority, then the oldest enqueue
  (log time, then offset), ties by task id; it answers `{"task": null}` when nothing is claimable.
  Each claim of a task gets the next claim number, which `complete` and `fail` must present.
- `task.complete` / `task.fail` need the task claimed under that claim number and its lease not
  ended at their log time: otherwise `version_conflict` (another claim is current), `lease_expired`
  or `invalid` (not claimed). `fail` with `requeue` puts the task back (it keeps its age).
"""

from __future__ import annotations

import hashlib
from bisect import insort
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import orjson

from commands.tasks import TaskClaim, TaskComplete, TaskEnqueue, TaskFail
from projections.model import ApplyContext, ReadModel, from_keyed_rows, keyed_rows
from projections.outcome import Rejected

__all__ = ["TASK_STATUSES", "TasksModel"]

TASK_STATUSES = ("pending", "claimed", "completed", "failed")

_Queue = tuple[str, str]
#: Pending order: highest priority, then oldest enqueue (log time, offset), ties by id.
_PendingKey = tuple[int, int, int, str]


def _pending_key(task: dict[str, Any]) -> _PendingKey:
    return (-task["priority"], task["enqueued_at_ms"], task["enqueued_offset"], task["task_id"])


class TasksModel(ReadModel):
    """Task queues per `(tenant, namespace)`; every task and index is plain data."""

    name: ClassVar[str] = "tasks"
    command_types: ClassVar[frozenset[str]] = frozenset(("task.claim", "task.complete", "task.enqueue", "task.fail"))

    def __init__(self) -> None:
        self._tasks: dict[_Queue, dict[str, dict[str, Any]]] = {}
        self._pending: dict[_Queue, list[_PendingKey]] = {}
        self._leases: dict[_Queue, list[tuple[int, str]]] = {}

    def apply(self, context: ApplyContext) -> dict[str, Any]:
        """Apply a `task.*` command; raise `Rejected` having changed nothing."""
        envelope = context.envelope
        command = envelope.command
        assert envelope.namespace is not None  # task commands are namespace-scoped
        queue = (envelope.tenant, envelope.namespace)
        now = context.log_time_ms
        if isinstance(command, TaskEnqueue):
            return self._enqueue(queue, command, context)
        if isinstance(command, TaskClaim):
            return self._claim(queue, command, now)
        if isinstance(command, TaskComplete | TaskFail):
            return self._finish(queue, command, now)
        raise Rejected("invalid", f"{envelope.type} is not a task command")

    def _enqueue(self, queue: _Queue, command: TaskEnqueue, context: ApplyContext) -> dict[str, Any]:
        tasks = self._tasks.setdefault(queue, {})
        if command.task_id in tasks:
            raise Rejected("already_exists", f"task {command.task_id!r} is already in the queue")
        task: dict[str, Any] = {
            "task_id": command.task_id,
            "payload": command.payload,
            "priority": command.priority,
            "status": "pending",
            "enqueued_at_ms": context.log_time_ms,
            "enqueued_offset": context.offset,
            "enqueued_by": context.envelope.agent_id,
            "claim": 0,
            "worker": None,
            "claimed_at_ms": None,
            "lease_until_ms": None,
            "result": None,
            "error": None,
            "updated_at_ms": context.log_time_ms,
        }
        tasks[command.task_id] = task
        insort(self._pending.setdefault(queue, []), _pending_key(task))
        return {"task": dict(task)}

    def _release_stale(self, queue: _Queue, now: int) -> None:
        leases = self._leases.get(queue)
        if not leases:
            return
        tasks = self._tasks[queue]
        pending = self._pending.setdefault(queue, [])
        while leases and leases[0][0] <= now:
            _, task_id = leases.pop(0)
            task = tasks[task_id]
            task.update(status="pending", worker=None, lease_until_ms=None, updated_at_ms=now)
            insort(pending, _pending_key(task))

    def _claim(self, queue: _Queue, command: TaskClaim, now: int) -> dict[str, Any]:
        self._release_stale(queue, now)
        pending = self._pending.get(queue)
        if not pending:
            return {"task": None}
        task_id = pending.pop(0)[3]
        task = self._tasks[queue][task_id]
        lease_until = now + command.lease_s * 1000
        task.update(
            status="claimed",
            claim=task["claim"] + 1,
            worker=command.worker,
            claimed_at_ms=now,
            lease_until_ms=lease_until,
            updated_at_ms=now,
        )
        insort(self._leases.setdefault(queue, []), (lease_until, task_id))
        return {"task": dict(task)}

    def _finish(self, queue: _Queue, command: TaskComplete | TaskFail, now: int) -> dict[str, Any]:
        task = self._tasks.get(queue, {}).get(command.task_id)
        if task is None:
            raise Rejected("not_found", f"no task {command.task_id!r} in this queue")
        if task["status"] != "claimed":
            raise Rejected("invalid", f"task {command.task_id!r} is {task['status']}, not claimed")
        if task["claim"] != command.claim:
            raise Rejected(
                "version_conflict",
                f"claim {command.claim} of task {command.task_id!r} is not current",
                current_claim=task["claim"],
            )
        if task["lease_until_ms"] <= now:
            raise Rejected("lease_expired", f"the lease of claim {command.claim} ended at {task['lease_until_ms']}")
        self._leases[queue].remove((task["lease_until_ms"], command.task_id))
        if isinstance(command, TaskComplete):
            task.update(status="completed", result=command.result, lease_until_ms=None, updated_at_ms=now)
        elif command.requeue:
            task.update(status="pending", worker=None, error=command.error, lease_until_ms=None, updated_at_ms=now)
            insort(self._pending.setdefault(queue, []), _pending_key(task))
        else:
            task.update(status="failed", error=command.error, lease_until_ms=None, updated_at_ms=now)
        return {"task": dict(task)}

    # -- reads -------------------------------------------------------------------------------------

    def get(self, tenant: str, namespace: str, task_id: str) -> dict[str, Any] | None:
        """One task as stored (a copy), or None."""
        task = self._tasks.get((tenant, namespace), {}).get(task_id)
        return None if task is None else dict(task)

    def list(self, tenant: str, namespace: str, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Tasks of a queue in claim order for pending ones, else by task id; optionally one status."""
        tasks = self._tasks.get((tenant, namespace), {})
        if status == "pending":
            return [dict(tasks[key[3]]) for key in self._pending.get((tenant, namespace), [])[:limit]]
        chosen = [tasks[task_id] for task_id in sorted(tasks) if status is None or tasks[task_id]["status"] == status]
        return [dict(task) for task in chosen[:limit]]

    def counts(self, tenant: str, namespace: str) -> dict[str, int]:
        """How many tasks of a queue are in each status (as stored: an ended lease counts as claimed)."""
        counts = dict.fromkeys(TASK_STATUSES, 0)
        for task in self._tasks.get((tenant, namespace), {}).values():
            counts[task["status"]] += 1
        return counts

    def snapshot_state(self) -> Iterator[Any]:
        """Three pieces: the tasks, the pending index and the lease index, by queue, sorted."""
        yield keyed_rows(self._tasks)
        yield keyed_rows({queue: [list(key) for key in keys] for queue, keys in self._pending.items()})
        yield keyed_rows({queue: [list(lease) for lease in leases] for queue, leases in self._leases.items()})

    def restore_state(self, pieces: Iterable[Any]) -> None:
        """Replace the (fresh) state with the three `snapshot_state` pieces."""
        tasks, pending, leases = pieces
        for queue, table in from_keyed_rows(tasks).items():
            self._tasks[(queue[0], queue[1])] = table
        for queue, keys in from_keyed_rows(pending).items():
            self._pending[(queue[0], queue[1])] = [(int(a), int(b), int(c), str(d)) for a, b, c, d in keys]
        for queue, rows in from_keyed_rows(leases).items():
            self._leases[(queue[0], queue[1])] = [(int(until), str(task_id)) for until, task_id in rows]

    def digest(self) -> str:
        """SHA-256 over every queue's tasks in sorted order (the indexes follow from them)."""
        digest = hashlib.sha256()
        for queue in sorted(self._tasks):
            tasks = self._tasks[queue]
            for task_id in sorted(tasks):
                digest.update(orjson.dumps([queue, tasks[task_id]], option=orjson.OPT_SORT_KEYS))
                digest.update(b"\n")
        return digest.hexdigest()
