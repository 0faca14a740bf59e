"""`agentlog tasks`: enqueue, claim, complete, fail and list tasks of a queue; answers print as JSON."""

from __future__ import annotations

import click

from agentlog.client import AgentlogClient
from agentlog.tasks import Task, TaskQueue
from query_api.cli.verbs import _echo_json, _json_argument, _with_client

__all__ = ["register", "tasks"]


@click.group()
def tasks() -> None:
    """Task queues: enqueue with priority, claim atomically, complete or fail."""


@tasks.command("enqueue")
@click.argument("queue")
@click.argument("payload_json", metavar="JSON", default="null")
@click.option("--priority", type=int, default=0, show_default=True, help="Higher is claimed first.")
@click.option("--id", "task_id", default=None, help="The task id (default: minted by the node).")
@_with_client
def tasks_enqueue(client: AgentlogClient, queue: str, payload_json: str, priority: int, task_id: str | None) -> None:
    """Add a task with payload JSON to QUEUE."""
    payload = _json_argument(payload_json, "JSON")
    _echo_json(TaskQueue(client, queue).enqueue(payload, priority=priority, task_id=task_id))


@tasks.command("claim")
@click.argument("queue")
@click.option("--worker", required=True, help="Who claims.")
@click.option("--lease", "lease_s", type=click.IntRange(min=1), default=60, show_default=True, help="Lease in seconds.")
@_with_client
def tasks_claim(client: AgentlogClient, queue: str, worker: str, lease_s: int) -> None:
    """Claim the next task of QUEUE (prints null when none is claimable)."""
    _echo_json(TaskQueue(client, queue).claim(worker, lease_s=lease_s))


@tasks.command("complete")
@click.argument("queue")
@click.argument("task_id")
@click.option("--claim", type=click.IntRange(min=1), required=True, help="The claim number the claim printed.")
@click.option("--result", "result_json", default="null", help="The result as JSON.")
@_with_client
def tasks_complete(client: AgentlogClient, queue: str, task_id: str, claim: int, result_json: str) -> None:
    """Finish TASK_ID of QUEUE under claim number --claim."""
    result = _json_argument(result_json, "--result")
    _echo_json(TaskQueue(client, queue).complete(_claimed(task_id, claim), result))


@tasks.command("fail")
@click.argument("queue")
@click.argument("task_id")
@click.option("--claim", type=click.IntRange(min=1), required=True, help="The claim number the claim printed.")
@click.option("--error", default="", help="Why it failed.")
@click.option("--requeue", is_flag=True, help="Put the task back in the queue.")
@_with_client
def tasks_fail(client: AgentlogClient, queue: str, task_id: str, claim: int, error: str, requeue: bool) -> None:
    """Give up on TASK_ID of QUEUE (failed for good, or back in the queue with --requeue)."""
    _echo_json(TaskQueue(client, queue).fail(_claimed(task_id, claim), error, requeue=requeue))


@tasks.command("list")
@click.argument("queue")
@click.option("--status", type=click.Choice(["pending", "claimed", "completed", "failed"]), default=None)
@click.option("--limit", type=click.IntRange(1, 1_000), default=100, show_default=True)
@_with_client
def tasks_list(client: AgentlogClient, queue: str, status: str | None, limit: int) -> None:
    """List tasks of QUEUE (pending ones in claim order)."""
    _echo_json(TaskQueue(client, queue).list(status, limit=limit))


def _claimed(task_id: str, claim: int) -> Task:
    """A stand-in for a claimed task: complete and fail need only its id and claim number."""
    return Task(task_id, None, 0, "claimed", claim, None, 0, None, None, None)


def register(main: click.Group) -> None:
    """Add the `tasks` group to the `agentlog` command."""
    main.add_command(tasks)
