"""The engine: folds a topic's partitions, in log order, into read models.

Each partition is applied by its own task, in offset order. A command is applied once: its outcome
is kept by `command_id` (per partition, where every retry of it lands), and a retry answers with
the first outcome. The applied cut (next offset per partition) is what reads wait on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

from commands import CommandError, Envelope, decode_record, partition_key
from eventlog.base import EventLog
from eventlog.partitioner import partition_for
from eventlog.records import Record
from projections.model import ApplyContext, ReadModel
from projections.outcome import Outcome, Rejected

__all__ = ["Engine", "EngineState"]

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


class EngineState:
    """Everything a snapshot holds: the models, the applied cut, the outcomes, undecodable records."""

    def __init__(self, models: Sequence[ReadModel], partitions: int) -> None:
        self.models = list(models)
        self.applied = [0] * partitions
        self.outcomes: list[OrderedDict[str, Outcome]] = [OrderedDict() for _ in range(partitions)]
        self.undecodable = [0] * partitions
        self.by_type: dict[str, ReadModel] = {}
        self._routes: dict[bytes, int] = {}
        for model in self.models:
            for command_type in model.command_types:
                assert command_type not in self.by_type, f"{command_type} has two models"
                self.by_type[command_type] = model

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_routes"] = {}  # a cache, not state: snapshots leave it out
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)

    def _partition_of(self, envelope: Envelope) -> int:
        """The partition `envelope` routes to (murmur2 is pure Python: remember it per key)."""
        key = partition_key(envelope)
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
        assert record.offset == self.applied[partition], (record.offset, self.applied[partition])
        self.applied[partition] = record.offset + 1
        try:
            envelope = decode_record(record)
        except CommandError as error:
            self.undecodable[partition] += 1
            return Outcome("rejected", reason="invalid", detail=f"undecodable record: {error.detail}")
        known = self.outcomes[partition].get(envelope.command_id)
        if known is not None:
            return known
        outcome = self._apply(envelope, record)
        remembered = self.outcomes[partition]
        remembered[envelope.command_id] = outcome
        if len(remembered) > OUTCOMES_PER_PARTITION_MAX:
            remembered.popitem(last=False)
        return outcome

    def _apply(self, envelope: Envelope, record: Record) -> Outcome:
        if self._partition_of(envelope) != record.partition:
            return Outcome("rejected", reason="cross_partition", detail="command is on the wrong partition for its key")
        model = self.by_type.get(envelope.type)
        if model is None:
            return Outcome("rejected", reason="invalid", detail=f"no model applies {envelope.type}")
        context = ApplyContext(envelope, record.partition, record.offset, record.timestamp_ms)
        try:
            return Outcome("applied", result=model.apply(context))
        except Rejected as rejected:
            return Outcome("rejected", result=dict(rejected.extra), reason=rejected.reason, detail=rejected.detail)

    def outcome(self, partition: int, command_id: str) -> Outcome | None:
        """The remembered outcome of a command, if any."""
        return self.outcomes[partition].get(command_id)

    def digests(self) -> dict[str, str]:
        """Per-model digests plus one over the remembered outcomes, keyed by name, sorted."""
        digests = {model.name: model.digest() for model in self.models}
        outcomes = hashlib.sha256()
        for partition, remembered in enumerate(self.outcomes):
            for command_id, outcome in remembered.items():
                outcomes.update(f"{partition}\x00{command_id}\x00{outcome.status}\x00{outcome.reason}\n".encode())
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
                for record in records:
                    outcome = self.state.apply_record(record)
                    for observe in self.observers:
                        observe(record, outcome)
        self._notify()

    def start(self) -> None:
        """Start one tailing task per partition."""
        assert not self._tasks, "already started"
        for partition in range(len(self.state.applied)):
            self._tasks.append(asyncio.create_task(self._tail(partition), name=f"apply-{self.topic}-{partition}"))

    async def stop(self) -> None:
        """Stop tailing; what was applied stays applied."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

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
                for record in records:
                    outcome = self.state.apply_record(record)
                    for observe in self.observers:
                        observe(record, outcome)
                if records:
                    self._notify()
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # an apply loop that dies must be visible, not silent
            self.error = error
            self._notify()
            raise

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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._advanced.wait(), remaining)
        return True

    async def lag(self) -> list[int]:
        """Records appended but not yet applied, per partition."""
        ends = await self.log.end_offsets(self.topic)
        return [end - applied for end, applied in zip(ends, self.state.applied, strict=True)]
