"""FastAPI dependencies: the node, the caller's identity, the branch view, and the write helper every router uses.

Every read and write goes through a `View` (`ViewDep` for reads, `WriterDep` for writes): the
`branch` query parameter (default `main`) picks the branch, and a read's `as_of` (a cut or a log
time, see `query_api.node.branches`) picks a scratch state rebuilt to that cut, with the as-of time as
the reader's clock. A write with `as_of` is refused (400 `as_of_on_write`). The branch is the
caller's tenant's (main is shared). Roles (see `query_api.http.auth`): a view needs `reader`, a writer
`writer`; `ReaderDep`, `WriterRoleDep` and `AdminDep` require a role of routes that use no view.
With API keys, a missing or unknown key is 401 `unauthorized`, a role too weak 403 `forbidden`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request

from commands import Caller, Command, Envelope, stamp
from projections.engine import EngineState
from projections.model import ReadModel
from projections.records import RecordsModel
from query_api.http.auth import ApiKeys, AuthError, Principal, Role, allows, resolve_principal
from query_api.http.openapi import IDENTITY_PATTERN
from query_api.http.problems import ApiProblem, rejection_problem
from query_api.node.branches import BRANCH_NAME_PATTERN, DEFAULT_TENANT, MAIN, AsOf, Branch
from query_api.node.consistency import Consistency, read_index
from query_api.node.node import Node, WriteResult
from query_api.settings import Settings

__all__ = [
    "QUERY_CUT_CHARS_MAX",
    "AdminDep",
    "AsOfQuery",
    "BranchQuery",
    "CallerDep",
    "NodeDep",
    "PrincipalDep",
    "ReaderDep",
    "TokenQuery",
    "View",
    "ViewDep",
    "WaitQuery",
    "WriterDep",
    "WriterRoleDep",
    "execute",
]

_IDENTITY = re.compile(IDENTITY_PATTERN)


async def get_node(request: Request) -> Node:
    """The node this app serves."""
    node: Node = request.app.state.node
    return node


async def get_principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
    x_tenant: Annotated[str | None, Header()] = None,
    x_agent_id: Annotated[str | None, Header()] = None,
    x_tool_id: Annotated[str | None, Header()] = None,
) -> Principal:
    """The caller and its role: from its API key when keys are configured, else from the identity headers."""
    keys: ApiKeys | None = request.app.state.api_keys
    for name, value in (("X-Tenant", x_tenant), ("X-Agent-Id", x_agent_id), ("X-Tool-Id", x_tool_id)):
        if value is not None and not _IDENTITY.fullmatch(value):
            raise ApiProblem(400, "invalid", f"{name} must match [A-Za-z0-9._:@-]{{1,256}}")
    try:
        return resolve_principal(keys, authorization, x_api_key, x_tenant, x_agent_id, x_tool_id)
    except AuthError as error:
        raise ApiProblem(401, "unauthorized", str(error)) from error


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_caller(principal: PrincipalDep) -> Caller:
    """The caller's identity (tenant, agent, tool)."""
    return principal.caller


def check_role(principal: Principal, needed: Role) -> Principal:
    """`principal` if its role allows `needed`, else a 403 problem."""
    if not allows(principal.role, needed):
        raise ApiProblem(
            403, "forbidden", f"this needs the {needed} role; the key's role is {principal.role}", role=principal.role
        )
    return principal


async def require_reader(principal: PrincipalDep) -> Principal:
    """The caller, who must hold at least the reader role."""
    return check_role(principal, "reader")


async def require_writer(principal: PrincipalDep) -> Principal:
    """The caller, who must hold at least the writer role."""
    return check_role(principal, "writer")


async def require_admin(principal: PrincipalDep) -> Principal:
    """The caller, who must hold the admin role."""
    return check_role(principal, "admin")


