"""Read models of the hive: channels and their feeds, the agent registry, proposals and votes.

All state is plain data (dicts, lists, tuples); digests walk it in sorted order. Agent status is a
function of the last heartbeat's log time and the reader's clock (like TTL): `online` within
`AGENT_ONLINE_MS` of it (`busy` if that heartbeat said so), else `offline`.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import orjson

from commands.hive import (
    AgentHeartbeat,
    AgentRegister,
    ChannelCreate,
    ChannelShare,
    ChannelSubscribe,
    ProposalCreate,
    ProposalVote,
)
from projections.model import ApplyContext, ReadModel, from_keyed_rows, keyed_rows
from projections.outcome import Rejected

__all__ = ["AGENT_ONLINE_MS", "AgentsModel", "ChannelsModel", "ProposalsModel"]

#: An agent whose last heartbeat is older than this (reader's clock) is offline.
AGENT_ONLINE_MS = 60_000

_Space = tuple[str, str]


def _digest(items: dict[Any, Any]) -> str:
    digest = hashlib.sha256()
    for key in sorted(items):
        digest.update(orjson.dumps([key, items[key]], option=orjson.OPT_SORT_KEYS))
        digest.update(b"\n")
    return digest.hexdigest()


class ChannelsModel(ReadModel):
    """Channels per `(tenant, name)`: metadata, subscribed agents, and a feed numbered from 1."""

    name: ClassVar[str] = "channels"
    command_types: ClassVar[frozenset[str]] = frozenset(("channel.create", "channel.share", "channel.subscribe"))

    def __init__(self) -> None:
        self._channels: dict[_Space, dict[str, Any]] = {}

    def apply(self, context: ApplyContext) -> dict[str, Any]:
        """Apply a `channel.*` command; raise `Rejected` having changed nothing."""
        envelope = context.envelope
        command = envelope.command
        assert envelope.namespace is not None
        space = (envelope.tenant, envelope.namespace)
        channel = self._channels.get(space)
        if isinstance(command, ChannelCreate):
            if channel is not None:
                raise Rejected("already_exists", f"channel {envelope.namespace!r} exists")
            self._channels[space] = {
                "channel": envelope.namespace,
                "visibility": command.visibility,
                "description": command.description,
                "created_by": envelope.agent_id,
                "created_at_ms": context.log_time_ms,
                "subscribers": [],
                "feed": [],
            }
            return {"channel": envelope.namespace}
        if channel is None:
            raise Rejected("not_found", f"no channel {envelope.namespace!r}")
        if channel["visibility"] == "private" and envelope.agent_id != channel["created_by"]:
            raise Rejected("forbidden", f"channel {envelope.namespace!r} is private to its creator")
        if isinstance(command, ChannelSubscribe):
            if envelope.agent_id is None:
                raise Rejected("invalid", "subscribing needs an agent identity (X-Agent-Id or an API key)")
            if envelope.agent_id not in channel["subscribers"]:
                channel["subscribers"] = sorted([*channel["subscribers"], envelope.agent_id])
            return {"channel": envelope.namespace, "subscribers": len(channel["subscribers"])}
        if isinstance(command, ChannelShare):
            item = {
                "seq": len(channel["feed"]) + 1,
                "kind": command.kind,
                "ref": command.ref,
                "note": command.note,
                "data": command.data,
                "shared_by": envelope.agent_id,
                "shared_at_ms": context.log_time_ms,
            }
            channel["feed"].append(item)
            return {"channel": envelope.namespace, "seq": item["seq"]}
        raise Rejected("invalid", f"{envelope.type} is not a channel command")

    def get(self, tenant: str, channel: str) -> dict[str, Any] | None:
        """A channel's metadata (without its feed), or None."""
        found = self._channels.get((tenant, channel))
        if found is None:
            return None
        return {k: v for k, v in found.items() if k != "feed"} | {"feed_length": len(found["feed"])}

    def list(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's channels by name."""
        return [view for space in sorted(self._channels) if space[0] == tenant if (view := self.get(*space))]

    def feed(self, tenant: str, channel: str, after: int = 0, limit: int = 100) -> builtins.list[dict[str, Any]] | None:
        """Feed items with `seq > after`, oldest first (None if no such channel)."""
        found = self._channels.get((tenant, channel))
        if found is None:
            return None
        return [dict(item) for item in found["feed"][after : after + limit]]

    def subscribed(self, tenant: str, agent_id: str) -> builtins.list[str]:
        """The channels `agent_id` subscribed to, by name."""
        return [
            space[1]
            for space in sorted(self._channels)
            if space[0] == tenant and agent_id in self._channels[space]["subscribers"]
        ]

    def snapshot_state(self) -> Iterator[Any]:
        """One piece: every entry as a `[key, value]` row, keys sorted."""
        yield keyed_rows(self._channels)

    def restore_state(self, pieces: Iterable[Any]) -> None:
        """Replace the (fresh) state with the `snapshot_state` piece."""
        for rows in pieces:
            self._channels.update(from_keyed_rows(rows))

    def digest(self) -> str:
        """SHA-256 over every channel with its feed, sorted."""
        return _digest(self._channels)


class AgentsModel(ReadModel):
    """Registered agents per tenant: name, type, capabilities, first and last heartbeat in log time."""

    name: ClassVar[str] = "agents"
    command_types: ClassVar[frozenset[str]] = frozenset(("agent.heartbeat", "agent.register"))

    def __init__(self) -> None:
        self._agents: dict[_Space, dict[str, Any]] = {}

    def apply(self, context: ApplyContext) -> dict[str, Any]:
        """Apply an `agent.*` command; the agent is the envelope's, so one cannot speak for another."""
        envelope = context.envelope
        command = envelope.command
        if envelope.agent_id is None:
            raise Rejected("invalid", "agent commands need an agent identity (X-Agent-Id or an API key)")
        space = (envelope.tenant, envelope.agent_id)
        agent = self._agents.get(space)
        now = context.log_time_ms
        if isinstance(command, AgentRegister):
            registered = agent["registered_at_ms"] if agent is not None else now
            self._agents[space] = {
                "agent_id": envelope.agent_id,
                "name": command.name,
                "agent_type": command.agent_type,
                "capabilities": sorted(set(command.capabilities)),
                "metadata": command.metadata or {},
                "registered_at_ms": registered,
                "last_seen_ms": now,
                "busy": False,
            }
            return {"agent_id": envelope.agent_id}
        if isinstance(command, AgentHeartbeat):
            if agent is None:
                raise Rejected("not_found", f"agent {envelope.agent_id!r} is not registered")
            agent["last_seen_ms"] = now
            agent["busy"] = command.busy
            return {"agent_id": envelope.agent_id, "last_seen_ms": now}
        raise Rejected("invalid", f"{envelope.type} is not an agent command")

    def get(self, tenant: str, agent_id: str, now_ms: int) -> dict[str, Any] | None:
        """An agent with its status at the reader's clock `now_ms`, or None."""
        agent = self._agents.get((tenant, agent_id))
        if agent is None:
            return None
        if now_ms - agent["last_seen_ms"] >= AGENT_ONLINE_MS:
            status = "offline"
        else:
            status = "busy" if agent["busy"] else "online"
        return dict(agent) | {"status": status}

    def list(self, tenant: str, now_ms: int) -> list[dict[str, Any]]:
        """The tenant's agents by id, with their status."""
        return [view for space in sorted(self._agents) if space[0] == tenant if (view := self.get(*space, now_ms))]

    def snapshot_state(self) -> Iterator[Any]:
        """One piece: every entry as a `[key, value]` row, keys sorted."""
        yield keyed_rows(self._agents)

    def restore_state(self, pieces: Iterable[Any]) -> None:
        """Replace the (fresh) state with the `snapshot_state` piece."""
        for rows in pieces:
            self._agents.update(from_keyed_rows(rows))

    def digest(self) -> str:
        """SHA-256 over every agent record, sorted."""
        return _digest(self._agents)


class ProposalsModel(ReadModel):
    """Proposals per `(tenant, namespace, id)`: votes by agent, decided once `quorum` votes agree."""

    name: ClassVar[str] = "proposals"
    command_types: ClassVar[frozenset[str]] = frozenset(("proposal.create", "proposal.vote"))

    def __init__(self) -> None:
        self._proposals: dict[tuple[str, str, str], dict[str, Any]] = {}

    def apply(self, context: ApplyContext) -> dict[str, Any]:
        """Apply a `proposal.*` command; a second vote by one agent is `already_exists`."""
        envelope = context.envelope
        command = envelope.command
        assert envelope.namespace is not None
        if isinstance(command, ProposalCreate):
            key = (envelope.tenant, envelope.namespace, command.proposal_id)
            if key in self._proposals:
                raise Rejected("already_exists", f"proposal {command.proposal_id!r} exists")
            self._proposals[key] = {
                "proposal_id": command.proposal_id,
                "title": command.title,
                "description": command.description,
                "quorum": command.quorum,
                "proposed_by": envelope.agent_id,
                "created_at_ms": context.log_time_ms,
                "votes": {},
                "decision": None,
                "decided_at_ms": None,
            }
            return {"proposal_id": command.proposal_id, "decision": None}
        if isinstance(command, ProposalVote):
            key = (envelope.tenant, envelope.namespace, command.proposal_id)
            proposal = self._proposals.get(key)
            if proposal is None:
                raise Rejected("not_found", f"no proposal {command.proposal_id!r}")
            voter = envelope.agent_id
            if voter is None:
                raise Rejected("invalid", "voting needs an agent identity (X-Agent-Id or an API key)")
            if proposal["decision"] is not None:
                raise Rejected("invalid", f"proposal {command.proposal_id!r} is already {proposal['decision']}")
            if voter in proposal["votes"]:
                raise Rejected("already_exists", f"agent {voter!r} already voted", vote=proposal["votes"][voter])
            proposal["votes"][voter] = command.vote
            tally = self._tally(proposal)
            if tally[command.vote] >= proposal["quorum"]:
                proposal["decision"] = "accepted" if command.vote == "yes" else "rejected"
                proposal["decided_at_ms"] = context.log_time_ms
            return {"proposal_id": command.proposal_id, "tally": tally, "decision": proposal["decision"]}
        raise Rejected("invalid", f"{envelope.type} is not a proposal command")

    @staticmethod
    def _tally(proposal: dict[str, Any]) -> dict[str, int]:
        votes = list(proposal["votes"].values())
        return {"yes": votes.count("yes"), "no": votes.count("no")}

    def get(self, tenant: str, namespace: str, proposal_id: str) -> dict[str, Any] | None:
        """A proposal with its votes and tally, or None."""
        proposal = self._proposals.get((tenant, namespace, proposal_id))
        if proposal is None:
            return None
        return dict(proposal) | {"votes": dict(sorted(proposal["votes"].items())), "tally": self._tally(proposal)}

    def list(self, tenant: str, namespace: str) -> list[dict[str, Any]]:
        """The proposals of a namespace by id."""
        keys = sorted(key for key in self._proposals if key[:2] == (tenant, namespace))
        return [view for key in keys if (view := self.get(*key))]

    def snapshot_state(self) -> Iterator[Any]:
        """One piece: every entry as a `[key, value]` row, keys sorted."""
        yield keyed_rows(self._proposals)

    def restore_state(self, pieces: Iterable[Any]) -> None:
        """Replace the (fresh) state with the `snapshot_state` piece."""
        for rows in pieces:
            self._proposals.update(from_keyed_rows(rows))

    def digest(self) -> str:
        """SHA-256 over every proposal with its votes, sorted."""
        return _digest({key: dict(p) | {"votes": sorted(p["votes"].items())} for key, p in self._proposals.items()})
