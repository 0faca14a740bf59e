"""Processors: derived work that reads the log and the applied state, and appends new commands.

Two kinds, both deterministic in what they append:

* **Level-triggered**: the TTL sweeper (`expiry_commands`, `sweep_expired`) lists the records expired
  by the reader's clock and appends `kv.expire` for each. It runs wherever the full records state
  lives (every node, embedded or Kafka). `kv.expire` is conditional on the version, so sweeps from
  several nodes never purge twice; their command ids are a function of (tenant, namespace, key,
  version, second of the sweep), so two nodes sweeping in the same second append the same command id
  and the second is a no-op retry.
* **Record-triggered** (`Processor`): for each record of chosen types, derive commands from the state
  right after that record is applied. `RunSummary` writes `runs/summary/<run_id>` when a run ends.
  A derived command's id is `derived:<processor>:<source command id>`, so a redelivered or
  re-scanned source yields a retry of the same command, applied once; the put is also conditional
  (`if_version=0`), so even a retry older than the engine's idempotency window changes nothing.

Runners: `LogProcessors` runs record-triggered processors inside a node (embedded mode: tail the
log, wait until the node's engine applied each record, derive from the engine's state);
`FoldProcessors` keeps its own fold of the partitions it is handed (Kafka mode: the Faust worker
feeds it the records of its consumer-group assignment).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from commands import (
    HEADER_TYPE,
    MAX_ID_BYTES,
    Caller,
    CommandError,
    CommandProducer,
    Envelope,
    KvExpire,
    KvPut,
    RunEnd,
    decode_record,
    partition_of,
    stamp,
)
from commands.limits import DEFAULT_RUN_ID
from eventlog.base import EventLog
from eventlog.records import Record
from projections.catalog import new_state
from projections.engine import APPLY_BATCH_RECORDS, TAIL_WAIT_MS, Engine, EngineState
from projections.records import RecordsModel
from projections.runs import RunsModel

__all__ = [
    "RUN_SUMMARY_NAMESPACE",
    "SWEEPER_AGENT",
    "SWEEP_BATCH_MAX",
    "FoldProcessors",
    "LogProcessors",
    "Processor",
    "RunSummary",
    "default_processors",
    "derive",
    "derived_id",
    "expiry_commands",
    "submit_derived",
    "sweep_expired",
]

logger = logging.getLogger("agentlog.processors")

#: Identity the TTL sweeper stamps on the expiry commands it appends.
SWEEPER_AGENT = "agentlog.sweeper"
#: Expired keys one sweep appends at most.
SWEEP_BATCH_MAX = 1_000
#: Sweeps within this window share expiry command ids (duplicates from other nodes become retries).
SWEEP_ID_WINDOW_MS = 1_000
#: The namespace run summaries are written to (key `summary/<run_id>`).
RUN_SUMMARY_NAMESPACE = "runs"
#: First and longest pause between attempts to append derived commands while the log refuses them.
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 5.0


def _short_hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


def derived_id(processor: str, source_id: str) -> str:
    """The command id of what `processor` derives from command `source_id`: deterministic, a valid id."""
    candidate = f"derived:{processor}:{source_id}"
    if len(candidate) <= MAX_ID_BYTES:
        return candidate
    return f"derived:{processor}:sha256-{_short_hash(source_id)}"


# ------------------------------------------------------------------------------------------ TTL sweep


def expiry_commands(records: RecordsModel, now_ms: int, limit: int = SWEEP_BATCH_MAX) -> list[Envelope]:
    """`kv.expire` commands for up to `limit` records expired by `now_ms` (the reader's clock)."""
    window = str(now_ms // SWEEP_ID_WINDOW_MS)
    return [
        stamp(
            KvExpire(key=key, expected_version=version),
            Caller(tenant=tenant, agent_id=SWEEPER_AGENT),
            namespace=namespace,
            command_id=f"derived:ttl_sweep:{_short_hash(tenant, namespace, key, str(version), window)}",
        )
        for tenant, namespace, key, version in records.expired(now_ms, limit)
    ]


async def sweep_expired(producer: CommandProducer, records: RecordsModel, now_ms: int) -> int:
    """Append expiry commands for the records expired by `now_ms`; returns how many were appended."""
    envelopes = expiry_commands(records, now_ms)
    if envelopes:
        await producer.submit_many(envelopes)
    return len(envelopes)


# ------------------------------------------------------------------------------------------ derivation


class Processor(Protocol):
    """Derives commands from one applied record of a type it names, and the state right after it."""

    name: ClassVar[str]
    command_types: ClassVar[frozenset[str]]

    def derive(self, state: EngineState, record: Record, envelope: Envelope) -> list[Envelope]:
        """The commands to append for `record` (already applied to `state`); empty for none."""
        ...


class RunSummary:
    """On an applied `run.end`: put `runs/summary/<run_id>` = status, event count and chain head."""

    name: ClassVar[str] = "run_summary"
    command_types: ClassVar[frozenset[str]] = frozenset(("run.end",))
    agent_id: ClassVar[str] = "agentlog.processor.run_summary"

    def derive(self, state: EngineState, record: Record, envelope: Envelope) -> list[Envelope]:
        """The summary put, if the run.end applied and no summary was written for this run yet."""
        command = envelope.command
        if not isinstance(command, RunEnd):
            return []
        runs = state.model("runs")
        records = state.model("records")
        assert isinstance(runs, RunsModel)
        assert isinstance(records, RecordsModel)
        run = runs.get_run(envelope.tenant, envelope.run_id)
        if run is None:
            return []
        outcome = state.outcome(record.partition, envelope)
        if outcome is not None and outcome.status != "applied":
            return []
        if outcome is None and (run.status, run.ended_at_ms) != (command.status, record.timestamp_ms):
            return []  # outcome forgotten (beyond the idempotency window): it applied only if it ended the run
        key = f"summary/{envelope.run_id}"
        if records.get(envelope.tenant, RUN_SUMMARY_NAMESPACE, key, record.timestamp_ms) is not None:
            return []
        value = {
            "run_id": run.run_id,
            "name": run.name,
            "status": run.status,
            "events": run.events,
            "last_hash": run.last_hash,
            "begun_at_ms": run.begun_at_ms,
            "ended_at_ms": run.ended_at_ms,
            "source": {"command_id": envelope.command_id, "partition": record.partition, "offset": record.offset},
        }
        put = KvPut(key=key, value=value, if_version=0)
        return [
            stamp(
                put,
                Caller(tenant=envelope.tenant, agent_id=self.agent_id),
                namespace=RUN_SUMMARY_NAMESPACE,
                run_id=DEFAULT_RUN_ID,
                command_id=derived_id(self.name, envelope.command_id),
            )
        ]


def default_processors() -> list[Processor]:
    """The record-triggered processors a node or worker runs."""
    return [RunSummary()]


def _record_type(record: Record) -> str | None:
    for name, value in record.headers:
        if name == HEADER_TYPE:
            return value.decode("utf-8", "replace")
    return None


def derive(processors: Sequence[Processor], state: EngineState, record: Record) -> list[Envelope]:
    """What `processors` derive from `record` (applied to `state`), minus commands `state` already applied."""
    record_type = _record_type(record)
    chosen = [p for p in processors if record_type in p.command_types]
    if not chosen:
        return []
    try:
        envelope = decode_record(record)
    except CommandError:
        return []  # the engine counted it as undecodable; nothing derives from it
    partitions = len(state.applied)
    derived: list[Envelope] = []
    for processor in chosen:
        for command in processor.derive(state, record, envelope):
            if state.outcome(partition_of(command, partitions), command) is None:
                derived.append(command)
    return derived


async def submit_derived(producer: CommandProducer, envelopes: Sequence[Envelope]) -> None:
    """Append derived commands, retrying while the log refuses (same ids: a retry is applied once)."""
    delay = RETRY_FIRST_S
    while envelopes:
        try:
            await producer.submit_many(envelopes)
            return
        except CommandError as error:  # cannot ever be logged: say so, drop it
            logger.error("derived commands dropped: %s (%s)", error, [e.command_id for e in envelopes])
            return
        except Exception as error:
            logger.warning("appending %d derived commands failed: %r; retrying in %.2f s", len(envelopes), error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)


# ------------------------------------------------------------------------------------------ runners


class LogProcessors:
    """Embedded runner: tails each partition, waits until the engine applied a record, derives, appends.

    Positions are not persisted: it starts at offset 0 and skips (by the `type` header, without
    decoding) every record no processor wants; derivations already applied are filtered by `derive`.
    """

    def __init__(self, engine: Engine, producer: CommandProducer, processors: Sequence[Processor]) -> None:
        self.engine = engine
        self.producer = producer
        self.processors = list(processors)
        self.derived = 0
        self._types = frozenset().union(*(p.command_types for p in self.processors))
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start one task per partition."""
        if not self._types:
            return
        for partition in range(len(self.engine.applied)):
            name = f"processors-{self.engine.topic}-{partition}"
            self._tasks.append(asyncio.create_task(self._run(partition), name=name))

    async def stop(self) -> None:
        """Stop the tasks (a derivation in flight is retried at the next start, under the same ids)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _run(self, partition: int) -> None:
        offset = 0
        engine = self.engine
        while True:
            try:
                records = await engine.log.read(
                    engine.topic, partition, offset, max_records=APPLY_BATCH_RECORDS, wait_ms=TAIL_WAIT_MS
                )
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning("processors: reading %s/%d at %d failed: %r", engine.topic, partition, offset, error)
                await asyncio.sleep(1.0)
                continue
            for record in records:
                if _record_type(record) in self._types:
                    await self._process(record)
                offset = record.offset + 1

    async def _process(self, record: Record) -> None:
        engine = self.engine
        while not await engine.wait_for({record.partition: record.offset + 1}, 1.0):
            if engine.error is not None:
                raise RuntimeError("the engine's apply loop failed; processors stop") from engine.error
        envelopes = derive(self.processors, engine.state, record)
        if envelopes:
            await submit_derived(self.producer, envelopes)
            self.derived += len(envelopes)


class FoldProcessors:
    """Worker runner: folds the records it is handed into its own state, derives from it, appends.

    Records of a partition must come in offset order, but may skip ahead (a consumer group resuming
    from a committed offset): the gap is folded from the log without deriving, since what lies below a
    committed offset was processed. A record below the fold's position was derived already and is
    skipped. Derived commands not yet appended (say the handler was cancelled by a rebalance) are kept
    and appended first at the next call.
    """

    def __init__(self, log: EventLog, topic: str, processors: Sequence[Processor] | None = None) -> None:
        self.log = log
        self.topic = topic
        self.producer = CommandProducer(log, topic)
        self.processors = list(default_processors() if processors is None else processors)
        self.state = new_state(log.topic(topic).partitions)
        self.derived = 0
        self.caught_up = 0
        self._pending: list[Envelope] = []

    async def handle(self, record: Record) -> list[Envelope]:
        """Fold `record` (catching up from the log first if it skips ahead); append what it derives."""
        await self.flush()
        partition = record.partition
        if record.offset < self.state.applied[partition]:
            return []
        if record.offset > self.state.applied[partition]:
            await self._catch_up(partition, record.offset)
        self.state.apply_record(record)
        derived = derive(self.processors, self.state, record)
        self._pending.extend(derived)
        await self.flush()
        return derived

    async def flush(self) -> None:
        """Append the derived commands still pending."""
        if self._pending:
            pending = list(self._pending)
            await submit_derived(self.producer, pending)
            del self._pending[: len(pending)]
            self.derived += len(pending)

    async def _catch_up(self, partition: int, until: int) -> None:
        delay = RETRY_FIRST_S
        while self.state.applied[partition] < until:
            start = self.state.applied[partition]
            try:
                records = await self.log.read(
                    self.topic, partition, start, max_records=min(APPLY_BATCH_RECORDS, until - start), wait_ms=1000
                )
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning("fold: reading %s/%d at %d failed: %r; retrying", self.topic, partition, start, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if records and records[0].offset >= until:
                break  # the rest up to `until` is a gap with no records (transaction markers, compaction)
            for item in records:
                if item.offset >= until:
                    break
                self.state.apply_record(item)
                self.caught_up += 1

    def stats(self) -> dict[str, Any]:
        """Counters for logs and tests: records folded per partition, derived, caught up."""
        return {"applied": list(self.state.applied), "derived": self.derived, "caught_up": self.caught_up}
