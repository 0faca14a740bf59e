"""Transactions over kv and state records: all or nothing; a reference-model check; order-independent digests."""

from __future__ import annotations

import hashlib
import itertools
import pickle
import random
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from commands import (
    Caller,
    Command,
    KvBatchPut,
    KvClear,
    KvDelete,
    KvExpire,
    KvItem,
    KvPut,
    NamespaceConfig,
    Txn,
    TxnKvDelete,
    TxnKvPut,
    TxnPrecondition,
    TxnRead,
    TxnStateSet,
    canonical_json,
    stamp,
)
from commands.txn import ItemKind
from projections.model import ApplyContext
from projections.outcome import Rejected
from projections.records import RecordsModel
from projections.txn import StateModelProtocol, TxnModel

_ids = itertools.count()


class FakeState:
    """A dict-backed state model with the two hooks a txn uses."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str, str], tuple[int, Any]] = {}

    def current_version(self, tenant: str, namespace: str, name: str, log_time_ms: int) -> int:
        return self.records.get((tenant, namespace, name), (0, None))[0]

    def write_set(
        self, tenant: str, namespace: str, name: str, value: Any, agent_id: str | None, log_time_ms: int
    ) -> dict[str, Any]:
        version = self.current_version(tenant, namespace, name, log_time_ms) + 1
        self.records[(tenant, namespace, name)] = (version, value)
        return {"name": name, "version": version}

    def digest(self) -> str:
        rows = [[*scope, version, value] for scope, (version, value) in sorted(self.records.items())]
        return hashlib.sha256(canonical_json(rows)).hexdigest()


def context(
    command: Command, *, at: int = 1_000, tenant: str = "t1", namespace: str = "ns", agent: str = "a1"
) -> ApplyContext:
    """The apply context of `command` stamped for `tenant`/`agent` in `namespace` at log time `at`."""
    envelope = stamp(command, Caller(tenant=tenant, agent_id=agent), namespace=namespace, command_id=f"c{next(_ids)}")
    return ApplyContext(envelope, partition=0, offset=next(_ids), log_time_ms=at)


class World:
    """A records model, a state model and the txn model over them."""

    def __init__(self) -> None:
        self.records = RecordsModel()
        self.state = FakeState()
        self.txn = TxnModel(self.records, self.state)

    def apply(self, command: Command, **where: Any) -> dict[str, Any]:
        model = self.txn if command.type == "txn" else self.records
        return model.apply(context(command, **where))

    def digests(self) -> tuple[str, str, str]:
        return self.records.digest(), self.state.digest(), self.txn.digest()

    def rejected(self, command: Command, **where: Any) -> Rejected:
        before = self.digests()
        with pytest.raises(Rejected) as info:
            self.apply(command, **where)
        assert self.digests() == before
        return info.value


@pytest.fixture
def world() -> World:
    world = World()
    world.apply(KvPut(key="k", value="v1"))
    world.apply(KvPut(key="gone", value=0))
    world.state.write_set("t1", "ns", "s", "x", None, 0)
    return world


def test_fake_state_satisfies_the_protocol() -> None:
    state: StateModelProtocol = FakeState()
    assert state.current_version("t", "n", "x", 0) == 0


def test_a_txn_commits_every_write_when_reads_and_preconditions_hold(world: World) -> None:
    txn = Txn(
        reads=[TxnRead(key="k", version=1), TxnRead(kind="state", key="s", version=1)],
        preconditions=[
            TxnPrecondition(key="absent", exists=False),
            TxnPrecondition(key="gone", exists=True),
            TxnPrecondition(kind="state", key="s", version=1),
        ],
        writes=[
            TxnKvPut(key="k", value="v2", metadata={"m": 1}),
            TxnKvPut(namespace="other", key="n", value=3, ttl_s=5),
            TxnKvDelete(key="gone"),
            TxnStateSet(key="s", value="y"),
        ],
    )
    result = world.apply(txn, at=2_000, agent="writer")
    assert result == {
        "committed": True,
        "writes": [
            {"op": "kv.put", "namespace": "ns", "key": "k", "version": 2, "created": False, "expires_at_ms": None},
            {"op": "kv.put", "namespace": "other", "key": "n", "version": 1, "created": True, "expires_at_ms": 7_000},
            {"op": "kv.delete", "namespace": "ns", "key": "gone", "deleted": True, "version": 1},
            {"op": "state.set", "namespace": "ns", "name": "s", "version": 2},
        ],
    }
    view = world.records.get("t1", "ns", "k", 0)
    assert view is not None
    assert (view.value, view.metadata, view.updated_by, view.updated_at_ms) == ("v2", {"m": 1}, "writer", 2_000)
    assert world.records.get("t1", "ns", "gone", 0) is None
    assert world.state.records[("t1", "ns", "s")] == (2, "y")


def test_stale_reads_reject_the_txn_listing_every_conflict(world: World) -> None:
    txn = Txn(
        reads=[
            TxnRead(key="k", version=1),
            TxnRead(key="k", version=7),
            TxnRead(kind="state", namespace="elsewhere", key="s", version=1),
        ],
        writes=[TxnKvPut(key="new", value=1), TxnStateSet(key="s", value="z")],
    )
    error = world.rejected(txn)
    assert error.reason == "version_conflict"
    assert error.extra["conflicts"] == [
        {"kind": "kv", "namespace": "ns", "key": "k", "expected_version": 7, "current_version": 1},
        {"kind": "state", "namespace": "elsewhere", "key": "s", "expected_version": 1, "current_version": 0},
    ]


@pytest.mark.parametrize(
    "condition",
    [
        TxnPrecondition(key="k", exists=False),
        TxnPrecondition(key="absent", exists=True),
        TxnPrecondition(key="k", version=2),
        TxnPrecondition(kind="state", key="s", exists=False),
        TxnPrecondition(kind="state", key="s", version=0),
    ],
)
def test_a_false_precondition_rejects_the_txn(world: World, condition: TxnPrecondition) -> None:
    txn = Txn(preconditions=[TxnPrecondition(key="k", exists=True), condition], writes=[TxnKvDelete(key="k")])
    error = world.rejected(txn)
    assert error.reason == "precondition_failed"
    [failed] = error.extra["failed"]
    assert failed["key"] == condition.key
    assert failed["kind"] == condition.kind


def test_stale_reads_are_reported_before_false_preconditions(world: World) -> None:
    txn = Txn(reads=[TxnRead(key="k", version=0)], preconditions=[TxnPrecondition(key="k", exists=False)])
    assert world.rejected(txn).reason == "version_conflict"


def test_a_schema_violation_anywhere_writes_nothing(world: World) -> None:
    world.apply(NamespaceConfig(json_schema={"type": "integer"}), namespace="typed")
    txn = Txn(
        writes=[
            TxnStateSet(key="s", value="first"),
            TxnKvPut(key="k", value="ok"),
            TxnKvPut(namespace="typed", key="n", value="not an integer"),
        ]
    )
    error = world.rejected(txn)
    assert error.reason == "schema_violation"
    assert world.apply(Txn(writes=[TxnKvPut(namespace="typed", key="n", value=4)]))["committed"] is True


def test_an_expired_record_reads_as_version_zero(world: World) -> None:
    world.apply(KvPut(key="ttl", value=1, ttl_s=1), at=0)
    assert (
        world.rejected(Txn(reads=[TxnRead(key="ttl", version=1)]), at=1_000).extra["conflicts"][0]["current_version"]
        == 0
    )
    result = world.apply(Txn(reads=[TxnRead(key="ttl", version=0)], writes=[TxnKvPut(key="ttl", value=2)]), at=1_000)
    assert result["writes"][0]["created"] is True
    assert result["writes"][0]["version"] == 1


def test_txns_never_cross_tenants(world: World) -> None:
    txn = Txn(
        reads=[TxnRead(key="k", version=0), TxnRead(kind="state", key="s", version=0)],
        writes=[TxnKvDelete(key="k"), TxnStateSet(key="s", value="t2")],
    )
    result = world.apply(txn, tenant="t2")
    assert result["writes"][0] == {"op": "kv.delete", "namespace": "ns", "key": "k", "deleted": False, "version": 0}
    assert world.records.get("t1", "ns", "k", 0) is not None
    assert world.state.records[("t1", "ns", "s")] == (1, "x")
    assert world.state.records[("t2", "ns", "s")] == (1, "t2")


def test_a_read_only_txn_commits_without_writing(world: World) -> None:
    before = world.digests()
    assert world.apply(Txn(reads=[TxnRead(key="k", version=1)])) == {"committed": True, "writes": []}
    assert world.digests() == before


def test_the_txn_model_holds_no_state(world: World) -> None:
    empty = TxnModel(RecordsModel(), FakeState()).digest()
    world.apply(Txn(writes=[TxnKvPut(key="x", value=1)]))
    assert world.txn.digest() == empty
    assert world.txn.command_types == frozenset({"txn"})
    with pytest.raises(Rejected):
        world.txn.apply(context(KvPut(key="x", value=1)))


# -- a reference model ----------------------------------------------------------------------------

TENANTS = st.sampled_from(["t1", "t2"])
NAMESPACES = st.sampled_from(["n1", "n2"])
KEYS = st.sampled_from(["a", "b", "c"])
VALUES = st.integers(0, 9) | st.text("xy", max_size=2) | st.lists(st.booleans(), max_size=2)
VERSIONS = st.none() | st.integers(0, 3)
Scope = tuple[str, str, str]


class KvTxnMachine(RuleBasedStateMachine):
    """Random puts, deletes and txns against a plain-dict reference: versions and values always agree."""

    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.kv: dict[Scope, tuple[int, Any]] = {}
        self.state: dict[Scope, tuple[int, Any]] = {}
        self.clock = 0

    def _version(self, kind: str, scope: Scope) -> int:
        return (self.kv if kind == "kv" else self.state).get(scope, (0, None))[0]

    def _apply(self, command: Command, tenant: str, namespace: str, expected: str | None) -> dict[str, Any] | None:
        """Apply `command`; `expected` is the rejection reason the reference predicts, or None for applied."""
        self.clock += 10
        if expected is None:
            return self.world.apply(command, at=self.clock, tenant=tenant, namespace=namespace)
        assert self.world.rejected(command, at=self.clock, tenant=tenant, namespace=namespace).reason == expected
        return None

    @rule(tenant=TENANTS, namespace=NAMESPACES, key=KEYS, value=VALUES, if_version=VERSIONS)
    def put(self, tenant: str, namespace: str, key: str, value: Any, if_version: int | None) -> None:
        scope = (tenant, namespace, key)
        current = self._version("kv", scope)
        ok = if_version is None or if_version == current
        result = self._apply(
            KvPut(key=key, value=value, if_version=if_version), tenant, namespace, None if ok else "version_conflict"
        )
        if result is not None:
            self.kv[scope] = (current + 1, value)
            assert result["version"] == current + 1

    @rule(tenant=TENANTS, namespace=NAMESPACES, key=KEYS, if_version=VERSIONS)
    def delete(self, tenant: str, namespace: str, key: str, if_version: int | None) -> None:
        scope = (tenant, namespace, key)
        current = self._version("kv", scope)
        ok = if_version is None or if_version == current
        result = self._apply(
            KvDelete(key=key, if_version=if_version), tenant, namespace, None if ok else "version_conflict"
        )
        if result is not None:
            assert result == {"key": key, "deleted": current > 0, "version": current}
            self.kv.pop(scope, None)

    @rule(tenant=TENANTS, namespace=NAMESPACES, data=st.data())
    def txn(self, tenant: str, namespace: str, data: st.DataObject) -> None:
        kinds: st.SearchStrategy[ItemKind] = st.sampled_from(["kv", "state"])
        item_namespaces = st.none() | NAMESPACES
        reads = data.draw(st.lists(st.tuples(kinds, item_namespaces, KEYS, st.booleans(), VERSIONS), max_size=3))
        conditions = data.draw(st.lists(st.tuples(kinds, item_namespaces, KEYS, st.booleans() | VERSIONS), max_size=2))
        writes = data.draw(
            st.lists(
                st.tuples(st.sampled_from(["kv.put", "kv.delete", "state.set"]), item_namespaces, KEYS, VALUES),
                max_size=4,
                unique_by=lambda w: (w[0] == "state.set", w[1] or namespace, w[2]),
            )
        )
        if not (reads or conditions or writes):
            return
        txn_reads, stale = [], False
        for kind, ns, key, fresh, version in reads:
            current = self._version(kind, (tenant, ns or namespace, key))
            read_version = current if fresh or version is None else version
            stale |= read_version != current
            txn_reads.append(TxnRead(kind=kind, namespace=ns, key=key, version=read_version))
        txn_conditions, failed = [], False
        for kind, ns, key, wanted in conditions:
            current = self._version(kind, (tenant, ns or namespace, key))
            if isinstance(wanted, bool) or wanted is None:
                exists = bool(wanted)
                failed |= (current > 0) != exists
                txn_conditions.append(TxnPrecondition(kind=kind, namespace=ns, key=key, exists=exists))
            else:
                failed |= current != wanted
                txn_conditions.append(TxnPrecondition(kind=kind, namespace=ns, key=key, version=wanted))
        txn_writes: list[TxnKvPut | TxnKvDelete | TxnStateSet] = []
        for op, ns, key, value in writes:
            if op == "kv.put":
                txn_writes.append(TxnKvPut(namespace=ns, key=key, value=value))
            elif op == "kv.delete":
                txn_writes.append(TxnKvDelete(namespace=ns, key=key))
            else:
                txn_writes.append(TxnStateSet(namespace=ns, key=key, value=value))
        command = Txn(reads=txn_reads, preconditions=txn_conditions, writes=txn_writes)
        expected = "version_conflict" if stale else "precondition_failed" if failed else None
        if self._apply(command, tenant, namespace, expected) is None:
            return
        for op, ns, key, value in writes:
            scope = (tenant, ns or namespace, key)
            if op == "kv.put":
                self.kv[scope] = (self._version("kv", scope) + 1, value)
            elif op == "kv.delete":
                self.kv.pop(scope, None)
            else:
                self.state[scope] = (self._version("state", scope) + 1, value)

    @invariant()
    def records_match_the_reference(self) -> None:
        for tenant, namespace, key in itertools.product(["t1", "t2"], ["n1", "n2"], ["a", "b", "c"]):
            view = self.world.records.get(tenant, namespace, key, self.clock)
            expected = self.kv.get((tenant, namespace, key))
            assert (None if view is None else (view.version, view.value)) == expected
        assert self.world.state.records == self.state


KvTxnMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestKvTxnMachine = KvTxnMachine.TestCase


# -- order-independent digests ---------------------------------------------------------------------

PARTITIONS = 4
_KEY_NAMES = [f"k{n}" for n in range(10)]


def _random_command(rng: random.Random) -> Command:
    roll = rng.random()
    key = rng.choice(_KEY_NAMES)
    version = rng.choice([None, None, 0, 1, 2, 3])
    ttl = rng.choice([None, None, None, 1, 3])
    if roll < 0.40:
        return KvPut(key=key, value={"n": rng.randrange(100), "s": rng.choice("xyz")}, ttl_s=ttl, if_version=version)
    if roll < 0.55:
        return KvDelete(key=key, if_version=version)
    if roll < 0.63:
        keys = rng.sample(_KEY_NAMES, rng.randint(1, 3))
        return KvBatchPut(
            items=[KvItem(key=k, value=rng.randrange(5), if_version=rng.choice([None, 0, 1])) for k in keys]
        )
    if roll < 0.80:
        return Txn(
            reads=[TxnRead(key=key, version=rng.randrange(3))],
            preconditions=[TxnPrecondition(kind="state", key="s", version=rng.randrange(3))]
            if rng.random() < 0.3
            else [],
            writes=[TxnKvPut(key=rng.choice(_KEY_NAMES), value=rng.randrange(9)), TxnStateSet(key="s", value=key)],
        )
    if roll < 0.90:
        return KvExpire(key=key, expected_version=rng.randint(1, 3))
    if roll < 0.97:
        schema = rng.choice([None, {"type": "object"}, {"type": ["object", "integer"]}])
        return NamespaceConfig(json_schema=schema, default_ttl_s=rng.choice([None, 2]))
    return KvClear()


def _workload(seed: int, count: int) -> list[list[ApplyContext]]:
    """`count` random commands split into partitions by namespace, each partition in log order."""
    rng = random.Random(seed)
    partitions: list[list[ApplyContext]] = [[] for _ in range(PARTITIONS)]
    clocks = [0] * PARTITIONS
    for index in range(count):
        partition = rng.randrange(PARTITIONS)
        clocks[partition] += rng.randrange(100, 900)
        envelope = stamp(
            _random_command(rng),
            Caller(tenant=rng.choice(["t1", "t2"]), agent_id=rng.choice(["a1", "a2"])),
            namespace=f"n{partition}",
            command_id=f"cmd{index}",
        )
        offset = len(partitions[partition])
        partitions[partition].append(ApplyContext(envelope, partition, offset, clocks[partition]))
    return partitions


def _run(contexts: list[ApplyContext]) -> tuple[World, dict[str, tuple[str, Any]]]:
    world = World()
    outcomes: dict[str, tuple[str, Any]] = {}
    for ctx in contexts:
        model = world.txn if ctx.envelope.type == "txn" else world.records
        try:
            outcomes[ctx.envelope.command_id] = ("applied", model.apply(ctx))
        except Rejected as error:
            outcomes[ctx.envelope.command_id] = ("rejected", error.reason)
    return world, outcomes


def _interleave(partitions: list[list[ApplyContext]], rng: random.Random) -> list[ApplyContext]:
    """A random merge keeping each partition's order."""
    queues = [list(reversed(partition)) for partition in partitions]
    merged: list[ApplyContext] = []
    while any(queues):
        queue = rng.choice([queue for queue in queues if queue])
        merged.append(queue.pop())
    return merged


def test_digests_do_not_depend_on_how_partitions_interleave() -> None:
    partitions = _workload(seed=2024, count=2_000)
    sequential, sequential_outcomes = _run([ctx for partition in partitions for ctx in partition])
    shuffled, shuffled_outcomes = _run(_interleave(partitions, random.Random(7)))
    backwards, _ = _run([ctx for partition in reversed(partitions) for ctx in partition])
    assert sequential.digests() == shuffled.digests() == backwards.digests()
    assert sequential_outcomes == shuffled_outcomes
    statuses = [status for status, _ in sequential_outcomes.values()]
    assert statuses.count("applied") > 500
    assert statuses.count("rejected") > 50
    purged = [result for status, result in sequential_outcomes.values() if status == "applied" and "expired" in result]
    assert any(result["expired"] for result in purged)
    assert not all(result["expired"] for result in purged)
    restored = pickle.loads(pickle.dumps(sequential.records))
    assert restored.digest() == sequential.records.digest()
    assert restored.expired(10**12, 100) == sequential.records.expired(10**12, 100)
