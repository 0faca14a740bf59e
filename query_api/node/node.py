"""A node: one log, one engine folding its main topic, a producer, the TTL sweeper and snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commands import CommandError, CommandProducer, Envelope
from eventlog.base import EventLog
from eventlog.errors import TopicExistsError, TopicNotFoundError
from eventlog.records import TopicInfo
from eventlog.url import open_log
from projections.catalog import new_state
from projections.chain import ChainFile
from projections.collector import collector_paused, freeze_state
from projections.cut import format_token, parse_token
from projections.engine import Engine, EngineState
from projections.outcome import Outcome
from projections.processors import LogProcessors, default_processors, sweep_expired
from projections.records import RecordsModel
from projections.snapshot import SnapshotError, list_snapshots, load_snapshot, write_snapshot
from query_api.node.branches import DEFAULT_TENANT, MAIN, Branch, Branches
from query_api.node.hub import Hub
from query_api.settings import Settings

__all__ = ["Node", "NotApplied", "TokenAhead", "WriteResult", "open_topic"]

logger = logging.getLogger("agentlog.node")

#: Commands restored at start-up from which the state is frozen out of the garbage collector's walks.
FREEZE_STATE_COMMANDS = 100_000
#: How often the snapshot task checks whether enough was applied since the last snapshot.
SNAPSHOT_CHECK_S = 1.0
#: How often the records' chain hashes are written to `<data>/audit/` (see `projections.chain`).
CHAIN_FLUSH_S = 1.0


class NotApplied(Exception):
    """The node has not applied a required cut within the allowed wait."""


class TokenAhead(Exception):
    """A token names positions past the end of the log: no write of this log answered it."""


def format_cut(offsets: dict[int, int] | list[int]) -> str:
    """`p:o` pairs of a cut, for messages."""
    items = offsets.items() if isinstance(offsets, dict) else enumerate(offsets)
    return ",".join(f"{p}:{o}" for p, o in items)


class OutcomeMissing(RuntimeError):
    """A command was applied but its outcome is not remembered (a window far too small: a bug)."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write answers: the outcome, where the command sits, and a token for reading it back."""

    command_id: str
    partition: int
    offset: int
    timestamp_ms: int
    outcome: Outcome
    token: str

    def body(self) -> dict[str, Any]:
        """The JSON body of a write response."""
        return {
            "command_id": self.command_id,
            "outcome": self.outcome.status,
            "result": self.outcome.result,
            "position": {"partition": self.partition, "offset": self.offset},
            "timestamp_ms": self.timestamp_ms,
            "token": self.token,
        }


