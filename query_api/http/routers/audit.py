"""Governance (DESIGN §11): write barriers per namespace, and the audit view of what they denied.

- `PUT /v1/namespaces/{namespace}/barrier` (admin): `{"agents": [...] | null, "tools": {"<tool>":
  ["<key prefix>", ...]} | null}` replaces the namespace's barrier; both null removes it. It is a
  logged command (`barrier.set`), so every node and every rebuild denies the same writes.
- `GET /v1/namespaces/{namespace}/barrier` (reader): the barrier, or nulls when there is none.
- `GET /v1/audit/denials` (admin): the caller's tenant's denied writes (newest `limit`), each with
  its position, log time, command id and type, agent, tool, keys and the reason. A denied write is
  in the log, answered 403 `forbidden`, and changed no state.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from commands import BarrierSet
from commands.barriers import MAX_BARRIER_ENTRIES
from commands.fields import Id, Namespace
from projections.barriers import BarriersModel
from query_api.http.deps import AdminDep, TokenQuery, View, ViewDep, WaitQuery, WriterDep, execute
from query_api.http.responses import json_response
from query_api.http.schemas.audit import BarrierPublic, DenialList
from query_api.http.schemas.writes import WriteAccepted

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["audit"])

NamespacePath = Annotated[Namespace, Path(description="Namespace the barrier governs")]
#: Most denials one audit answer lists.
DENIALS_LIMIT_MAX: Final = 10_000
Prefixes = Annotated[list[Annotated[str, Field(max_length=512)]], Field(max_length=MAX_BARRIER_ENTRIES)]


class BarrierPut(BaseModel):
    """Body of `PUT /v1/namespaces/{namespace}/barrier`."""

    model_config = ConfigDict(extra="forbid", strict=True)
    agents: Annotated[list[Id], Field(max_length=MAX_BARRIER_ENTRIES)] | None = Field(
        None, description="Agents that may write here (null: any agent)"
    )
    tools: Annotated[dict[Id, Prefixes], Field(max_length=MAX_BARRIER_ENTRIES)] | None = Field(
        None, description="Tools that may write here, each with the key prefixes it may write ([]: any key)"
    )
    command_id: Id | None = Field(None, description="Idempotency key")


def _barriers(view: View) -> BarriersModel:
    model = view.model("barriers")
    if not isinstance(model, BarriersModel):
        raise TypeError("the barriers model is missing")
    return model


@router.put("/namespaces/{namespace}/barrier", response_model=WriteAccepted)
async def put_barrier(namespace: NamespacePath, body: BarrierPut, node: WriterDep, admin: AdminDep) -> Response:
    """Replace the namespace's write barrier (admin); both fields null removes it."""
    command = BarrierSet(agents=body.agents, tools=body.tools)
    return json_response(await execute(node, admin.caller, command, namespace=namespace, command_id=body.command_id))


@router.get("/namespaces/{namespace}/barrier", response_model=BarrierPublic)
async def get_barrier(
    namespace: NamespacePath, view: ViewDep, token: TokenQuery = None, wait_ms: WaitQuery = None
) -> Response:
    """The namespace's write barrier: agents and tools allowed (nulls: no barrier)."""
    await view.wait_token(token, wait_ms)
    barrier = _barriers(view).barrier(view.tenant, namespace)
    public = {"agents": None, "tools": None} if barrier is None else barrier.public()
    return json_response({"namespace": namespace, **public})


@router.get("/audit/denials", response_model=DenialList)
async def list_denials(
    view: ViewDep,
    admin: AdminDep,
    namespace: Annotated[Namespace | None, Query(description="Only this namespace's denials")] = None,
    limit: Annotated[int, Query(ge=1, le=DENIALS_LIMIT_MAX)] = 1_000,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """The tenant's writes denied by barriers, oldest first (admin)."""
    await view.wait_token(token, wait_ms)
    denials = _barriers(view).denials(admin.caller.tenant, namespace, limit)
    return json_response({"items": [denial.public() for denial in denials]})
