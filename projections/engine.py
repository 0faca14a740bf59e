"""The engine: folds a topic's partitions, in log order, into read models.

Each partition is applied by its own task, in offset order. A command is applied once: its outcome
is kept by `(tenant, command_id)` (per partition, where every retry of it lands) with the command's
fingerprint, and a retry (same tenant, key and fingerprint) answers with the first outcome. The
same key with a different command is rejected `idempotency_key_reused` and changes nothing; it is
not remembered, so the key stays bound to its first command. Another tenant's key never matches.
Offsets may skip (a gap holds no records, e.g. Kafka transaction markers); going back is an
`ApplyOrderError`. At apply the routing is checked again (a foreign producer may have broken it): a
command on the wrong partition, or a txn touching namespaces of other partitions, is rejected
`cross_partition`. Then write barriers (`projections.barriers`): a denied command is rejected
`forbidden` and changes nothing but the audit list of denials.
The applied cut (next offset per partition) is what reads wait on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

from commands import CommandError, Envelope, command_fingerprint, partition_key
from commands.encoding import value_fingerprint
from commands.routing import scope_key
from commands.wire import LoggedEnvelope, decode_for_apply
from eventlog.base import EventLog
from eventlog.partitioner import partition_for
from eventlog.records import Record
from projections.barriers import BarriersModel
from projections.chain import GENESIS, link
from projections.model import ApplyContext, ReadModel
from projections.outcome import Outcome, Rejected

__all__ = ["ApplyOrderError", "Engine", "EngineState", "ModelConflictError", "outcome_key"]

#: Outcomes remembered per partition for idempotent retries; the oldest are forgotten first. A retry
#: must arrive within this many commands of its partition (400k across 8 partitions). They dominate
#: snapshot size (about 100 bytes each), so the window is a trade against snapshot load time.
OUTCOMES_PER_PARTITION_MAX = 50_000
#: Records one read of the apply loop takes.
APPLY_BATCH_RECORDS = 2_000
#: How long one read of the apply loop waits for new records.
TAIL_WAIT_MS = 500
#: Partition keys whose partition is remembered (keys repeat: tenant/namespace, tenant/run).
ROUTING_CACHE_MAX = 65_536
#: How remembered outcomes are keyed; a snapshot keyed otherwise is refused (and the log replayed).
OUTCOME_KEYING = "tenant/command_id+fingerprint"


class ApplyOrderError(RuntimeError):
    """A record handed to the engine is not the next one of its partition (a reader bug, never skipped)."""


class ModelConflictError(ValueError):
    """Two read models claim the same command type."""


def outcome_key(tenant: str, command_id: str) -> str:
    """The key an outcome is remembered by: ids cannot contain `/`, so tenants never collide."""
    return f"{tenant}/{command_id}"


def _reused(known: Outcome, command_id: str) -> Outcome:
    """The outcome of a command whose key is already bound to a different command."""
    return Outcome(
        "rejected",
        reason="idempotency_key_reused",
        detail=f"command_id {command_id!r} was already used for a different command "
        f"(its outcome was {known.status}); use a new command_id for a new command",
    )


class EngineState:
    """Everything a snapshot holds: the models, the applied cut, the outcomes, undecodable records."""

    def __init__(self, models: Sequence[ReadModel], partitions: int) -> None:
        self.models = list(models)
        self.applied = [0] * partitions
        self.outcomes: list[OrderedDict[str, Outcome]] = [OrderedDict() for _ in range(partitions)]
        self.undecodable = [0] * partitions
        self.chain = [GENESIS] * partitions  # hash-chain head per partition (`projections.chain`)
        self.by_type: dict[str, ReadModel] = {}
        self.outcome_keying = OUTCOME_KEYING
        self._routes: dict[bytes, int] = {}
        for model in self.models:
            for command_type in model.command_types:
                if command_type in self.by_type:
                    raise ModelConflictError(f"{command_type} has two models")
                self.by_type[command_type] = model

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_routes"] = {}  # a cache, not state: snapshots leave it out
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        if state.get("outcome_keying") != OUTCOME_KEYING:
            raise ValueError(f"state keys its outcomes as {state.get('outcome_keying')!r}, not {OUTCOME_KEYING!r}")
        self.__dict__.update(state)

    def _partition_of(self, envelope: LoggedEnvelope) -> int:
        """The partition `envelope` routes to (murmur2 is pure Python: remember it per key)."""
        return self._route(partition_key(envelope))

    def _route(self, key: bytes) -> int:
        partition = self._routes.get(key)
        if partition is None:
            if len(self._routes) >= ROUTING_CACHE_MAX:
                self._routes.clear()
            partition = self._routes[key] = partition_for(key, len(self.applied))
        return partition

    def model(self, name: str) -> ReadModel:
        """The model called `name`."""
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)

    def apply_record(self, record: Record) -> Outcome:
        """Apply one record of its partition (which must be the next one) and remember the outcome."""
        partition = record.partition
        if record.offset < self.applied[partition]:
            raise ApplyOrderError(
                f"partition {partition}: record at offset {record.offset}, but the next to apply is "
                f"{self.applied[partition]}"
            )
        # Past the next offset: a gap with no records in it (a Kafka transaction marker, compaction).
        self.applied[partition] = record.offset + 1
        self.chain[partition] = link(self.chain[partition], record)
        try:
            envelope = decode_for_apply(record)
            fingerprint = value_fingerprint(envelope, record.value)
        except CommandError as error:
            self.undecodable[partition] += 1
            return Outcome("rejected", reason="invalid", detail=f"undecodable record: {error.detail}")
        key = outcome_key(envelope.tenant, envelope.command_id)
        remembered = self.outcomes[partition]
        known = remembered.get(key)
        if known is not None:
            return known if known.fingerprint == fingerprint else _reused(known, envelope.command_id)
        outcome = self._apply(envelope, record, fingerprint)
        remembered[key] = outcome
        if len(remembered) > OUTCOMES_PER_PARTITION_MAX:
            remembered.popitem(last=False)
        return outcome

    def _apply(self, envelope: LoggedEnvelope, record: Record, fingerprint: str) -> Outcome:
        misrouted = self._misrouted(envelope, record.partition)
        if misrouted is not None:
            return Outcome("rejected", reason="cross_partition", detail=misrouted, fingerprint=fingerprint)
        model = self.by_type.get(envelope.type)
        if model is None:
            detail = f"no model applies {envelope.type}"
            return Outcome("rejected", reason="invalid", detail=detail, fingerprint=fingerprint)
        context = ApplyContext(envelope, record.partition, record.offset, record.timestamp_ms)
        barriers = self.by_type.get("barrier.set")
        if isinstance(barriers, BarriersModel) and envelope.namespace is not None:
            denied = barriers.check(envelope)
            if denied is not None:  # in the log, rejected, remembered for the audit view, never applied
                namespace, reason, keys = denied
                barriers.deny(context, namespace, reason, keys)
                detail = f"write barrier of namespace {namespace!r}: {reason}"
                result = {"barrier": namespace}
                return Outcome("rejected", result=result, reason="forbidden", detail=detail, fingerprint=fingerprint)
        try:
            return Outcome("applied", result=model.apply(context), fingerprint=fingerprint)
        except Rejected as rejected:
            return Outcome(
                "rejected",
                result=dict(rejected.extra),
                reason=rejected.reason,
                detail=rejected.detail,
                fingerprint=fingerprint,
            )

    def _misrouted(self, envelope: LoggedEnvelope, partition: int) -> str | None:
        """Why `envelope` may not apply on `partition` (its key or a txn namespace routes elsewhere), or None."""
        if self._partition_of(envelope) != partition:
            return "command is on the wrong partition for its key"
        if envelope.namespace is None:
            return None
        touched = envelope.command.namespaces(envelope.namespace)
        if len(touched) == 1:
            return None
        elsewhere = sorted(ns for ns in touched if self._route(scope_key(envelope.tenant, ns)) != partition)
        if elsewhere:
            return f"{envelope.type} also touches namespaces on other partitions: {', '.join(elsewhere)}"
        return None

    def outcome(self, partition: int, envelope: Envelope) -> Outcome | None:
        """The outcome of exactly this command (tenant, command_id and fingerprint), if remembered.

        A key bound to a different command of the tenant answers the `idempotency_key_reused`
        rejection (what that command got at apply); None when the key is not remembered.
        """
        known = self.outcomes[partition].get(outcome_key(envelope.tenant, envelope.command_id))
        if known is None:
            return None
        return known if known.fingerprint == command_fingerprint(envelope) else _reused(known, envelope.command_id)

    def bound_elsewhere(self, envelope: Envelope) -> Outcome | None:
        """The reused-key rejection if the tenant's key is bound to a different command on any partition, else None."""
        key = outcome_key(envelope.tenant, envelope.command_id)
        fingerprint: str | None = None
        for remembered in self.outcomes:
            known = remembered.get(key)
            if known is not None:
                fingerprint = fingerprint or command_fingerprint(envelope)
                if known.fingerprint != fingerprint:
                    return _reused(known, envelope.command_id)
        return None

    def digests(self) -> dict[str, str]:
        """Per-model digests plus one over the remembered outcomes (and barrier denials), keyed by name, sorted."""
        digests = {model.name: model.digest() for model in self.models}
        outcomes = hashlib.sha256()
        for partition, remembered in enumerate(self.outcomes):
            for key, outcome in remembered.items():
                line = f"{partition}\x00{key}\x00{outcome.fingerprint}\x00{outcome.status}\x00{outcome.reason}\n"
                outcomes.update(line.encode())
        barriers = self.by_type.get("barrier.set")
        if isinstance(barriers, BarriersModel):  # the denials are remembered rejections too
            outcomes.update(barriers.denials_digest().encode())
        digests["outcomes"] = outcomes.hexdigest()
        return dict(sorted(digests.items()))


