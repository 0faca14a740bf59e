"""Commands of the hive (seeds 000 and 003): channels, the agent registry, proposals and votes.

A channel is the envelope's namespace (its name follows namespace syntax: `global`, `project:x`),
so a channel's commands share a partition and its feed has one order. Agent records live in the
namespace `agents` and proposals in the caller's namespace. The voter of a vote is the envelope's
agent (from credentials), never a field of the body.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from commands.fields import Id, JsonData, Metadata, Positive, ScopedCommand

__all__ = [
    "AGENTS_NAMESPACE",
    "AgentHeartbeat",
    "AgentRegister",
    "ChannelCreate",
    "ChannelShare",
    "ChannelSubscribe",
    "ProposalCreate",
    "ProposalVote",
]

#: The namespace that holds a tenant's agent records (one partition per tenant).
AGENTS_NAMESPACE = "agents"
#: Capabilities one agent may list.
CAPABILITIES_MAX = 64

_Text = Annotated[str, Field(max_length=4_096)]


class ChannelCreate(ScopedCommand):
    """`channel.create`: make the channel named by the envelope's namespace."""

    type: Literal["channel.create"] = "channel.create"
    visibility: Literal["public", "private"] = "public"
    description: _Text = ""


class ChannelSubscribe(ScopedCommand):
    """`channel.subscribe`: record that the sending agent follows the channel (live push is `/v1/ws`)."""

    type: Literal["channel.subscribe"] = "channel.subscribe"


class ChannelShare(ScopedCommand):
    """`channel.share`: put a reference (a memory, a KV record, a run event...) on the channel's feed."""

    type: Literal["channel.share"] = "channel.share"
    kind: Id
    ref: Annotated[str, Field(min_length=1, max_length=1_024)]
    note: _Text = ""
    data: JsonData = None


class AgentRegister(ScopedCommand):
    """`agent.register`: the sending agent's name, type and capabilities (in namespace `agents`)."""

    type: Literal["agent.register"] = "agent.register"
    name: Annotated[str, Field(min_length=1, max_length=256)]
    agent_type: Id = "agent"
    capabilities: Annotated[list[Id], Field(default_factory=list, max_length=CAPABILITIES_MAX)]
    metadata: Metadata | None = None


class AgentHeartbeat(ScopedCommand):
    """`agent.heartbeat`: the sending agent is alive (`busy` or not) at this log time."""

    type: Literal["agent.heartbeat"] = "agent.heartbeat"
    busy: bool = False


class ProposalCreate(ScopedCommand):
    """`proposal.create`: a yes/no question decided when `quorum` votes agree."""

    type: Literal["proposal.create"] = "proposal.create"
    proposal_id: Id
    title: Annotated[str, Field(min_length=1, max_length=1_024)]
    description: _Text = ""
    quorum: Positive


class ProposalVote(ScopedCommand):
    """`proposal.vote`: the sending agent's vote; one per agent, decided at quorum."""

    type: Literal["proposal.vote"] = "proposal.vote"
    proposal_id: Id
    vote: Literal["yes", "no"]