NodeDep = Annotated[Node, Depends(get_node)]
CallerDep = Annotated[Caller, Depends(get_caller)]
#: Longest `token` or `as_of` in a query string: the HTTP server refuses request heads over 16 KiB.
QUERY_CUT_CHARS_MAX = 4_096
ReaderDep = Annotated[Principal, Depends(require_reader)]
WriterRoleDep = Annotated[Principal, Depends(require_writer)]
AdminDep = Annotated[Principal, Depends(require_admin)]
TokenQuery = Annotated[
    str | None,
    Query(
        max_length=QUERY_CUT_CHARS_MAX,
        description="Consistency token from a write: the read waits until the node has applied it",
    ),
]
WaitQuery = Annotated[int | None, Query(ge=0, le=60_000, description="Longest wait for the token, in ms")]
BranchQuery = Annotated[
    str,
    Query(
        max_length=128,
        pattern=BRANCH_NAME_PATTERN,
        description="The branch to read or write: `main` (default) or a branch made with `POST /v1/branches`",
    ),
]
AsOfQuery = Annotated[
    str | None,
    Query(
        max_length=QUERY_CUT_CHARS_MAX,
        description="Read as of a cut (`0:12,3:40`, unnamed partitions 0) or a log time (`t:<ms>` or ISO-8601)",
    ),
]

ConsistencyQuery = Annotated[
    Consistency,
    Query(description="`strong`: linearizable on any node (waits until the log's end as of the request is applied)"),
]


class View:
    """What one request reads and writes: a branch of the node, live or as of a past cut."""

    def __init__(
        self,
        node: Node,
        branch: Branch,
        as_of: AsOf | None = None,
        state: EngineState | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> None:
        self.node = node
        self.branch = branch
        self.tenant = tenant
        self.as_of = as_of
        self._state = state

    @property
    def settings(self) -> Settings:
        """The node's settings."""
        return self.node.settings

    @property
    def state(self) -> EngineState:
        """The state reads use: the scratch state as of the cut, else the branch's live state."""
        return self._state if self._state is not None else self.branch.state

    def model(self, name: str) -> ReadModel:
        """The read model called `name` in that state."""
        return self.state.model(name)

    @property
    def records(self) -> RecordsModel:
        """The KV read model."""
        model = self.model("records")
        assert isinstance(model, RecordsModel)
        return model

    def now_ms(self) -> int:
        """The reader's clock: the as-of time for a read as of a cut, else the node's clock."""
        return self.as_of.clock_ms if self.as_of is not None else self.node.now_ms()

    def _branch(self) -> Branch | None:
        """The branch to hand to the node (None: main, through the node's own path)."""
        return None if self.branch.name == MAIN else self.branch

    async def wait_token(self, token: str | None, wait_ms: int | None = None) -> None:
        """Wait until the branch has applied a token's cut (bounded)."""
        await self.node.wait_token(token, wait_ms, self._branch())

    async def execute(self, envelope: Envelope) -> WriteResult:
        """Append a command to the branch and answer with its outcome once applied."""
        return await self.node.execute(envelope, self._branch())


async def get_view(
    node: NodeDep,
    reader: ReaderDep,
    branch: BranchQuery = MAIN,
    as_of: AsOfQuery = None,
    consistency: ConsistencyQuery = "default",
) -> View:
    """The view a read uses: the caller's `branch`, live (after a read index when `strong`) or as of `as_of`."""
    tenant = reader.caller.tenant
    handle = await node.branches.get(tenant, branch)
    if as_of is None:
        if consistency == "strong":
            await read_index(node.log, handle.topic, handle.engine, node.settings.read_wait_ms_max / 1000)
        return View(node, handle, tenant=tenant)
    resolved = await node.branches.resolve_as_of(handle, as_of, node.settings.read_wait_ms_max / 1000)
    return View(node, handle, resolved, await node.branches.state_at(handle, resolved.cut, tenant), tenant)


async def get_writer(request: Request, node: NodeDep, writer: WriterRoleDep, branch: BranchQuery = MAIN) -> View:
    """The view a write uses: the caller's live `branch`; a write as of the past is refused."""
    if "as_of" in request.query_params:
        raise ApiProblem(400, "as_of_on_write", "writes cannot take as_of: the past is read-only (branch from it)")
    tenant = writer.caller.tenant
    return View(node, await node.branches.get(tenant, branch), tenant=tenant)


ViewDep = Annotated[View, Depends(get_view)]
WriterDep = Annotated[View, Depends(get_writer)]


async def execute(
    node: View | Node,
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
