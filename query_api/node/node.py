"""A node: one log, one engine folding its main topic, a producer, the TTL sweeper and snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commands import CommandProducer, Envelope
from eventlog.base import EventLog
from eventlog.errors import TopicExistsError, TopicNotFoundError
from eventlog.records import TopicInfo
from eventlog.url import open_log
from projections.catalog import new_state
from projections.cut import format_token, parse_token
from projections.engine import Engine, EngineState
from projections.outcome import Outcome
from projections.processors import LogProcessors, default_processors, sweep_expired
from projections.records import RecordsModel
from projections.snapshot import SnapshotError, list_snapshots, load_snapshot, write_snapshot
from query_api.node.branches import MAIN, Branch, Branches
from query_api.node.hub import Hub
from query_api.settings import Settings

__all__ = ["Node", "NotApplied", "TokenAhead", "WriteResult", "open_topic"]

logger = logging.getLogger("agentlog.node")

#: How often the snapshot task checks whether enough was applied since the last snapshot.
SNAPSHOT_CHECK_S = 1.0


class NotApplied(Exception):
    """The node has not applied a required cut within the allowed wait."""


class TokenAhead(Exception):
    """A token names positions past the end of the log: no write of this log answered it."""


def format_cut(offsets: dict[int, int] | list[int]) -> str:
    """`p:o` pairs of a cut, for messages."""
    items = offsets.items() if isinstance(offsets, dict) else enumerate(offsets)
    return ",".join(f"{p}:{o}" for p, o in items)


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
        self.hub = Hub(log, settings.topic, engine, settings.subscriber_queue_frames)

    @classmethod
    async def start(cls, settings: Settings) -> Node:
        """Open the log, restore the newest good snapshot, replay the tail, start tailing and background tasks."""
        log = await open_log(settings.log, fsync=settings.fsync)
        info = await open_topic(log, settings.topic, settings.partitions)
        state = _restore(settings.resolved_snapshot_dir(), settings.topic, info.partitions)
        engine = Engine(log, settings.topic, state)
        await engine.catch_up()
        engine.start()
        node = cls(settings, log, engine)
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
        submitted = await producer.submit(envelope)
        applied = await engine.wait_for(
            {submitted.partition: submitted.offset + 1}, self.settings.write_timeout_ms / 1000
        )
        if not applied:
            raise NotApplied(
                f"command {submitted.command_id} is durable at {submitted.partition}:{submitted.offset} "
                f"but was not applied within {self.settings.write_timeout_ms} ms"
            )
        outcome = engine.state.outcome(submitted.partition, submitted.command_id)
        assert outcome is not None
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

    async def state_at(self, as_of: str, branch: str = MAIN) -> EngineState:
        """The state of `branch` as of a cut or a log time (see `branches`): rebuilt to exactly that cut."""
        handle = await self.branches.get(branch)
        resolved = await self.branches.resolve_as_of(handle, as_of, self.settings.read_wait_ms_max / 1000)
        return await self.branches.state_at(handle, resolved.cut)

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

    async def _snapshot_forever(self) -> None:
        while True:
            await asyncio.sleep(SNAPSHOT_CHECK_S)
            total = sum(self.engine.applied)
            if total - self._snapshot_total >= self.settings.snapshot_every:
                self.snapshot()

    def snapshot(self) -> Path | None:
        """Write a snapshot of the current state now (on the loop thread, so the state is consistent)."""
        if self.snapshot_dir is None:
            return None
        info = write_snapshot(self.snapshot_dir, self.settings.topic, self.state)
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


def _restore(snapshot_dir: Path | None, topic: str, partitions: int) -> EngineState:
    """The newest snapshot that loads and checks out, or a fresh state."""
    if snapshot_dir is not None:
        for info in list_snapshots(snapshot_dir, topic):
            if len(info.cut) != partitions:
                continue
            try:
                return load_snapshot(info)
            except SnapshotError as error:
                logger.warning("skipping snapshot %s: %s", info.path, error)
    return new_state(partitions)
