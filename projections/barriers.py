"""Write barriers (DESIGN §11): per namespace, which agents and tools may write there, and the denials.

`barrier.set` (see `commands.barriers`) sets or removes a namespace's barrier. The engine asks
`check(envelope)` before a namespaced command reaches its model; a denied command is still in the
log, is rejected `forbidden`, changes no other model, and is remembered here as a `Denial` (the
newest `DENIALS_PER_PARTITION_MAX` per partition) for the audit view. A barrier and the writes it
governs share a partition (both route by `tenant/namespace`), so every node denies the same writes.
Internal commands (`kv.expire` from the TTL sweeper, `barrier.set` itself) are never denied.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict, astuple, dataclass
from typing import Any, ClassVar, Final

from commands import BarrierSet, canonical_json
from commands.wire import LoggedEnvelope
from projections.model import ApplyContext, ReadModel

__all__ = ["DENIALS_PER_PARTITION_MAX", "Barrier", "BarriersModel", "Denial", "written_keys"]

#: Denials remembered per partition for the audit view (the log keeps every denied command).
DENIALS_PER_PARTITION_MAX: Final = 10_000
#: Command types a barrier never denies: the server's own.
_EXEMPT: Final = frozenset(("kv.expire", "barrier.set"))


@dataclass(frozen=True, slots=True)
class Barrier:
    """Who may write in one namespace: agents (None: any) and tools with their key prefixes (None: any tool)."""

    agents: tuple[str, ...] | None
    tools: dict[str, tuple[str, ...]] | None

    def public(self) -> dict[str, Any]:
        """The barrier as JSON."""
        tools = None if self.tools is None else {tool: list(prefixes) for tool, prefixes in sorted(self.tools.items())}
        return {"agents": None if self.agents is None else list(self.agents), "tools": tools}


@dataclass(frozen=True, slots=True)
class Denial:
    """One write a barrier refused: where it sits in the log, who sent it, what it would have written."""

    tenant: str
    namespace: str
    partition: int
    offset: int
    log_time_ms: int
    command_id: str
    type: str
    agent_id: str | None
    tool_id: str | None
    keys: tuple[str, ...] | None
    reason: str

    def public(self) -> dict[str, Any]:
        """The denial as JSON."""
        body = asdict(self)
        body["keys"] = None if self.keys is None else list(self.keys)
        return body


def written_keys(envelope: LoggedEnvelope) -> dict[str, tuple[str, ...] | None]:
    """Per namespace the command writes, the keys it writes there (None: the whole namespace or unknown)."""
    command: Any = envelope.command
    namespace = envelope.namespace or ""
    writes = getattr(command, "writes", None)
    if writes is not None and command.type == "txn":
        found: dict[str, list[str]] = {}
        for write in writes:
            found.setdefault(write.namespace or namespace, []).append(write.key)
        return {ns: tuple(sorted(keys)) for ns, keys in sorted(found.items())}
    items = getattr(command, "items", None)
    if isinstance(items, list) and all(hasattr(item, "key") for item in items):
        return {namespace: tuple(sorted(item.key for item in items))}
    for field in ("key", "name", "id"):
        value = getattr(command, field, None)
        if isinstance(value, str):
            return {namespace: (value,)}
    return {namespace: None}


class BarriersModel(ReadModel):
    """Barriers by `(tenant, namespace)` and the denials they made, per partition in log order."""

    name: ClassVar[str] = "barriers"
    command_types: ClassVar[frozenset[str]] = frozenset(("barrier.set",))

    def __init__(self) -> None:
        self._barriers: dict[tuple[str, str], Barrier] = {}
        self._denials: dict[int, deque[Denial]] = {}

    def apply(self, context: ApplyContext) -> dict[str, Any]:
        """Set (or, with neither agents nor tools, remove) the namespace's barrier."""
        envelope = context.envelope
        command = envelope.command
        if not isinstance(command, BarrierSet) or envelope.namespace is None:
            return {}
        target = (envelope.tenant, envelope.namespace)
        if command.agents is None and command.tools is None:
            self._barriers.pop(target, None)
            return {"namespace": envelope.namespace, "agents": None, "tools": None}
        tools = None if command.tools is None else {tool: tuple(sorted(p)) for tool, p in command.tools.items()}
        agents = None if command.agents is None else tuple(sorted(set(command.agents)))
        barrier = self._barriers[target] = Barrier(agents, tools)
        return {"namespace": envelope.namespace, **barrier.public()}

    def snapshot_state(self) -> Iterator[Any]:
        """Two pieces: the barriers (sorted by tenant, namespace), then the denials per partition."""
        yield [
            [tenant, namespace, None if b.agents is None else list(b.agents), b.public()["tools"]]
            for (tenant, namespace), b in sorted(self._barriers.items())
        ]
        yield [
            [partition, [[*astuple(denial)[:9], None if denial.keys is None else list(denial.keys), denial.reason]
                         for denial in denials]]
            for partition, denials in sorted(self._denials.items())
        ]

    def restore_state(self, pieces: Iterable[Any]) -> None:
        """Replace the (fresh) state with the two `snapshot_state` pieces."""
        barriers, denials = pieces
        for tenant, namespace, agents, tools in barriers:
            self._barriers[(tenant, namespace)] = Barrier(
                None if agents is None else tuple(agents),
                None if tools is None else {tool: tuple(prefixes) for tool, prefixes in tools.items()},
            )
        for partition, rows in denials:
            remembered = self._denials.setdefault(partition, deque(maxlen=DENIALS_PER_PARTITION_MAX))
            for row in rows:
                keys = row[9]
                tenant, namespace, at, offset, log_time_ms, command_id, command_type, agent_id, tool_id = row[:9]
                remembered.append(
                    Denial(
                        tenant,
                        namespace,
                        at,
                        offset,
                        log_time_ms,
                        command_id,
                        command_type,
                        agent_id,
                        tool_id,
                        None if keys is None else tuple(keys),
                        row[10],
                    )
                )

    def barrier(self, tenant: str, namespace: str) -> Barrier | None:
        """The barrier of a namespace, if any."""
        return self._barriers.get((tenant, namespace))

    def check(self, envelope: LoggedEnvelope) -> tuple[str, str, tuple[str, ...] | None] | None:
        """Why a barrier denies `envelope`: (namespace, reason, keys); None when it may apply."""
        if not self._barriers or envelope.type in _EXEMPT or envelope.namespace is None:
            return None
        for namespace, keys in written_keys(envelope).items():
            barrier = self._barriers.get((envelope.tenant, namespace))
            if barrier is None:
                continue
            reason = _denied(barrier, envelope, keys)
            if reason is not None:
                return namespace, reason, keys
        return None

    def deny(self, context: ApplyContext, namespace: str, reason: str, keys: tuple[str, ...] | None) -> None:
        """Remember that the command of `context` was denied."""
        envelope = context.envelope
        denial = Denial(
            envelope.tenant,
            namespace,
            context.partition,
            context.offset,
            context.log_time_ms,
            envelope.command_id,
            envelope.type,
            envelope.agent_id,
            envelope.tool_id,
            keys,
            reason,
        )
        remembered = self._denials.setdefault(context.partition, deque(maxlen=DENIALS_PER_PARTITION_MAX))
        remembered.append(denial)

    def denials(self, tenant: str, namespace: str | None = None, limit: int = 1_000) -> list[Denial]:
        """The tenant's remembered denials (of one namespace if given), oldest first by log time, then position."""
        found = [
            denial
            for remembered in self._denials.values()
            for denial in remembered
            if denial.tenant == tenant and (namespace is None or denial.namespace == namespace)
        ]
        found.sort(key=lambda d: (d.log_time_ms, d.partition, d.offset))
        return found[-limit:] if limit < len(found) else found

    def digest(self) -> str:
        """SHA-256 over the barriers, sorted (the denials are in `denials_digest`, beside the outcomes)."""
        hasher = hashlib.sha256()
        for (tenant, namespace), barrier in sorted(self._barriers.items()):
            hasher.update(canonical_json([tenant, namespace, barrier.public()]))
        return hasher.hexdigest()

    def denials_digest(self) -> str:
        """SHA-256 over the denials, per partition in log order: a memory of rejections, like outcomes."""
        hasher = hashlib.sha256()
        for partition in sorted(self._denials):
            for denial in self._denials[partition]:
                hasher.update(canonical_json(denial.public()))
        return hasher.hexdigest()


def _denied(barrier: Barrier, envelope: LoggedEnvelope, keys: tuple[str, ...] | None) -> str | None:
    """Why `barrier` refuses `envelope` writing `keys` (None: the whole namespace), or None."""
    if barrier.agents is not None and envelope.agent_id not in barrier.agents:
        return f"agent {envelope.agent_id!r} may not write here"
    if barrier.tools is None:
        return None
    if envelope.tool_id is None or envelope.tool_id not in barrier.tools:
        return f"tool {envelope.tool_id!r} may not write here"
    prefixes = barrier.tools[envelope.tool_id]
    if not prefixes:
        return None
    if keys is None:
        return f"tool {envelope.tool_id!r} may write only keys starting {list(prefixes)}, not the whole namespace"
    outside = [key for key in keys if not any(key.startswith(prefix) for prefix in prefixes)]
    if outside:
        return f"tool {envelope.tool_id!r} may write only keys starting {list(prefixes)}, not {outside[0]!r}"
    return None
