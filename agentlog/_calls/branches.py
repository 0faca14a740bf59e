"""The builders of branches and of forking a run onto a new branch (`/v1/branches`)."""

from __future__ import annotations

from functools import partial
from typing import Any

from agentlog._calls.call import Call, json_object, none, options, read_call, segment
from agentlog.errors import InvalidRequestError
from agentlog.models import Branch, Fork, from_json

__all__ = ["create_branch", "delete_branch", "fork_run", "get_branch", "list_branches"]


def _branches(data: Any) -> list[Branch]:
    return [from_json(Branch, item) for item in data["items"]]


def _fork(data: Any) -> Fork:
    return from_json(Fork, data)


def create_branch(
    name: str,
    parent: str | None = None,
    *,
    cut: str | None = None,
    time_ms: int | None = None,
    run_id: str | None = None,
    seq: int | None = None,
    token: str | None = None,
    consistent: bool = True,
) -> Call[Branch]:
    """Make branch `name` of `parent` (default main) at a `cut`, a log `time_ms`, or just after event `seq` of `run_id`.

    With none of them, the branch forks at what the parent has applied. Zero-copy: the branch reads
    its parent below the fork cut; writes on either never reach the other.
    """
    by_run = run_id is not None or seq is not None
    if (cut is not None) + (time_ms is not None) + by_run > 1:
        raise InvalidRequestError(0, "invalid", "give one of cut, time_ms, or run_id with seq")
    at: dict[str, Any] | None = None
    if cut is not None:
        at = {"cut": cut}
    elif time_ms is not None:
        at = {"time_ms": time_ms}
    elif by_run:
        at = {"run_id": run_id, "seq": seq}
    body = {"name": name, **options(at=at)} | ({} if parent is None else {"from": parent})
    return read_call(
        "/v1/branches", partial(from_json, Branch), token, consistent, method="POST", body=body, branch=parent
    )


def list_branches() -> Call[list[Branch]]:
    """Main and every branch of it, by name."""
    return Call("GET", "/v1/branches", _branches)


def get_branch(name: str) -> Call[Branch | None]:
    """Branch `name` (topic, parent, fork cut), or None if absent."""
    return Call("GET", f"/v1/branches/{segment(name)}", partial(from_json, Branch), missing=none)


def delete_branch(name: str) -> Call[dict[str, Any]]:
    """Delete branch `name` and its own records; ConflictError while branches of it exist."""
    return Call("DELETE", f"/v1/branches/{segment(name)}", json_object)


def fork_run(
    run_id: str,
    at_seq: int,
    *,
    new_run_id: str | None = None,
    new_branch: str | None = None,
    branch: str | None = None,
    token: str | None = None,
    consistent: bool = True,
) -> Call[Fork]:
    """Fork the run (of `branch`, default main) onto a new branch just after event `at_seq`; answers the branch.

    The run goes on there under the same run id (pass `branch=fork.branch` to its later calls); with
    `new_run_id`, that run is also begun on the new branch with the forked run as its parent.
    """
    body = {"at_seq": at_seq, **options(new_run_id=new_run_id, branch=new_branch)}
    return read_call(
        f"/v1/runs/{segment(run_id)}/fork", _fork, token, consistent, method="POST", body=body, branch=branch
    )