class Engine:
    """Tails one topic of a log and applies it to an `EngineState`; readers wait on its cut."""

    def __init__(self, log: EventLog, topic: str, state: EngineState) -> None:
        self.log = log
        self.topic = topic
        self.state = state
        self._tasks: list[asyncio.Task[None]] = []
        self._advanced = asyncio.Event()
        self.error: BaseException | None = None
        #: Called with (partition, offset, chain head) after each record is applied (the node records it).
        self.chain_sink: Callable[[int, int, bytes], None] | None = None
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._pauses = 0
        #: Called with each record and its outcome right after it is applied, on the loop (keep them cheap).
        self.observers: list[Callable[[Record, Outcome], None]] = []

    @property
    def applied(self) -> list[int]:
        """The next offset to apply, per partition."""
        return list(self.state.applied)

    async def catch_up(self, until: Mapping[int, int] | None = None) -> None:
        """Apply every record up to `until` (default: the log's end offsets now), without tailing."""
        ends = await self.log.end_offsets(self.topic)
        target = {p: (until.get(p, 0) if until is not None else end) for p, end in enumerate(ends)}
        for partition, end in target.items():
            while self.state.applied[partition] < end:
                records = await self.log.read(
                    self.topic,
                    partition,
                    self.state.applied[partition],
                    max_records=min(APPLY_BATCH_RECORDS, end - self.state.applied[partition]),
                )
                if not records:
                    break
                self._apply(records)
        self._notify()

    def start(self) -> None:
        """Start one tailing task per partition."""
        if self._tasks:
            raise RuntimeError("the engine is already started")
        for partition in range(len(self.state.applied)):
            self._tasks.append(asyncio.create_task(self._tail(partition), name=f"apply-{self.topic}-{partition}"))

    async def stop(self) -> None:
        """Stop tailing; what was applied stays applied."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):  # a loop that died left it in `error`
                await task
        self._tasks.clear()

    def apply_appended(self, record: Record) -> bool:
        """Apply a record this node has just appended, if it is the next of its partition; else False.

        The writer then has its outcome without a round trip through the tail loop (which skips what
        is applied). Only for a log whose append answers exactly what a read returns (embedded, memory).
        """
        if self._pauses or self.error is not None or self.state.applied[record.partition] != record.offset:
            return False
        try:
            self._apply((record,))
        except BaseException as error:  # as in the tail loop: a failed apply stops the engine, visibly
            self.error = error
            raise
        finally:
            self._notify()
        return True

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Hold the state still (tailing reads go on, applying waits) until the block ends, e.g. for a snapshot."""
        self._pauses += 1
        self._resumed.clear()
        try:
            yield
        finally:
            self._pauses -= 1
            if self._pauses == 0:
                self._resumed.set()

    async def _tail(self, partition: int) -> None:
        try:
            while True:
                records = await self.log.read(
                    self.topic,
                    partition,
                    self.state.applied[partition],
                    max_records=APPLY_BATCH_RECORDS,
                    wait_ms=TAIL_WAIT_MS,
                )
                if not self._resumed.is_set():
                    await self._resumed.wait()
                self._apply(records)
                if records:
                    self._notify()
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # an apply loop that dies must be visible, not silent
            self.error = error
            self._notify()
            raise

    def _apply(self, records: Sequence[Record]) -> None:
        state, sink, observers = self.state, self.chain_sink, self.observers
        for record in records:
            if record.offset < state.applied[record.partition]:
                continue  # applied already, by `apply_appended`
            outcome = state.apply_record(record)
            if sink is not None:
                sink(record.partition, record.offset, state.chain[record.partition])
            for observe in observers:
                observe(record, outcome)

    def _notify(self) -> None:
        self._advanced.set()
        self._advanced = asyncio.Event()

    def reached(self, cut: Mapping[int, int]) -> bool:
        """True once every partition of `cut` is applied up to its offset."""
        applied = self.state.applied
        return all(applied[p] >= offset for p, offset in cut.items())

    async def wait_for(self, cut: Mapping[int, int], timeout_s: float) -> bool:
        """Wait until `cut` is applied; False if `timeout_s` passes first (or the apply loop died)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.reached(cut):
            if self.error is not None:
                return False
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):  # asyncio.timeout: 3.11's wait_for can swallow a cancel
                async with asyncio.timeout(remaining):
                    await self._advanced.wait()
        return True

    async def lag(self) -> list[int]:
        """Records appended but not yet applied, per partition."""
        ends = await self.log.end_offsets(self.topic)
        return [end - applied for end, applied in zip(ends, self.state.applied, strict=True)]
