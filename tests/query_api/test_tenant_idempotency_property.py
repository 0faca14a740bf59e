"""Property: random interleavings of writes from 3 tenants with colliding client-chosen command ids
never lose an acknowledged write and never cross tenants (invariants 4, 6 and 8).

Each example runs a node on an in-memory log with 2 partitions (so tenants' namespaces share
partitions), submits rounds of concurrent `kv.put`/`kv.delete` commands whose ids come from a
tiny pool, then checks every answer and the final state against a reference fold of the log, made
per tenant from that tenant's records alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import Caller, CommandError, Envelope, KvDelete, KvPut, command_fingerprint, decode_record, stamp
from projections.catalog import new_state
from projections.engine import Engine
from projections.records import RecordsModel
from query_api.node.node import Node
from tests.query_api.http_node import memory_settings

TENANTS = ("alice", "bob", "carol")
PARTITIONS = 2


@dataclass(frozen=True)
class Op:
    """One write: who, where, what, under which command id."""

    tenant: str
    namespace: str
    key: str
    value: int | None  # None: delete
    command_id: str

    def envelope(self) -> Envelope:
        command = KvDelete(key=self.key) if self.value is None else KvPut(key=self.key, value=self.value)
        return stamp(
            command, Caller(self.tenant, agent_id="prop"), namespace=self.namespace, command_id=self.command_id
        )


ops = st.builds(
    Op,
    tenant=st.sampled_from(TENANTS),
    namespace=st.sampled_from(("n0", "n1", "n2")),
    key=st.sampled_from(("k0", "k1")),
    value=st.one_of(st.none(), st.integers(0, 3)),
    command_id=st.sampled_from(("c0", "c1", "c2", "c3")),
)
rounds = st.lists(st.lists(ops, min_size=1, max_size=6), min_size=1, max_size=6)


@dataclass
class Answer:
    """What the node answered one op: applied (with its result and position) or a refusal code."""

    op: Op
    code: str  # "applied", or the rejection / error code
    result: dict[str, Any]
    partition: int | None = None
    offset: int | None = None


async def _submit(node: Node, op: Op) -> Answer:
    try:
        written = await node.execute(op.envelope())
    except CommandError as error:
        return Answer(op, error.code, {})
    outcome = written.outcome
    code = "applied" if outcome.status == "applied" else outcome.reason or "rejected"
    return Answer(op, code, outcome.result, written.partition, written.offset)


async def _log_order(node: Node) -> list[tuple[int, int, Envelope]]:
    found = []
    ends = await node.log.end_offsets(node.settings.topic)
    for partition, end in enumerate(ends):
        for record in await node.log.read(node.settings.topic, partition, 0, max_records=max(end, 1)) if end else []:
            found.append((partition, record.offset, decode_record(record)))
    return found


def _reference(
    log: list[tuple[int, int, Envelope]], tenant: str
) -> tuple[dict[tuple[str, str], int], set[tuple[int, int]]]:
    """Fold `tenant`'s records alone: final kv values, and the positions whose command applied."""
    bound: set[tuple[int, str]] = set()
    values: dict[tuple[str, str], int] = {}
    applied: set[tuple[int, int]] = set()
    for partition, offset, envelope in log:
        if envelope.tenant != tenant or (partition, envelope.command_id) in bound:
            continue  # another tenant's, or a retry / reuse of a key bound on this partition: changes nothing
        bound.add((partition, envelope.command_id))
        applied.add((partition, offset))
        assert envelope.namespace is not None
        command = envelope.command
        target = (envelope.namespace, command.key)  # type: ignore[union-attr]
        if isinstance(command, KvPut):
            values[target] = command.value
        else:
            values.pop(target, None)
    return values, applied


def _first_position(
    log: list[tuple[int, int, Envelope]], tenant: str, partition: int, command_id: str
) -> tuple[int, int]:
    return next((p, o) for p, o, e in log if p == partition and e.tenant == tenant and e.command_id == command_id)


async def _scenario(plan: list[list[Op]]) -> None:
    node = await Node.start(memory_settings(partitions=PARTITIONS, processors="off"))
    try:
        answers: list[Answer] = []
        for batch in plan:
            answers.extend(await asyncio.gather(*(_submit(node, op) for op in batch)))
        log = await _log_order(node)
        records = node.state.model("records")
        assert isinstance(records, RecordsModel)
        positions = {(p, o): e for p, o, e in log}
        for tenant in TENANTS:
            values, applied = _reference(log, tenant)
            live = {
                (namespace, key): records.get(tenant, namespace, key, now_ms=0)
                for namespace in ("n0", "n1", "n2")
                for key in ("k0", "k1")
            }
            assert {target: view.value for target, view in live.items() if view is not None} == values, tenant
            for answer in (a for a in answers if a.op.tenant == tenant):
                assert answer.code in ("applied", "not_found", "idempotency_key_reused"), answer
                if answer.code == "idempotency_key_reused":
                    assert answer.partition is None or (answer.partition, answer.offset) not in applied
                    mine_fingerprint = command_fingerprint(answer.op.envelope())
                    assert any(
                        e.tenant == tenant
                        and e.command_id == answer.op.command_id
                        and command_fingerprint(e) != mine_fingerprint
                        for _, _, e in log
                    ), answer  # refused only for a key the tenant bound to a different command
                    continue
                assert answer.partition is not None
                assert answer.offset is not None
                mine = positions[(answer.partition, answer.offset)]
                assert (mine.tenant, command_fingerprint(mine)) == (tenant, command_fingerprint(answer.op.envelope()))
                first = _first_position(log, tenant, answer.partition, answer.op.command_id)
                assert first in applied, answer  # an acknowledged command applied: its first record counts
                assert command_fingerprint(positions[first]) == command_fingerprint(mine)
                if answer.code == "applied":
                    assert answer.result["key"] == answer.op.key, answer
        rebuilt = Engine(node.log, node.settings.topic, new_state(PARTITIONS))
        await rebuilt.catch_up()
        assert rebuilt.state.digests() == node.state.digests()
    finally:
        await node.stop()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=rounds)
def test_colliding_command_ids_of_three_tenants_never_lose_or_cross(plan: list[list[Op]]) -> None:
    asyncio.run(_scenario(plan))
