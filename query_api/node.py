"""A node: one log, one engine folding its main topic, a producer, the TTL sweeper and snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commands import Caller, CommandProducer, Envelope, KvExpire, stamp
from eventlog.base import EventLog
from eventlog.errors import TopicNotFoundError
from eventlog.url import open_log
from projections.catalog import new_state
from projections.cut import format_token, parse_token
from projections.engine import Engine, EngineState
from projections.outcome import Outcome
from projections.records import RecordsModel
from projections.snapshot import SnapshotError, list_snapshots, load_snapshot, write_snapshot
from query_api.settings import Settings

__all__ = ["Node", "NotApplied", "WriteResult"]

logger = logging.getLogger("agentlog.node")

#: Identity the TTL sweeper stamps on the expiry commands it appends.
SWEEPER_AGENT = "agentlog.sweeper"
#: Expired keys one sweep appends at most.
SWEEP_BATCH_MAX = 1_000
#: How often the snapshot task checks whether enough was applied since the last snapshot.
SNAPSHOT_CHECK_S = 1.0


class NotApplied(Exception):
    """The node has not applied a required cut within the allowed wait."""


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

    @classmethod
    async def start(cls, settings: Settings) -> Node:
        """Open the log, restore the newest good snapshot, replay the tail, start tailing and background tasks."""
        log = await open_log(settings.log, fsync=settings.fsync)
        try:
            info = log.topic(settings.topic)
        except TopicNotFoundError:
            info = await log.create_topic(settings.topic, settings.partitions)
        state = _restore(settings.resolved_snapshot_dir(), settings.topic, info.partitions)
        engine = Engine(log, settings.topic, state)
        await engine.catch_up()
        engine.start()
        node = cls(settings, log, engine)
        if settings.sweep_interval_ms > 0:
            node._tasks.append(asyncio.create_task(node._sweep_forever(), name="ttl-sweeper"))
        if node.snapshot_dir is not None and settings.snapshot_every > 0:
            node._tasks.append(asyncio.create_task(node._snapshot_forever(), name="snapshots"))
        return node

    async def stop(self) -> None:
        """Stop background work and the engine, then close the log."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
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

    async def execute(self, envelope: Envelope) -> WriteResult:
        """Append a command, wait until it is applied, and answer with its outcome."""
        submitted = await self.producer.submit(envelope)
        applied = await self.engine.wait_for(
            {submitted.partition: submitted.offset + 1}, self.settings.write_timeout_ms / 1000
        )
        if not applied:
            raise NotApplied(
                f"command {submitted.command_id} is durable at {submitted.partition}:{submitted.offset} "
                f"but was not applied within {self.settings.write_timeout_ms} ms"
            )
        outcome = self.state.outcome(submitted.partition, submitted.command_id)
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

    async def wait_token(self, token: str | None, wait_ms: int | None = None) -> None:
        """Wait until the cut a consistency token names is applied; NotApplied after the bounded wait."""
        if not token:
            return
        cut = parse_token(token, len(self.engine.applied))
        limit_ms = self.settings.read_wait_ms_max if wait_ms is None else min(wait_ms, self.settings.read_wait_ms_max)
        if not await self.engine.wait_for(cut, limit_ms / 1000):
            raise NotApplied(f"this node has not applied {token} within {limit_ms} ms (applied: {self.token()})")

    def token(self) -> str:
        """A token for everything this node has applied."""
        return ",".join(f"{p}:{o}" for p, o in enumerate(self.engine.applied))

    # ----------------------------------------------------------------------------------- background

    async def sweep_once(self, now_ms: int | None = None) -> int:
        """Append expiry commands for records expired by `now_ms`; returns how many were appended."""
        expired = self.records.expired(self.now_ms() if now_ms is None else now_ms, SWEEP_BATCH_MAX)
        envelopes = [
            stamp(
                KvExpire(key=key, expected_version=version),
                Caller(tenant=tenant, agent_id=SWEEPER_AGENT),
                namespace=namespace,
            )
            for tenant, namespace, key, version in expired
        ]
        if envelopes:
            await self.producer.submit_many(envelopes)
        return len(envelopes)

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
