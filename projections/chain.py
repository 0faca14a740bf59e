"""Tamper evidence (DESIGN §11): a hash chain over every partition's records, and its record on disk.

`link(previous, record)` is SHA-256 over the previous head and the record's bytes as the log holds
them (offset, log timestamp, key, headers, value), so each record's hash covers every one before it.
The engine keeps the head per partition (`EngineState.chain`, shown per partition in `/v1/status`).
A node on an embedded log also writes each record's chain hash, as the engine computed it when it
applied the record, to `<data>/audit/<topic>/<partition>.chain` (`ChainFile`: 16 bytes a record,
at `16 * offset`). `verify_chain` recomputes the chain from the log offline and names the first
record whose hash differs from the one recorded: a record rewritten after it was applied, even with
a valid checksum, breaks the chain there. Recorded entries of zeros mean "not recorded" (a gap the
node never wrote, e.g. after a crash lost the buffered tail).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from eventlog.base import EventLog
from eventlog.records import Record

__all__ = [
    "CHAIN_ENTRY_BYTES",
    "GENESIS",
    "ChainBreak",
    "ChainFile",
    "ChainReport",
    "chain_path",
    "link",
    "verify_chain",
]

#: The head of an empty partition's chain.
GENESIS: Final = bytes(32)
#: Bytes of each recorded chain hash (a SHA-256 prefix).
CHAIN_ENTRY_BYTES: Final = 16
#: Records one verify read takes.
VERIFY_BATCH_RECORDS: Final = 5_000
_UNRECORDED: Final = bytes(CHAIN_ENTRY_BYTES)
_FIXED = struct.Struct("<QQiI")  # offset, log time, key length (-1: none), header count
_PAIR = struct.Struct("<II")  # a header's name and value lengths
_LENGTH = struct.Struct("<I")


def link(previous: bytes, record: Record) -> bytes:
    """The chain head after `record`: SHA-256 of the previous head and the record's logged bytes."""
    key = record.key
    headers = record.headers
    parts = [previous, _FIXED.pack(record.offset, record.timestamp_ms, -1 if key is None else len(key), len(headers))]
    if key is not None:
        parts.append(key)
    for name, value in headers:
        encoded = name.encode()
        parts.append(_PAIR.pack(len(encoded), len(value)))
        parts.append(encoded)
        parts.append(value)
    parts.append(_LENGTH.pack(len(record.value)))
    parts.append(record.value)
    return hashlib.sha256(b"".join(parts)).digest()


def chain_path(data_dir: Path, topic: str, partition: int) -> Path:
    """Where the chain hashes of one partition are recorded."""
    return data_dir / "audit" / topic / f"{partition}.chain"


class ChainFile:
    """Appends each applied record's chain hash to its partition's file (buffered; `flush` writes)."""

    def __init__(self, data_dir: Path, topic: str, partitions: int) -> None:
        self._paths = [chain_path(data_dir, topic, p) for p in range(partitions)]
        self._lengths = [path.stat().st_size // CHAIN_ENTRY_BYTES if path.exists() else 0 for path in self._paths]
        self._pending: list[bytearray] = [bytearray() for _ in range(partitions)]

    def record(self, partition: int, offset: int, head: bytes) -> None:
        """Note the chain hash after `offset` (offsets already recorded are left as first written)."""
        next_offset = self._lengths[partition]
        if offset < next_offset:
            return
        pending = self._pending[partition]
        if offset > next_offset:  # a gap (a snapshot restored past what was recorded): unrecorded
            pending += _UNRECORDED * (offset - next_offset)
        pending += head[:CHAIN_ENTRY_BYTES]
        self._lengths[partition] = offset + 1

    def flush(self) -> None:
        """Write what is pending (no fsync: the chain is evidence, rebuilt as records are applied)."""
        for path, pending in zip(self._paths, self._pending, strict=True):
            if pending:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("ab") as out:
                    out.write(pending)
                pending.clear()


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first record of a partition whose chain hash differs from the recorded one."""

    partition: int
    offset: int
    computed: str
    recorded: str


@dataclass
class ChainReport:
    """What `verify_chain` found: heads per partition, records checked and recorded, the first breaks."""

    heads: list[str] = field(default_factory=list)
    records: int = 0
    anchored: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no partition's chain breaks."""
        return not self.breaks


async def verify_chain(
    log: EventLog, data_dir: Path, topic: str, progress: Callable[[int], None] | None = None
) -> ChainReport:
    """Recompute `topic`'s chains from the log; compare each record's hash with the one recorded."""
    partitions = log.topic(topic).partitions
    ends = await log.end_offsets(topic)
    report = ChainReport()
    for partition in range(partitions):
        path = chain_path(data_dir, topic, partition)
        recorded = path.read_bytes() if path.exists() else b""
        head = GENESIS
        offset = 0
        broken: ChainBreak | None = None
        while offset < ends[partition]:
            records = await log.read(topic, partition, offset, max_records=VERIFY_BATCH_RECORDS)
            if not records:
                break
            for record in records:
                head = link(head, record)
                report.records += 1
                entry = recorded[record.offset * CHAIN_ENTRY_BYTES : (record.offset + 1) * CHAIN_ENTRY_BYTES]
                if len(entry) == CHAIN_ENTRY_BYTES and entry != _UNRECORDED:
                    report.anchored += 1
                    if broken is None and entry != head[:CHAIN_ENTRY_BYTES]:
                        broken = ChainBreak(partition, record.offset, head[:CHAIN_ENTRY_BYTES].hex(), entry.hex())
            offset = records[-1].offset + 1
            if progress is not None:
                progress(report.records)
        report.heads.append(head.hex())
        if broken is not None:
            report.breaks.append(broken)
    return report
