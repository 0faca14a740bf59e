"""FastAPI dependencies: the node, the caller's identity, and the write helper every router uses."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request

from commands import Caller, Command, stamp
from query_api.auth import ApiKeys, AuthError, resolve_caller
from query_api.node import Node
from query_api.problems import ApiProblem, rejection_problem

__all__ = ["CallerDep", "NodeDep", "TokenQuery", "WaitQuery", "execute"]

_IDENTITY = re.compile(r"[A-Za-z0-9._:@-]{1,256}")


def get_node(request: Request) -> Node:
    """The node this app serves."""
    node: Node = request.app.state.node
    return node


def get_caller(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
    x_tenant: Annotated[str | None, Header()] = None,
    x_agent_id: Annotated[str | None, Header()] = None,
    x_tool_id: Annotated[str | None, Header()] = None,
) -> Caller:
    """The caller: from its API key when keys are configured, else from the identity headers."""
    keys: ApiKeys | None = request.app.state.api_keys
    for name, value in (("X-Tenant", x_tenant), ("X-Agent-Id", x_agent_id), ("X-Tool-Id", x_tool_id)):
        if value is not None and not _IDENTITY.fullmatch(value):
            raise ApiProblem(400, "invalid", f"{name} must match [A-Za-z0-9._:@-]{{1,256}}")
    try:
        return resolve_caller(keys, authorization, x_api_key, x_tenant, x_agent_id, x_tool_id)
    except AuthError as error:
        raise ApiProblem(401, "unauthorized", str(error)) from error


NodeDep = Annotated[Node, Depends(get_node)]
CallerDep = Annotated[Caller, Depends(get_caller)]
TokenQuery = Annotated[
    str | None, Query(description="Consistency token from a write: the read waits until the node has applied it")
]
WaitQuery = Annotated[int | None, Query(ge=0, le=60_000, description="Longest wait for the token, in ms")]


async def execute(
    node: Node,
    caller: Caller,
    command: Command,
    *,
    namespace: str | None = None,
    run_id: str | None = None,
    command_id: str | None = None,
) -> dict[str, Any]:
    """Stamp, append and apply a command; the write body, or a problem if the projection rejected it."""
    envelope = stamp(
        command,
        caller,
        namespace=namespace,
        run_id=run_id,
        command_id=command_id,
        require_run=node.settings.require_run,
    )
    result = await node.execute(envelope)
    if result.outcome.status == "rejected":
        raise rejection_problem(result.outcome, result.body())
    return result.body()