class Node:
    """Serves one topic of one log: writes through the producer, reads from the engine's models."""

    def __init__(self, settings: Settings, log: EventLog, engine: Engine) -> None:
        self.settings = settings
        self.log = log
        self.engine = engine
        self.producer = CommandProducer(log, settings.topic)
        self.snapshot_dir = settings.resolved_snapshot_dir()
        self._tasks: list[asyncio.Task[None]] = []
        self._snapshot_total = sum(engine.applied)
        self.started_at_ms = int(time.time() * 1000)
        self.processors: LogProcessors | None = None
        self.branches = Branches(log, settings.topic, engine, self.producer, self.snapshot_dir)
        self.chain_file: ChainFile | None = None
        #: The embedded and memory logs answer an append with exactly what a read returns, so a write's
        #: record is applied by its writer when it is next (Kafka's is read back: its broker stamps it).
        self._applies_own_writes = settings.log.startswith(("file://", "memory://"))
        self.hub = Hub(log, settings.topic, engine, settings.subscriber_queue_frames)

    @classmethod
    async def start(cls, settings: Settings) -> Node:
        """Open the log, restore the newest good snapshot, replay the tail, start tailing and background tasks."""
        log = await open_log(settings.log, fsync=settings.fsync)
        info = await open_topic(log, settings.topic, settings.partitions)
        state = _restore(settings.resolved_snapshot_dir(), settings.topic, info.partitions)
        engine = Engine(log, settings.topic, state)
        chain_file = None
        if settings.log.startswith("file://"):
            chain_file = ChainFile(Path(settings.log.removeprefix("file://")), settings.topic, info.partitions)
            engine.chain_sink = chain_file.record
        with collector_paused():
            await engine.catch_up()
        if sum(engine.applied) >= FREEZE_STATE_COMMANDS:
            freeze_state()  # the restored state stays: full collections need not walk it again
        engine.start()
        node = cls(settings, log, engine)
        node.chain_file = chain_file
        if chain_file is not None:
            chain_file.flush()
            node._tasks.append(asyncio.create_task(node._chain_forever(), name="chain-file"))
        if settings.sweep_interval_ms > 0:
            node._tasks.append(asyncio.create_task(node._sweep_forever(), name="ttl-sweeper"))
        if node.snapshot_dir is not None and settings.snapshot_every > 0:
            node._tasks.append(asyncio.create_task(node._snapshot_forever(), name="snapshots"))
        if settings.runs_processors():
            node.processors = LogProcessors(engine, node.producer, default_processors())
            node.processors.start()
        return node

    async def stop(self) -> None:
        """Stop background work and the engine, then close the log."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.processors is not None:
            await self.processors.stop()
        self.hub.close()
        await self.branches.close()
        await self.engine.stop()
        if self.chain_file is not None:
            self.chain_file.flush()
        await self.log.close()

    @property
    def state(self) -> EngineState:
        """The engine's state: its models, applied cut and outcomes."""
        return self.engine.state

    @property
    def records(self) -> RecordsModel:
        """The KV read model."""
        model = self.state.model("records")
        assert isinstance(model, RecordsModel)
        return model

    @staticmethod
    def now_ms() -> int:
        """The reader's clock (reads hide expired values by it; applies never use it)."""
        return time.time_ns() // 1_000_000

    # ----------------------------------------------------------------------------------- writes

    async def execute(self, envelope: Envelope, branch: Branch | None = None) -> WriteResult:
        """Append a command (to `branch`, default main), wait until it is applied, and answer with its outcome."""
        producer, engine = (self.producer, self.engine) if branch is None else (branch.producer, branch.engine)
        reused = engine.state.bound_elsewhere(envelope)
        if reused is not None:  # refused before append: the key is bound to another command of this tenant
            raise CommandError("idempotency_key_reused", reused.detail or "command_id reused", 409)
        submitted, record = await producer.submit_record(envelope)
        applied = (self._applies_own_writes and engine.apply_appended(record)) or await engine.wait_for(
            {submitted.partition: submitted.offset + 1}, self.settings.write_timeout_ms / 1000
        )
        if not applied:
            raise NotApplied(
                f"command {submitted.command_id} is durable at {submitted.partition}:{submitted.offset} "
                f"but was not applied within {self.settings.write_timeout_ms} ms"
            )
        outcome = engine.state.outcome(submitted.partition, envelope)
        if outcome is None:
            raise OutcomeMissing(f"command {submitted.command_id} applied but its outcome is not remembered")
        return WriteResult(
            submitted.command_id,
            submitted.partition,
            submitted.offset,
            submitted.timestamp_ms,
            outcome,
            format_token([(submitted.partition, submitted.offset)]),
        )

    # ----------------------------------------------------------------------------------- reads

    async def wait_token(self, token: str | None, wait_ms: int | None = None, branch: Branch | None = None) -> None:
        """Wait until a token's cut is applied (on `branch`, default main); NotApplied after the bounded wait."""
        if not token:
            return
        engine = self.engine if branch is None else branch.engine
        cut = parse_token(token, len(engine.applied))
        if any(engine.applied[partition] < offset for partition, offset in cut.items()):
            ends = await self.log.end_offsets(self.branches.main.topic if branch is None else branch.topic)
            beyond = {p: o for p, o in cut.items() if o > ends[p]}
            if beyond:
                raise TokenAhead(f"the log has no position {format_cut(beyond)} yet (end offsets: {format_cut(ends)})")
        limit_ms = self.settings.read_wait_ms_max if wait_ms is None else min(wait_ms, self.settings.read_wait_ms_max)
        if not await engine.wait_for(cut, limit_ms / 1000):
            applied = self.token() if branch is None else branch.token()
            raise NotApplied(f"this node has not applied {token} within {limit_ms} ms (applied: {applied})")

    def token(self) -> str:
        """A token for everything this node has applied."""
        return ",".join(f"{p}:{o}" for p, o in enumerate(self.engine.applied))

    async def state_at(self, as_of: str, branch: str = MAIN, tenant: str = DEFAULT_TENANT) -> EngineState:
        """The state of `tenant`'s `branch` as of a cut or a log time (see `branches`), rebuilt there."""
        handle = await self.branches.get(tenant, branch)
        resolved = await self.branches.resolve_as_of(handle, as_of, self.settings.read_wait_ms_max / 1000)
        return await self.branches.state_at(handle, resolved.cut, tenant)

    # ----------------------------------------------------------------------------------- background

    async def sweep_once(self, now_ms: int | None = None) -> int:
        """Append expiry commands for records expired by `now_ms`; returns how many were appended."""
        return await sweep_expired(self.producer, self.records, self.now_ms() if now_ms is None else now_ms)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval_ms / 1000)
            try:
                await self.sweep_once()
            except Exception:
                logger.exception("TTL sweep failed; retrying next period")

    async def _chain_forever(self) -> None:
        while True:
            await asyncio.sleep(CHAIN_FLUSH_S)
            if self.chain_file is not None:
                try:
                    self.chain_file.flush()
                except OSError:
                    logger.exception("writing the chain file failed; retrying next period")

    async def _snapshot_forever(self) -> None:
        while True:
            await asyncio.sleep(SNAPSHOT_CHECK_S)
            total = sum(self.engine.applied)
            if total - self._snapshot_total >= self.settings.snapshot_every:
                try:
                    await self.snapshot()
                except Exception:
                    logger.exception("snapshot failed; retrying after %d more commands", self.settings.snapshot_every)
                    self._snapshot_total = total

    async def snapshot(self) -> Path | None:
        """Write a snapshot of the current state now, in a worker thread while applying is paused.

        Reads go on being served meanwhile; writes are appended and wait for their outcome until the
        snapshot is written. The state holds still, so the snapshot is of one cut.
        """
        if self.snapshot_dir is None:
            return None
        async with self.engine.paused():
            work = asyncio.ensure_future(
                asyncio.to_thread(write_snapshot, self.snapshot_dir, self.settings.topic, self.state)
            )
            try:
                info = await asyncio.shield(work)
            except asyncio.CancelledError:  # stay paused until the thread is done reading the state
                await asyncio.wait([work])
                raise
        self._snapshot_total = sum(info.cut)
        return info.path


