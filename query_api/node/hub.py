"""The push hub: fans every record the engine applies out to the subscribers it matches, in log order.

A subscriber registers a bounded queue and the applied cut at that instant in one step on the loop,
the same step in which the engine's observer runs, so every record is either before the start cut
(read back from the log as the backlog) or after it (queued live): never both, never neither. The
sender sends the backlog, then the live frames, skipping positions already sent. A subscriber whose
queue is full is dropped (it resumes from its last position); writers never wait for a subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from commands import CommandError, Envelope, decode_record
from eventlog.base import EventLog
from eventlog.records import Record
from projections.engine import Engine
from projections.outcome import Outcome

__all__ = ["DROPPED", "Filter", "Frame", "Hub", "Subscriber", "TooManySubscribers", "frame_of"]

#: Frames a subscriber may have queued before it is dropped as too slow (default; see settings).
QUEUE_FRAMES_MAX = 4_096
#: Records one backlog read takes.
BACKLOG_BATCH_RECORDS = 1_000
#: Subscribers one node serves at once.
SUBSCRIBERS_MAX = 10_000
#: Runs, namespaces or prefixes one subscription may name.
FILTER_TERMS_MAX = 100


@dataclass(frozen=True, slots=True)
class Filter:
    """What a subscriber wants: its tenant, then any of runs, namespaces, (namespace, prefix), channels; none = all."""

    tenant: str
    runs: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()
    prefixes: tuple[tuple[str, str], ...] = ()
    channels: frozenset[str] = frozenset()
    include_rejected: bool = False

    def matches(self, envelope: Envelope, status: str | None) -> bool:
        """True when this subscriber should see `envelope` (applied with outcome `status`)."""
        if envelope.tenant != self.tenant:
            return False
        if status == "rejected" and not self.include_rejected:
            return False
        if not (self.runs or self.namespaces or self.prefixes or self.channels):
            return True
        if envelope.run_id in self.runs:
            return True
        namespace = envelope.namespace
        if namespace is None:
            return False
        if namespace in self.namespaces:
            return True
        if namespace in self.channels and envelope.type.startswith("channel."):
            return True
        if self.prefixes:
            keys = command_keys(envelope)
            for wanted, prefix in self.prefixes:
                if wanted == namespace and any(key.startswith(prefix) for key in keys):
                    return True
        return False


def command_keys(envelope: Envelope) -> list[str]:
    """The keys (or names) a command writes: `key`, `name`, or the keys of its `items`."""
    command = envelope.command
    keys: list[str] = []
    for attribute in ("key", "name"):
        value = getattr(command, attribute, None)
        if isinstance(value, str):
            keys.append(value)
    for item in getattr(command, "items", None) or ():
        key = getattr(item, "key", None)
        if isinstance(key, str):
            keys.append(key)
    return keys


@dataclass(frozen=True, slots=True)
class Frame:
    """One pushed record: where it sits and its JSON bytes."""

    partition: int
    offset: int
    data: bytes


def frame_of(record: Record, envelope: Envelope, outcome: Outcome | None) -> Frame:
    """The frame of an applied record: position, log time, who, where, what, and its outcome."""
    body: dict[str, Any] = {
        "type": "record",
        "position": {"partition": record.partition, "offset": record.offset},
        "timestamp_ms": record.timestamp_ms,
        "command_id": envelope.command_id,
        "command_type": envelope.type,
        "agent_id": envelope.agent_id,
        "tool_id": envelope.tool_id,
        "run_id": envelope.run_id,
        "namespace": envelope.namespace,
        "command": envelope.command.model_dump(mode="json", exclude_none=True),
        "outcome": None if outcome is None else outcome.status,
        "reason": None if outcome is None else outcome.reason,
        "result": None if outcome is None else outcome.result,
    }
    return Frame(record.partition, record.offset, orjson.dumps(body))


#: Put in a dropped subscriber's queue (when there is room) so its sender stops.
DROPPED = Frame(-1, -1, b"")


@dataclass(eq=False, slots=True)
class Subscriber:
    """One subscription: its filter, the cut it started at, its bounded queue of live frames."""

    filter: Filter
    start: list[int]
    after: dict[int, int]
    queue: asyncio.Queue[Frame]
    dropped: bool = False


class TooManySubscribers(Exception):
    """The node already serves `SUBSCRIBERS_MAX` subscribers."""


class Hub:
    """Observes one engine and feeds its subscribers; `frames(subscriber)` is what a socket sends."""

    def __init__(self, log: EventLog, topic: str, engine: Engine, queue_frames_max: int = QUEUE_FRAMES_MAX) -> None:
        self.log = log
        self.queue_frames_max = queue_frames_max
        self.topic = topic
        self.engine = engine
        self.subscribers: set[Subscriber] = set()
        self.dropped_total = 0
        engine.observers.append(self.observe)

    def close(self) -> None:
        """Stop observing and drop every subscriber."""
        with contextlib.suppress(ValueError):
            self.engine.observers.remove(self.observe)
        for subscriber in list(self.subscribers):
            self._drop(subscriber)

    def observe(self, record: Record, outcome: Outcome) -> None:
        """The engine's observer: queue the record's frame for each subscriber it matches (never waits)."""
        if not self.subscribers:
            return
        try:
            envelope = decode_record(record)
        except CommandError:
            return
        frame: Frame | None = None
        for subscriber in list(self.subscribers):
            if not subscriber.filter.matches(envelope, outcome.status):
                continue
            if frame is None:
                frame = frame_of(record, envelope, outcome)
            try:
                subscriber.queue.put_nowait(frame)
            except asyncio.QueueFull:
                self._drop(subscriber)

    def _drop(self, subscriber: Subscriber) -> None:
        if subscriber not in self.subscribers:
            return
        self.subscribers.discard(subscriber)
        subscriber.dropped = True
        self.dropped_total += 1
        # What is queued is a gapless run of frames: the sender still sends it, then stops. A full
        # queue keeps the sender busy until it sees the flag; an empty one needs the marker to wake it.
        with contextlib.suppress(asyncio.QueueFull):
            subscriber.queue.put_nowait(DROPPED)

    def subscribe(self, filter: Filter, after: dict[int, int] | None) -> Subscriber:
        """Register a subscriber (synchronously, between two applies); `after` = resume cut (None: from now)."""
        if len(self.subscribers) >= SUBSCRIBERS_MAX:
            raise TooManySubscribers(f"this node serves {SUBSCRIBERS_MAX} subscribers already")
        start = self.engine.applied
        resume = {p: after.get(p, 0) for p in range(len(start))} if after is not None else dict(enumerate(start))
        subscriber = Subscriber(filter, start, resume, asyncio.Queue(self.queue_frames_max))
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a subscriber (its socket closed)."""
        self.subscribers.discard(subscriber)

    async def frames(self, subscriber: Subscriber) -> AsyncGenerator[Frame, None]:
        """The subscriber's frames: backlog from its resume cut to its start cut, then live; stops when dropped."""
        sent = dict(subscriber.after)
        for partition in range(len(subscriber.start)):
            async for record in self._scan(partition, sent[partition], subscriber.start[partition]):
                if subscriber.dropped:
                    return
                try:
                    envelope = decode_record(record)
                except CommandError:
                    continue
                outcome = self.engine.state.outcome(partition, envelope)
                if subscriber.filter.matches(envelope, None if outcome is None else outcome.status):
                    yield frame_of(record, envelope, outcome)
                sent[partition] = record.offset + 1
            sent[partition] = max(sent[partition], subscriber.start[partition])
        while not (subscriber.dropped and subscriber.queue.empty()):
            frame = await subscriber.queue.get()
            if frame is DROPPED:
                return
            if frame.offset < sent[frame.partition]:
                continue  # already sent from the backlog
            sent[frame.partition] = frame.offset + 1
            yield frame

    async def _scan(self, partition: int, start: int, stop: int) -> AsyncIterator[Record]:
        offset = start
        while offset < stop:
            records = await self.log.read(
                self.topic, partition, offset, max_records=min(BACKLOG_BATCH_RECORDS, stop - offset)
            )
            if not records:
                return
            for record in records:
                if record.offset >= stop:
                    return
                yield record
            offset = records[-1].offset + 1
