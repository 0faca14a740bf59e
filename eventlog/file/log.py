"""The embedded backend: topics as directories of partition directories of segment files.

<data>/LOCK                                  held (flock) by the one process that writes
<data>/topics/<topic>/topic.json             partitions, parent, fork cut (written atomically)
<data>/topics/<topic>/<partition>/<base>.log segment files of framed batches
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from eventlog import limits
from eventlog.base import EventLog
from eventlog.clock import Clock, wall_clock_ms
from eventlog.errors import CorruptLogError, InvalidRequestError, LogError
from eventlog.file.partition import (
    Disk,
    FailureLatch,
    PartitionStore,
    StoreOptions,
    create_first_segment,
    sync_directory,
)
from eventlog.fsync import FsyncPolicy
from eventlog.records import AppendResult, Message, Record, TopicInfo

__all__ = ["FileLog"]

_TOPIC_FILE = "topic.json"
_CREATING_SUFFIX = ".creating"
#: Worker threads that write and sync partitions in parallel.
WRITER_THREADS_MAX = 8


class FileLog(EventLog):
    """Durable topics in a data directory; one writing process at a time."""

    def __init__(self, root: Path, options: StoreOptions, lock_fd: int | None) -> None:
        super().__init__()
        self.root = root
        self._options = options
        self._lock_fd = lock_fd
        self._stores: dict[str, list[PartitionStore]] = {}
        self._syncer: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        root: Path | str,
        *,
        fsync: FsyncPolicy | str = "always",
        segment_bytes: int = limits.SEGMENT_BYTES_DEFAULT,
        clock: Clock = wall_clock_ms,
        disk: Disk | None = None,
        read_only: bool = False,
    ) -> FileLog:
        """Open (creating if needed) the log in `root`: recover torn tails, refuse corruption.

        `read_only` takes no lock and repairs nothing, for inspecting a log another process writes.
        """
        root = Path(root)
        if not 1024 <= segment_bytes <= 1 << 40:
            raise InvalidRequestError("segment_bytes must be within 1 KiB..1 TiB")
        policy = FsyncPolicy.parse(fsync)
        if read_only and not (root / "topics").is_dir():
            raise LogError(f"{root} holds no agentlog data (no topics directory)")
        lock_fd = None if read_only else _lock(root)
        executor = ThreadPoolExecutor(max_workers=WRITER_THREADS_MAX, thread_name_prefix="agentlog-writer")
        options = StoreOptions(policy, segment_bytes, clock, disk or Disk(), executor, FailureLatch(), read_only)
        log = cls(root, options, lock_fd)
        try:
            await asyncio.get_running_loop().run_in_executor(executor, log._load_topics)
        except BaseException:
            await log.close()
            raise
        if policy.mode == "interval" and not read_only:
            log._syncer = asyncio.get_running_loop().create_task(log._sync_periodically(policy.interval_ms))
        return log

    # ----------------------------------------------------------------------------------- loading

    def _load_topics(self) -> None:
        topics_dir = self.root / "topics"
        for entry in sorted(topics_dir.iterdir()):
            if entry.name.endswith(_CREATING_SUFFIX) or not (entry / _TOPIC_FILE).exists():
                if not self._options.read_only:
                    shutil.rmtree(entry)  # a creation or deletion a crash interrupted
                continue
            info = _read_topic_file(entry / _TOPIC_FILE)
            self._stores[info.name] = [
                PartitionStore.open(entry / str(p), p, self._options) for p in range(info.partitions)
            ]
            self._topics[info.name] = info
        for info in self._topics.values():
            if info.parent is not None and info.parent not in self._topics:
                raise CorruptLogError(
                    str(topics_dir / info.name / _TOPIC_FILE), 0, f"parent {info.parent!r} is missing"
                )

    # ----------------------------------------------------------------------------------- backend

    async def _physical_create(self, info: TopicInfo) -> None:
        self._check_writable()
        await asyncio.get_running_loop().run_in_executor(self._options.executor, self._create_files, info)
        directory = self.root / "topics" / info.name
        self._stores[info.name] = [
            PartitionStore.open(directory / str(p), p, self._options) for p in range(info.partitions)
        ]

    def _create_files(self, info: TopicInfo) -> None:
        """Build the topic in a temporary directory, then rename it into place (atomic)."""
        topics_dir = self.root / "topics"
        staging = topics_dir / f"{info.name}{_CREATING_SUFFIX}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        for partition in range(info.partitions):
            (staging / str(partition)).mkdir()
            create_first_segment(staging / str(partition), self._options.disk)
        _write_durably(staging / _TOPIC_FILE, _encode_topic(info), self._options.disk)
        os.rename(staging, topics_dir / info.name)
        sync_directory(topics_dir, self._options.disk)

    async def _physical_delete(self, name: str) -> None:
        self._check_writable()
        for store in self._stores.pop(name):
            await store.drain()
            store.close()
        await asyncio.get_running_loop().run_in_executor(self._options.executor, self._delete_files, name)

    def _delete_files(self, name: str) -> None:
        """Remove topic.json first: a crash part-way leaves a directory that the next open clears."""
        directory = self.root / "topics" / name
        (directory / _TOPIC_FILE).unlink()
        sync_directory(directory, self._options.disk)
        shutil.rmtree(directory)
        sync_directory(self.root / "topics", self._options.disk)

    async def _physical_append(self, topic: str, partition: int, messages: list[Message]) -> AppendResult:
        self._check_writable()
        return await self._stores[topic][partition].append(messages)

    async def _physical_read(
        self, topic: str, partition: int, offset: int, max_records: int, wait_ms: int
    ) -> list[Record]:
        store = self._stores[topic][partition]
        if wait_ms > 0 and offset >= store.end_offset:
            await store.wait_beyond(offset, wait_ms)
        return store.read(offset, max_records)

    async def _physical_end_offsets(self, topic: str) -> list[int]:
        return [store.end_offset for store in self._stores[topic]]

    def failure(self) -> str | None:
        """Why the log accepts no more writes (the failure latch's error), or None."""
        error = self._options.latch.error
        return None if error is None else repr(error)

    async def _physical_close(self) -> None:
        if self._syncer is not None:
            self._syncer.cancel()
        for stores in self._stores.values():
            for store in stores:
                await store.drain()
        if self._options.policy.mode == "interval" and self._options.latch.error is None:
            await self._sync_dirty()
        for stores in self._stores.values():
            for store in stores:
                store.close()
        self._options.executor.shutdown(wait=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ----------------------------------------------------------------------------------- helpers

    def _check_writable(self) -> None:
        if self._options.read_only:
            raise LogError("the log was opened read-only")
        self._options.latch.check()

    async def _sync_periodically(self, interval_ms: int) -> None:
        while True:
            await asyncio.sleep(interval_ms / 1000)
            try:
                await self._sync_dirty()
            except OSError as error:
                self._options.latch.error = self._options.latch.error or error
                return

    async def _sync_dirty(self) -> None:
        loop = asyncio.get_running_loop()
        for stores in self._stores.values():
            for store in stores:
                if store.dirty:
                    await loop.run_in_executor(self._options.executor, store.sync_now)


def _lock(root: Path) -> int:
    (root / "topics").mkdir(parents=True, exist_ok=True)
    fd = os.open(root / "LOCK", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LogError(f"{root} is in use by another process (LOCK is held)") from None
    return fd


def _encode_topic(info: TopicInfo) -> bytes:
    document = {
        "format": 1,
        "name": info.name,
        "partitions": info.partitions,
        "parent": info.parent,
        "fork_cut": list(info.fork_cut) if info.fork_cut is not None else None,
    }
    return json.dumps(document, sort_keys=True).encode()


def _read_topic_file(path: Path) -> TopicInfo:
    try:
        document = json.loads(path.read_bytes())
        if document["format"] != 1:
            raise ValueError(f"unknown format {document['format']!r}")
        fork_cut = document["fork_cut"]
        return TopicInfo(
            name=document["name"],
            partitions=int(document["partitions"]),
            parent=document["parent"],
            fork_cut=tuple(int(o) for o in fork_cut) if fork_cut is not None else None,
        )
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptLogError(str(path), 0, f"unreadable topic metadata: {error}") from error


def _write_durably(path: Path, data: bytes, disk: Disk) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
        disk.sync_file(fd)
    finally:
        os.close(fd)