async def open_topic(log: EventLog, topic: str, partitions: int) -> TopicInfo:
    """The main topic, created if absent; another node creating it at the same moment is fine."""
    for attempt in range(50):
        try:
            return log.topic(topic)
        except TopicNotFoundError:
            pass
        try:
            return await log.create_topic(topic, partitions)
        except TopicExistsError:  # lost the race: wait until the winner's topic shows in our catalog
            sync_topics = getattr(log, "sync_topics", None)
            if sync_topics is not None:
                await sync_topics()
            await asyncio.sleep(min(0.05 * (attempt + 1), 0.5))
    return log.topic(topic)


def _why(error: Exception) -> str:
    """A snapshot load failure in one line."""
    return str(error) if isinstance(error, SnapshotError) else f"{type(error).__name__}: {error}"


def _restore(snapshot_dir: Path | None, topic: str, partitions: int) -> EngineState:
    """The newest snapshot that loads and checks out, or a fresh state."""
    if snapshot_dir is not None:
        for info in list_snapshots(snapshot_dir, topic):
            if len(info.cut) != partitions:
                continue
            try:
                return load_snapshot(info)
            except Exception as error:  # any failure (a check, a format, a class renamed): replay the log instead
                logger.warning("skipping snapshot %s: %s", info.path, _why(error))
    return new_state(partitions)
