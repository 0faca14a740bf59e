"""Time travel, offline half (DESIGN §5): the cut a log time names, and a rebuild up to any cut.

- `cut_at_time(log, topic, time_ms)`: per partition, the first offset whose log timestamp is later
  than `time_ms` (log timestamps are non-decreasing per partition, so it is a binary search); the
  state at that cut is "everything the log had stamped by `time_ms`".
- `log_time_at(log, topic, cut)`: the newest log timestamp among the records just below a cut (the
  reader's clock for reads as of a cut; 0 for the empty cut).
- `find_command(log, topic, partition, command_id, time_ms)`: the offset of the first record of a
  command stamped at `time_ms` (a run event's position from its `log_time_ms` and `event_id`).
- `rebuild(log, topic, cut, snapshot_dir, progress)`: the engine state at exactly `cut`, starting
  from the newest snapshot whose cut is at or below `cut` on every partition (a branch may also
  start from an ancestor's snapshot below its fork cut), else from zero, then `Engine.catch_up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from commands import CommandError, decode_record
from eventlog.base import EventLog
from eventlog.scan import scan
from projections.catalog import new_state
from projections.collector import collector_paused
from projections.engine import Engine, EngineState
from projections.snapshot import SnapshotError, SnapshotInfo, list_snapshots, load_snapshot

__all__ = ["ProgressCallback", "TimeTravelError", "cut_at_time", "find_command", "log_time_at", "rebuild"]

logger = logging.getLogger("agentlog.timetravel")

#: `progress(done, total)`: records at or below the cut applied so far (a snapshot counts as done), and all of them.
ProgressCallback = Callable[[int, int], None]
#: Records one step of a rebuild applies before reporting progress and yielding to the event loop.
REBUILD_STEP_RECORDS = 1_000
#: Records one read of `find_command` takes while scanning.
SCAN_BATCH_RECORDS = 1_000


class TimeTravelError(ValueError):
    """A cut that does not fit the topic (wrong length, negative, beyond the log's end)."""


async def _timestamp(log: EventLog, topic: str, partition: int, offset: int) -> int:
    """The log timestamp of the record at `offset`."""
    records = await log.read(topic, partition, offset, max_records=1)
    if not records:
        raise TimeTravelError(f"{topic!r} partition {partition} has no record at offset {offset}")
    return records[0].timestamp_ms


async def _first_after(log: EventLog, topic: str, partition: int, end: int, time_ms: int, *, strict: bool) -> int:
    """The first offset below `end` stamped later than `time_ms` (at or later when not `strict`), else `end`."""
    low, high = 0, end
    while low < high:
        middle = (low + high) // 2
        stamped = await _timestamp(log, topic, partition, middle)
        if stamped > time_ms or (not strict and stamped == time_ms):
            high = middle
        else:
            low = middle + 1
    return low


async def cut_at_time(log: EventLog, topic: str, time_ms: int) -> list[int]:
    """Per partition, the first offset whose log timestamp is later than `time_ms` (binary search)."""
    ends = await log.end_offsets(topic)
    return [await _first_after(log, topic, p, end, time_ms, strict=True) for p, end in enumerate(ends)]


async def log_time_at(log: EventLog, topic: str, cut: Sequence[int]) -> int:
    """The newest log timestamp among the records just below `cut` (0 when the cut is empty)."""
    newest = 0
    for partition, offset in enumerate(cut):
        if offset > 0:
            newest = max(newest, await _timestamp(log, topic, partition, offset - 1))
    return newest


async def find_command(log: EventLog, topic: str, partition: int, command_id: str, time_ms: int) -> int | None:
    """The offset of the first record of `command_id` in `partition`; looks where `time_ms` was stamped first.

    The first record of a command is the one that applied (a retry answers the first outcome). The
    search starts at the first record stamped `time_ms` (binary search) and scans those stamped
    then; if timestamps were not monotonic there, it scans the whole partition.
    """
    end = (await log.end_offsets(topic))[partition]
    start = await _first_after(log, topic, partition, end, time_ms, strict=False)
    found = await _scan(log, topic, partition, command_id, start, end, time_ms)
    if found is None:
        found = await _scan(log, topic, partition, command_id, 0, end, None)
    return found


async def _scan(
    log: EventLog, topic: str, partition: int, command_id: str, start: int, end: int, time_ms: int | None
) -> int | None:
    """The first offset in [start, end) holding `command_id`; stops past records stamped `time_ms` if given."""
    async with contextlib.aclosing(
        scan(log, topic, partition, start, end, batch_records=SCAN_BATCH_RECORDS)
    ) as records:
        async for record in records:
            if time_ms is not None and record.timestamp_ms > time_ms:
                return None
            try:
                envelope = decode_record(record)
            except CommandError:
                continue
            if envelope.command_id == command_id:
                return record.offset
    return None


def _usable_snapshots(log: EventLog, topic: str, target: Sequence[int], snapshot_dir: Path) -> Iterator[SnapshotInfo]:
    """Snapshots of `topic` (or of an ancestor, below every fork cut on the way) at or below `target`."""
    bound = list(target)
    name: str | None = topic
    while name is not None:
        for info in list_snapshots(snapshot_dir, name):
            if len(info.cut) == len(bound) and all(s <= b for s, b in zip(info.cut, bound, strict=True)):
                yield info
        topic_info = log.topic(name)
        if topic_info.fork_cut is not None:
            bound = [min(b, f) for b, f in zip(bound, topic_info.fork_cut, strict=True)]
        name = topic_info.parent


def _start_state(log: EventLog, topic: str, target: Sequence[int], snapshot_dir: Path | None) -> EngineState:
    """The newest usable snapshot that loads and checks out, or a fresh state."""
    partitions = len(target)
    if snapshot_dir is not None:
        candidates = sorted(
            _usable_snapshots(log, topic, target, snapshot_dir), key=lambda info: sum(info.cut), reverse=True
        )
        for info in candidates:
            try:
                return load_snapshot(info)
            except Exception as error:  # any failure (a check, a format, a class renamed): replay the log instead
                reason = error if isinstance(error, SnapshotError) else f"{type(error).__name__}: {error}"
                logger.warning("skipping snapshot %s: %s", info.path, reason)
    return new_state(partitions)


async def rebuild(
    log: EventLog,
    topic: str,
    cut: Sequence[int],
    snapshot_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> EngineState:
    """The engine state of `topic` at exactly `cut`: the newest usable snapshot (else zero) plus a catch-up."""
    target = list(cut)
    partitions = log.topic(topic).partitions
    if len(target) != partitions:
        raise TimeTravelError(f"cut has {len(target)} offsets; {topic!r} has {partitions} partitions")
    ends = await log.end_offsets(topic)
    for partition, (offset, end) in enumerate(zip(target, ends, strict=True)):
        if not isinstance(offset, int) or not 0 <= offset <= end:
            raise TimeTravelError(f"cut offset {offset!r} of partition {partition} is outside 0..{end}")
    # Loading a snapshot is seconds of decoding on a large state: keep it off the event loop.
    state = await asyncio.to_thread(_start_state, log, topic, target, snapshot_dir)
    with collector_paused():
        await _replay(log, topic, state, target, progress)
    return state


async def _replay(
    log: EventLog, topic: str, state: EngineState, target: Sequence[int], progress: ProgressCallback | None
) -> None:
    """Apply `topic` to `state` up to `target`, in steps that yield to the event loop."""
    engine = Engine(log, topic, state)
    total = sum(target)
    if progress is not None:
        progress(sum(state.applied), total)
    for partition, end in enumerate(target):
        while state.applied[partition] < end:
            before = state.applied[partition]
            await engine.catch_up({partition: min(end, before + REBUILD_STEP_RECORDS)})
            if state.applied[partition] == before:
                raise TimeTravelError(f"{topic!r} partition {partition} ends at {before}, below the cut's {end}")
            if progress is not None:
                progress(sum(state.applied), total)
            await asyncio.sleep(0)
