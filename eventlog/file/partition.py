"""One partition of the embedded log: segment files, a group-committing writer and a reader.

Appends are queued with their offsets and timestamps assigned at once; one flush at a time takes
everything queued, writes it with one write per segment and syncs it once (group commit) in a worker
thread, then publishes it. Readers see only published (durable) frames.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import struct
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from eventlog.clock import Clock
from eventlog.errors import CorruptLogError, LogFailedError
from eventlog.file.frame import HEADER, FrameError, check_crc, decode_records, encode_batch, read_header
from eventlog.file.segment import Segment, scan_segment, segment_name, segment_paths
from eventlog.fsync import FsyncPolicy
from eventlog.records import AppendResult, Message, Record

__all__ = ["Disk", "FailureLatch", "PartitionStore", "StoreOptions", "create_first_segment", "sync_directory"]

#: Most bytes one pread takes when a reader walks a segment.
READ_CHUNK_BYTES_MAX = 1024 * 1024
#: Fewest bytes one pread takes (small reads still fetch a page or more).
READ_CHUNK_BYTES_MIN = 16 * 1024


@dataclass(frozen=True, slots=True)
class Disk:
    """The calls the log makes to persist bytes; tests pass failing ones to inject faults."""

    sync_file: Callable[[int], None] = os.fdatasync
    sync_directory: Callable[[int], None] = os.fsync


class FailureLatch:
    """Shared by all partitions of a log: the first write/sync error stops every later write."""

    def __init__(self) -> None:
        self.error: BaseException | None = None

    def check(self) -> None:
        """Raise LogFailedError if a write or sync has failed before."""
        if self.error is not None:
            raise LogFailedError(f"the log stopped accepting writes after a failed write or sync: {self.error}")


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """What every partition of one log shares."""

    policy: FsyncPolicy
    segment_bytes: int
    clock: Clock
    disk: Disk
    executor: Executor
    latch: FailureLatch
    read_only: bool


@dataclass(slots=True)
class _Pending:
    frame: bytes
    base_offset: int
    count: int
    timestamp_ms: int
    future: asyncio.Future[AppendResult]


@dataclass(slots=True)
class _Group:
    """Frames bound for one segment file in one flush."""

    segment: Segment
    fd: int | None  # None: the flush creates the file
    frames: list[_Pending]


#: Largest single write(); one huge write was measured several times slower than 1 MiB pieces.
WRITE_CHUNK_BYTES = 1024 * 1024


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view[:WRITE_CHUNK_BYTES])
        view = view[written:]


def _open_for_append(path: Path, *, create: bool) -> int:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | (os.O_CREAT | os.O_EXCL if create else 0)
    return os.open(path, flags, 0o644)


class PartitionStore:
    """The segments of one partition directory, and appends to and reads from them."""

    def __init__(
        self,
        directory: Path,
        partition: int,
        segments: list[Segment],
        last_timestamp_ms: int,
        options: StoreOptions,
    ) -> None:
        self.directory = directory
        self.partition = partition
        self._segments = segments
        self._bases = [s.base_offset for s in segments]
        self.end_offset = segments[-1].end_offset
        self._next_offset = self.end_offset
        self._last_timestamp_ms = last_timestamp_ms
        self._policy = options.policy
        self._segment_bytes = options.segment_bytes
        self._clock = options.clock
        self._disk = options.disk
        self._executor = options.executor
        self._latch = options.latch
        self._pending: list[_Pending] = []
        self._flush_task: asyncio.Task[None] | None = None
        self._changed: asyncio.Event | None = None
        self._read_fds: dict[int, int] = {}
        self._write_fd = -1 if options.read_only else _open_for_append(segments[-1].path, create=False)
        self.dirty = False

    # ----------------------------------------------------------------------------------- opening

    @classmethod
    def open(cls, directory: Path, partition: int, options: StoreOptions) -> PartitionStore:
        """Scan the partition's segments, repair a torn tail (unless read-only), refuse corruption."""
        disk, read_only = options.disk, options.read_only
        paths = segment_paths(directory)
        if not paths:
            if read_only:
                raise CorruptLogError(str(directory), 0, "partition directory holds no segment")
            create_first_segment(directory, disk)
            paths = segment_paths(directory)
        segments: list[Segment] = []
        last_timestamp_ms = 0
        expected = paths[0][0]
        for index, (base_offset, path) in enumerate(paths):
            if base_offset != expected:
                raise CorruptLogError(str(path), 0, f"segment starts at offset {base_offset}, expected {expected}")
            later_empty = all(p.stat().st_size == 0 for _, p in paths[index + 1 :])
            scan = scan_segment(path, base_offset, is_newest=later_empty)
            if scan.corruption is not None:
                raise scan.corruption
            if scan.torn_at is not None and not read_only:
                _truncate(path, scan.torn_at, disk)
                for _, later in paths[index + 1 :]:
                    later.unlink()
                sync_directory(directory, disk)
            segments.append(scan.segment)
            last_timestamp_ms = max(last_timestamp_ms, scan.last_timestamp_ms)
            expected = scan.segment.end_offset
            if scan.torn_at is not None:
                break
        return cls(directory, partition, segments, last_timestamp_ms, options)

    # ----------------------------------------------------------------------------------- appending

    async def append(self, messages: list[Message]) -> AppendResult:
        """Queue a batch for the next group commit and wait until it is durable."""
        self._latch.check()
        timestamp_ms = max(self._clock(), self._last_timestamp_ms)
        self._last_timestamp_ms = timestamp_ms
        base_offset = self._next_offset
        self._next_offset += len(messages)
        frame = encode_batch(base_offset, timestamp_ms, messages)
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(frame, base_offset, len(messages), timestamp_ms, future))
        if self._flush_task is None:
            self._flush_task = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                groups = self._plan(batch)
                try:
                    created_fds = await loop.run_in_executor(self._executor, self._write_groups, groups)
                except BaseException as error:
                    self._latch.error = self._latch.error or error
                    self._fail_all(batch + self._pending)
                    self._pending = []
                    return
                self._publish(groups, created_fds)
        finally:
            self._flush_task = None

    def _plan(self, batch: list[_Pending]) -> list[_Group]:
        """Split a flush's frames by segment, rolling to a new segment at the size limit."""
        active = self._segments[-1]
        size = active.size
        groups = [_Group(active, self._write_fd, [])]
        for pending in batch:
            if size > 0 and size + len(pending.frame) > self._segment_bytes:
                new_segment = Segment(pending.base_offset, self.directory / segment_name(pending.base_offset))
                new_segment.end_offset = pending.base_offset
                groups.append(_Group(new_segment, None, []))
                size = 0
            groups[-1].frames.append(pending)
            size += len(pending.frame)
        return [g for g in groups if g.frames or g.fd is None]

    def _write_groups(self, groups: list[_Group]) -> list[int]:
        """Worker thread: write each group with one write and sync it once; returns fds it created."""
        created: list[int] = []
        for group in groups:
            fd = group.fd
            if fd is None:
                fd = _open_for_append(group.segment.path, create=True)
                created.append(fd)
                if self._policy.mode == "always":
                    sync_directory(self.directory, self._disk)
            _write_all(fd, b"".join(p.frame for p in group.frames))
            if self._policy.mode == "always":
                self._disk.sync_file(fd)
        return created

    def _publish(self, groups: list[_Group], created_fds: list[int]) -> None:
        """Loop thread: make the written frames visible and resolve their appenders."""
        fds = iter(created_fds)
        for group in groups:
            segment = group.segment
            if group.fd is None:
                os.close(self._write_fd)
                self._write_fd = next(fds)
                self._segments.append(segment)
                self._bases.append(segment.base_offset)
            for pending in group.frames:
                segment.add_to_index(pending.base_offset, segment.size)
                segment.size += len(pending.frame)
                segment.end_offset = pending.base_offset + pending.count
        self.end_offset = self._segments[-1].end_offset
        self.dirty = self._policy.mode == "interval"
        for group in groups:
            for pending in group.frames:
                if not pending.future.done():
                    result = AppendResult(self.partition, pending.base_offset, pending.count, pending.timestamp_ms)
                    pending.future.set_result(result)
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _fail_all(self, batch: list[_Pending]) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(
                    LogFailedError(f"append to partition {self.partition} failed: {self._latch.error}")
                )

    def sync_now(self) -> None:
        """Worker thread: sync the active segment (the `interval` policy's timer calls this)."""
        self.dirty = False
        self._disk.sync_file(self._write_fd)

    async def drain(self) -> None:
        """Wait until every queued append has been flushed."""
        while self._flush_task is not None:
            await asyncio.shield(self._flush_task)

    # ----------------------------------------------------------------------------------- reading

    async def wait_beyond(self, offset: int, wait_ms: int) -> None:
        """Wait until a record at `offset` is visible, or `wait_ms` passes."""
        if offset < self.end_offset:
            return
        if self._changed is None:
            self._changed = asyncio.Event()
        try:  # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that races the event
            async with asyncio.timeout(wait_ms / 1000):
                await self._changed.wait()
        except TimeoutError:
            return

    def read(self, offset: int, max_records: int) -> list[Record]:
        """Up to `max_records` durable records from `offset` on, checked as they are read."""
        out: list[Record] = []
        if offset >= self.end_offset:
            return out
        segment_index = bisect.bisect_right(self._bases, offset) - 1
        segment = self._segments[segment_index]
        entry = bisect.bisect_right(segment.index_offsets, offset) - 1
        position = segment.index_positions[entry] if entry >= 0 else 0
        while len(out) < max_records and offset < self.end_offset:
            if position >= segment.size:
                segment_index += 1
                segment = self._segments[segment_index]
                position = 0
                continue
            position, offset = self._read_chunk(segment, position, offset, max_records, out)
        return out

    def _read_chunk(
        self, segment: Segment, position: int, offset: int, max_records: int, out: list[Record]
    ) -> tuple[int, int]:
        fd = self._read_fd(segment)
        wanted = min(max(READ_CHUNK_BYTES_MIN, (max_records - len(out)) * 256), READ_CHUNK_BYTES_MAX)
        data = os.pread(fd, min(segment.size - position, wanted), position)
        cursor = 0
        while cursor + HEADER.size <= len(data) and len(out) < max_records:
            try:
                length, crc, base_offset, count, _ = read_header(data, cursor)
                if cursor + length > len(data):
                    if cursor > 0:
                        break
                    data = os.pread(fd, length, position)
                    if len(data) != length:
                        raise FrameError(f"frame of {length} bytes, {len(data)} readable")
                check_crc(data, cursor, length, crc)
                if base_offset + count > offset:
                    out.extend(decode_records(data, cursor, self.partition, offset, max_records - len(out)))
                    offset = out[-1].offset + 1
            except (FrameError, struct.error) as error:
                raise CorruptLogError(str(segment.path), position + cursor, str(error)) from error
            if offset < base_offset + count:
                return position + cursor, offset
            cursor += length
        return position + cursor, offset

    def _read_fd(self, segment: Segment) -> int:
        fd = self._read_fds.get(segment.base_offset)
        if fd is None:
            fd = os.open(segment.path, os.O_RDONLY | os.O_CLOEXEC)
            self._read_fds[segment.base_offset] = fd
        return fd

    def close(self) -> None:
        """Close every file descriptor."""
        for fd in self._read_fds.values():
            os.close(fd)
        self._read_fds.clear()
        if self._write_fd >= 0:
            os.close(self._write_fd)
            self._write_fd = -1


def create_first_segment(directory: Path, disk: Disk) -> None:
    """Create the empty segment at offset 0 of a new partition directory, durably."""
    fd = _open_for_append(directory / segment_name(0), create=True)
    try:
        disk.sync_file(fd)
    finally:
        os.close(fd)
    sync_directory(directory, disk)


def _truncate(path: Path, size: int, disk: Disk) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        disk.sync_file(fd)
    finally:
        os.close(fd)


def sync_directory(directory: Path, disk: Disk) -> None:
    """fsync a directory, so that files created or renamed in it survive a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        disk.sync_directory(fd)
    finally:
        os.close(fd)
