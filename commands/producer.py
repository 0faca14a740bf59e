"""The producer: validate, route and encode commands, then append them to the log.

Nothing invalid reaches the log: every check (schema, limits, txn partition rule, encoded size)
runs before the first append. `submit_many` groups commands by partition and makes one atomic
append per partition (concurrently); atomicity holds within a partition, not across partitions.
A set of writes that must be atomic together is one command (`kv.batch_put`, `txn`), not many.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from commands import limits
from commands.encoding import encode_message
from commands.envelope import Envelope
from commands.errors import CommandError
from commands.routing import check_single_partition
from eventlog.base import EventLog
from eventlog.records import AppendResult, Message, Position, Record

__all__ = ["CommandProducer", "Submitted"]


@dataclass(frozen=True, slots=True)
class Submitted:
    """Where a command landed: its id and final position, and the log time the log stamped on it."""

    command_id: str
    partition: int
    offset: int
    timestamp_ms: int

    @property
    def position(self) -> Position:
        """The `(partition, offset)` of the command's record."""
        return Position(self.partition, self.offset)


class CommandProducer:
    """Appends validated, encoded commands to `topic` of `log`, each on its routed partition."""

    def __init__(self, log: EventLog, topic: str) -> None:
        self._log = log
        self._topic = topic

    @property
    def topic(self) -> str:
        """The topic commands are appended to."""
        return self._topic

    def prepare(self, envelope: Envelope) -> tuple[int, Message]:
        """Check `envelope` and encode it: its partition and log message; CommandError if it may not be logged."""
        if not isinstance(envelope, Envelope):
            raise CommandError("invalid", f"expected an Envelope, not {type(envelope).__name__}")
        partitions = self._log.topic(self._topic).partitions
        partition = check_single_partition(envelope, partitions)
        return partition, encode_message(envelope)

    async def submit(self, envelope: Envelope) -> Submitted:
        """Validate, encode and append one command; returns once its record is durable."""
        submitted, _ = await self.submit_record(envelope)
        return submitted

    async def submit_record(self, envelope: Envelope) -> tuple[Submitted, Record]:
        """`submit`, also answering the record as the log holds it now (what a read at its offset returns)."""
        partition, message = self.prepare(envelope)
        result = await self._log.append(self._topic, partition, [message])
        record = Record(
            result.partition,
            result.base_offset,
            result.timestamp_ms,
            message.key,
            message.value,
            tuple(message.headers),
        )
        return Submitted(envelope.command_id, result.partition, result.base_offset, result.timestamp_ms), record

    async def submit_many(self, envelopes: Sequence[Envelope]) -> list[Submitted]:
        """Validate and encode all, then append one atomic batch per partition; results in input order."""
        if len(envelopes) > limits.MAX_BATCH_COMMANDS:
            raise CommandError("too_large", f"{len(envelopes)} commands exceed {limits.MAX_BATCH_COMMANDS} per submit")
        groups: dict[int, list[tuple[int, Message]]] = {}
        for index, envelope in enumerate(envelopes):
            partition, message = self.prepare(envelope)
            groups.setdefault(partition, []).append((index, message))
        for partition, group in groups.items():
            size = sum(len(message.value) for _, message in group)
            if size > limits.MAX_SUBMIT_BYTES:
                raise CommandError(
                    "too_large", f"{size} bytes of commands for partition {partition} exceed {limits.MAX_SUBMIT_BYTES}"
                )
        order = sorted(groups)
        results: list[AppendResult] = await asyncio.gather(
            *(self._log.append(self._topic, p, [message for _, message in groups[p]]) for p in order)
        )
        submitted: list[Submitted | None] = [None] * len(envelopes)
        for partition, result in zip(order, results, strict=True):
            for position, (index, _) in enumerate(groups[partition]):
                envelope = envelopes[index]
                submitted[index] = Submitted(
                    envelope.command_id, result.partition, result.base_offset + position, result.timestamp_ms
                )
        return [item for item in submitted if item is not None]
