"""The hive over REST: channels and feeds, the agent registry (`POST /v1/agents` registers the caller), votes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import Field

from commands import Caller, Command, new_id
from commands.fields import Id, JsonData, Metadata, Namespace, Positive
from commands.hive import (
    AGENTS_NAMESPACE,
    CAPABILITIES_MAX,
    AgentHeartbeat,
    AgentRegister,
    ChannelCreate,
    ChannelShare,
    ChannelSubscribe,
    ProposalCreate,
    ProposalVote,
)
from commands.limits import DEFAULT_NAMESPACE
from projections.hive import AgentsModel, ChannelsModel, ProposalsModel
from query_api.http.bodies import NamespacedWriteOptions, WriteOptions
from query_api.http.deps import CallerDep, TokenQuery, View, ViewDep, WaitQuery, WriterDep, execute
from query_api.http.problems import ApiProblem

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["hive"])

ChannelPath = Annotated[Namespace, Path(description="The channel (namespace syntax: `global`, `project:x`)")]
NamespaceQuery = Annotated[Namespace, Query(description="Namespace of the proposal")]
#: Most feed items one call returns.
FEED_LIMIT_MAX = 1_000


class ChannelCreation(WriteOptions):
    """Body of `POST /v1/channels`."""

    channel: Namespace = Field(..., description="The channel's name")
    visibility: Literal["public", "private"] = Field("public", description="private: only its creator writes to it")
    description: str = Field("", max_length=4_096)


class ChannelShareRequest(WriteOptions):
    """Body of `POST /v1/channels/{channel}/share`: a reference to a memory, a record or an event."""

    kind: Id = Field(..., description="What `ref` names: memory, kv, event, run, ...")
    ref: str = Field(..., min_length=1, max_length=1_024, description="Its id (for kv: namespace/key)")
    note: str = Field("", max_length=4_096)
    data: JsonData = Field(None, description="Any JSON value carried with the share")


class AgentRegistration(WriteOptions):
    """Body of `POST /v1/agents/register` (the agent is the caller's identity)."""

    name: str = Field(..., min_length=1, max_length=256)
    agent_type: Id = "agent"
    capabilities: list[Id] = Field(default_factory=list, max_length=CAPABILITIES_MAX)
    metadata: Metadata | None = None


class Heartbeat(WriteOptions):
    """Body of `POST /v1/agents/heartbeat`."""

    busy: bool = False


class ProposalSubmission(NamespacedWriteOptions):
    """Body of `POST /v1/proposals`."""

    proposal_id: Id | None = Field(None, description="Default: minted by the node")
    title: str = Field(..., min_length=1, max_length=1_024)
    description: str = Field("", max_length=4_096)
    quorum: Positive = Field(..., description="Agreeing votes that decide it")


class Ballot(NamespacedWriteOptions):
    """Body of `POST /v1/proposals/{proposal_id}/vote` (the voter is the caller's agent)."""

    vote: Literal["yes", "no"]


def _model(view: View, name: str) -> Any:
    return view.state.model(name)


def channels(view: View) -> ChannelsModel:
    """The channels read model."""
    model = _model(view, "channels")
    assert isinstance(model, ChannelsModel)
    return model


def agents(view: View) -> AgentsModel:
    """The agent registry read model."""
    model = _model(view, "agents")
    assert isinstance(model, AgentsModel)
    return model


def proposals(view: View) -> ProposalsModel:
    """The proposals read model."""
    model = _model(view, "proposals")
    assert isinstance(model, ProposalsModel)
    return model


async def write(view: View, caller: Caller, namespace: str, command: Command, body: WriteOptions) -> dict[str, Any]:
    """Execute a hive command in `namespace` with the body's run and idempotency key."""
    return await execute(view, caller, command, namespace=namespace, run_id=body.run_id, command_id=body.command_id)


# -- channels -------------------------------------------------------------------------------------


@router.post("/channels")
async def create_channel(body: ChannelCreation, view: WriterDep, caller: CallerDep) -> dict[str, Any]:
    """Create a channel; 409 `already_exists` if the name is taken in this tenant."""
    command = ChannelCreate(visibility=body.visibility, description=body.description)
    return await write(view, caller, body.channel, command, body)


@router.get("/channels")
async def list_channels(
    view: ViewDep, caller: CallerDep, token: TokenQuery = None, wait_ms: WaitQuery = None
) -> dict[str, Any]:
    """The tenant's channels by name."""
    await view.wait_token(token, wait_ms)
    return {"items": channels(view).list(caller.tenant)}


@router.get("/channels/{channel}")
async def get_channel(
    channel: ChannelPath, view: ViewDep, caller: CallerDep, token: TokenQuery = None, wait_ms: WaitQuery = None
) -> dict[str, Any]:
    """A channel: visibility, creator, subscribers, feed length."""
    await view.wait_token(token, wait_ms)
    found = channels(view).get(caller.tenant, channel)
    if found is None:
        raise ApiProblem(404, "not_found", f"no channel {channel!r}")
    return found


@router.post("/channels/{channel}/subscribe")
async def subscribe_channel(
    channel: ChannelPath, body: WriteOptions, view: WriterDep, caller: CallerDep
) -> dict[str, Any]:
    """Record that the calling agent follows the channel (the live stream is `/v1/ws?channel=`)."""
    return await write(view, caller, channel, ChannelSubscribe(), body)


@router.post("/channels/{channel}/share")
async def share_to_channel(
    channel: ChannelPath, body: ChannelShareRequest, view: WriterDep, caller: CallerDep
) -> dict[str, Any]:
    """Put a reference on the channel's feed; answers its `seq`."""
    command = ChannelShare(kind=body.kind, ref=body.ref, note=body.note, data=body.data)
    return await write(view, caller, channel, command, body)


@router.get("/channels/{channel}/feed")
async def channel_feed(
    channel: ChannelPath,
    view: ViewDep,
    caller: CallerDep,
    after: Annotated[int, Query(ge=0, description="The last seq already seen (cursor)")] = 0,
    limit: Annotated[int, Query(ge=1, le=FEED_LIMIT_MAX)] = 100,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> dict[str, Any]:
    """Feed items after `after`, oldest first; `next_cursor` is the last seq when a full page came back."""
    await view.wait_token(token, wait_ms)
    items = channels(view).feed(caller.tenant, channel, after, limit)
    if items is None:
        raise ApiProblem(404, "not_found", f"no channel {channel!r}")
    return {"items": items, "next_cursor": items[-1]["seq"] if len(items) == limit else None}


# -- agents ---------------------------------------------------------------------------------------


@router.post("/agents")
async def register_agent(body: AgentRegistration, view: WriterDep, caller: CallerDep) -> dict[str, Any]:
    """Register (or re-register) the calling agent."""
    command = AgentRegister(
        name=body.name, agent_type=body.agent_type, capabilities=body.capabilities, metadata=body.metadata
    )
    return await write(view, caller, AGENTS_NAMESPACE, command, body)


@router.post("/agents/{agent_id}/heartbeat")
async def heartbeat(
    agent_id: Annotated[Id, Path()], body: Heartbeat, view: WriterDep, caller: CallerDep
) -> dict[str, Any]:
    """The calling agent (`agent_id` must be the caller) is alive, busy or not, at this log time."""
    if agent_id != caller.agent_id:
        raise ApiProblem(403, "forbidden", f"agent {caller.agent_id!r} cannot send heartbeats for {agent_id!r}")
    return await write(view, caller, AGENTS_NAMESPACE, AgentHeartbeat(busy=body.busy), body)


@router.get("/agents")
async def list_agents(
    view: ViewDep, caller: CallerDep, token: TokenQuery = None, wait_ms: WaitQuery = None
) -> dict[str, Any]:
    """The tenant's agents with their status (online, busy, offline) at the reader's clock."""
    await view.wait_token(token, wait_ms)
    return {"items": agents(view).list(caller.tenant, view.now_ms())}


@router.get("/whoami")
async def whoami(
    view: ViewDep, caller: CallerDep, token: TokenQuery = None, wait_ms: WaitQuery = None
) -> dict[str, Any]:
    """The caller's identity, its agent record, the channels it follows and how much it shared."""
    await view.wait_token(token, wait_ms)
    agent_id = caller.agent_id
    record = agents(view).get(caller.tenant, agent_id, view.now_ms()) if agent_id else None
    followed = channels(view).subscribed(caller.tenant, agent_id) if agent_id else []
    return {
        "tenant": caller.tenant,
        "agent_id": agent_id,
        "tool_id": caller.tool_id,
        "agent": record,
        "channels": followed,
    }


@router.get("/agents/{agent_id}")
async def get_agent(
    agent_id: Annotated[Id, Path()],
    view: ViewDep,
    caller: CallerDep,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> dict[str, Any]:
    """One agent with its status; 404 if not registered."""
    await view.wait_token(token, wait_ms)
    found = agents(view).get(caller.tenant, agent_id, view.now_ms())
    if found is None:
        raise ApiProblem(404, "not_found", f"no agent {agent_id!r}")
    return found


# -- proposals ------------------------------------------------------------------------------------


@router.post("/proposals")
async def propose(body: ProposalSubmission, view: WriterDep, caller: CallerDep) -> dict[str, Any]:
    """Open a yes/no proposal decided when `quorum` votes agree."""
    command = ProposalCreate(
        proposal_id=body.proposal_id or new_id(), title=body.title, description=body.description, quorum=body.quorum
    )
    return await write(view, caller, body.namespace or DEFAULT_NAMESPACE, command, body)


@router.post("/proposals/{proposal_id}/vote")
async def vote(proposal_id: Annotated[Id, Path()], body: Ballot, view: WriterDep, caller: CallerDep) -> dict[str, Any]:
    """Vote once as the calling agent; the vote that reaches quorum answers the decision."""
    command = ProposalVote(proposal_id=proposal_id, vote=body.vote)
    return await write(view, caller, body.namespace or DEFAULT_NAMESPACE, command, body)


@router.get("/proposals")
async def list_proposals(
    view: ViewDep,
    caller: CallerDep,
    namespace: NamespaceQuery = DEFAULT_NAMESPACE,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> dict[str, Any]:
    """The proposals of a namespace by id."""
    await view.wait_token(token, wait_ms)
    return {"items": proposals(view).list(caller.tenant, namespace)}


@router.get("/proposals/{proposal_id}")
async def get_proposal(
    proposal_id: Annotated[Id, Path()],
    view: ViewDep,
    caller: CallerDep,
    namespace: NamespaceQuery = DEFAULT_NAMESPACE,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> dict[str, Any]:
    """A proposal with its votes, tally and decision."""
    await view.wait_token(token, wait_ms)
    found = proposals(view).get(caller.tenant, namespace, proposal_id)
    if found is None:
        raise ApiProblem(404, "not_found", f"no proposal {proposal_id!r}")
    return found
