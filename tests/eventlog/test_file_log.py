"""The embedded file log: the contract, recovery of torn tails, refusal of corruption, fsync failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from eventlog.base import EventLog
from eventlog.errors import CorruptLogError, LogError, LogFailedError
from eventlog.file import Disk, FileLog, verify_directory
from eventlog.records import Message
from tests.eventlog.log_contract import EventLogContract, payload

pytestmark = pytest.mark.anyio


class TestFileLog(EventLogContract):
    @pytest.fixture(autouse=True)
    def _root(self, tmp_path: Path) -> None:
        self.root = tmp_path / "data"

    async def open_log(self) -> EventLog:
        return await FileLog.open(self.root, segment_bytes=4096)


def segments_of(root: Path, topic: str = "t", partition: int = 0) -> list[Path]:
    """The segment files of one partition, oldest first."""
    return sorted((root / "topics" / topic / str(partition)).glob("*.log"))


async def write_batches(root: Path, batches: int, *, segment_bytes: int = 1 << 20) -> None:
    """Append `batches` batches of 3 records to t/0."""
    log = await FileLog.open(root, segment_bytes=segment_bytes)
    await log.create_topic("t", 1)
    for index in range(batches):
        await log.append("t", 0, [Message(payload(index * 3 + i), b"k", (("h", b"v"),)) for i in range(3)])
    await log.close()


async def read_values(root: Path) -> list[bytes]:
    """Every value of t/0 after (re)opening the log."""
    log = await FileLog.open(root)
    values = [r.value for r in await log.read("t", 0, 0, max_records=100_000)]
    await log.close()
    return values


def frame_ends(path: Path) -> list[int]:
    """The byte position after each frame of a segment."""
    data = path.read_bytes()
    ends, position = [], 0
    while position < len(data):
        position += int.from_bytes(data[position + 4 : position + 8], "little")
        ends.append(position)
    return ends


async def test_reopen_keeps_every_record(tmp_path: Path) -> None:
    root = tmp_path / "d"
    await write_batches(root, 40, segment_bytes=2048)
    assert len(segments_of(root)) > 3
    assert await read_values(root) == [payload(i) for i in range(120)]
    log = await FileLog.open(root)
    result = await log.append("t", 0, [Message(b"after")])
    assert result.base_offset == 120
    await log.close()
    report = verify_directory(root)
    assert (report.ok, report.records, report.torn_tails) == (True, 121, [])


async def test_torn_last_batch_at_every_byte_recovers_previous_batch(tmp_path: Path) -> None:
    root = tmp_path / "d"
    await write_batches(root, 4)
    [segment] = segments_of(root)
    ends = frame_ends(segment)
    pristine = segment.read_bytes()
    for cut in range(ends[-2], ends[-1]):
        segment.write_bytes(pristine[:cut])
        assert verify_directory(root).torn_tails == ([(str(segment), ends[-2])] if cut > ends[-2] else [])
        assert await read_values(root) == [payload(i) for i in range(9)], cut
        assert segment.stat().st_size == ends[-2]


async def test_garbage_in_final_frame_is_a_torn_tail(tmp_path: Path) -> None:
    root = tmp_path / "d"
    await write_batches(root, 3)
    [segment] = segments_of(root)
    ends = frame_ends(segment)
    data = bytearray(segment.read_bytes())
    data[ends[-1] - 5] ^= 0xFF
    segment.write_bytes(bytes(data))
    assert await read_values(root) == [payload(i) for i in range(6)]
    assert segment.stat().st_size == ends[-2]


async def test_zero_filled_tail_is_truncated(tmp_path: Path) -> None:
    root = tmp_path / "d"
    await write_batches(root, 2)
    [segment] = segments_of(root)
    size = segment.stat().st_size
    with segment.open("ab") as file:
        file.write(bytes(4096))
    assert await read_values(root) == [payload(i) for i in range(6)]
    assert segment.stat().st_size == size


async def test_flipped_byte_in_sealed_segment_refuses_to_open(tmp_path: Path) -> None:
    root = tmp_path / "d"
    await write_batches(root, 30, segment_bytes=1024)
    sealed = segments_of(root)[1]
    data = bytearray(sealed.read_bytes())
    data[40] ^= 0x01
    sealed.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError) as caught:
        await FileLog.open(root)
    assert caught.value.path == str(sealed)
    assert caught.value.position == 0
    assert "checksum" in str(caught.value)
    report = verify_directory(root)
    assert not report.ok
    assert report.corruptions[0].path == str(sealed)


async def test_bad_checksum_before_valid_frames_in_newest_segment_is_corruption(tmp_path: Path) -> None:
    root = tmp_path / "d"
    await write_batches(root, 5)
    [segment] = segments_of(root)
    ends = frame_ends(segment)
    data = bytearray(segment.read_bytes())
    data[ends[1] + 50] ^= 0x10
    segment.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError) as caught:
        await FileLog.open(root)
    assert (caught.value.path, caught.value.position) == (str(segment), ends[1])
    assert segment.read_bytes() == bytes(data)


async def test_corruption_found_by_a_reader_names_file_and_offset(tmp_path: Path) -> None:
    root = tmp_path / "d"
    await write_batches(root, 5)
    log = await FileLog.open(root)
    [segment] = segments_of(root)
    ends = frame_ends(segment)
    with segment.open("r+b") as file:
        file.seek(ends[2] + 40)
        file.write(b"\xee")
    with pytest.raises(CorruptLogError) as caught:
        await log.read("t", 0, 9, max_records=3)
    assert (caught.value.path, caught.value.position) == (str(segment), ends[2])
    await log.close()


async def test_fsync_failure_stops_every_later_write(tmp_path: Path) -> None:
    calls = {"n": 0}

    def flaky_sync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError(5, "Input/output error")
        os.fdatasync(fd)

    log = await FileLog.open(tmp_path / "d", disk=Disk(sync_file=flaky_sync))
    await log.create_topic("t", 1)
    acknowledged = []

    async def append_until_failure() -> None:
        for index in range(10):
            acknowledged.append((await log.append("t", 0, [Message(payload(index))])).base_offset)

    with pytest.raises(LogFailedError):
        await append_until_failure()
    with pytest.raises(LogFailedError):
        await log.append("t", 0, [Message(b"again")])
    with pytest.raises(LogFailedError):
        await log.create_topic("other", 1)
    calls["n"] = -1000
    with pytest.raises(LogFailedError):
        await log.append("t", 0, [Message(b"still refused")])
    await log.close()
    assert acknowledged
    values = await read_values(tmp_path / "d")
    assert values[: len(acknowledged)] == [payload(i) for i in range(len(acknowledged))]


async def test_second_writer_is_refused_but_read_only_may_look(tmp_path: Path) -> None:
    root = tmp_path / "d"
    log = await FileLog.open(root)
    await log.create_topic("t", 1)
    await log.append("t", 0, [Message(b"one")])
    with pytest.raises(LogError, match="in use"):
        await FileLog.open(root)
    viewer = await FileLog.open(root, read_only=True)
    assert [r.value for r in await viewer.read("t", 0, 0)] == [b"one"]
    with pytest.raises(LogError, match="read-only"):
        await viewer.append("t", 0, [Message(b"no")])
    await viewer.close()
    await log.close()


async def test_read_only_open_does_not_repair(tmp_path: Path) -> None:
    root = tmp_path / "d"
    await write_batches(root, 2)
    [segment] = segments_of(root)
    torn = segment.read_bytes()[:-3]
    segment.write_bytes(torn)
    viewer = await FileLog.open(root, read_only=True)
    assert len(await viewer.read("t", 0, 0, max_records=100)) == 3
    await viewer.close()
    assert segment.read_bytes() == torn


async def test_interval_and_never_policies_keep_records_across_close(tmp_path: Path) -> None:
    for policy in ["interval:5", "never"]:
        root = tmp_path / policy.replace(":", "-")
        log = await FileLog.open(root, fsync=policy)
        await log.create_topic("t", 1)
        for index in range(20):
            await log.append("t", 0, [Message(payload(index))])
        await log.close()
        assert await read_values(root) == [payload(i) for i in range(20)]


async def test_timestamps_come_from_the_log_clock_and_never_go_back(tmp_path: Path) -> None:
    ticks = iter([1000, 900, 1500, 1400])
    log = await FileLog.open(tmp_path / "d", clock=lambda: next(ticks))
    await log.create_topic("t", 1)
    stamps = [(await log.append("t", 0, [Message(b"x")])).timestamp_ms for _ in range(4)]
    assert stamps == [1000, 1000, 1500, 1500]
    assert [r.timestamp_ms for r in await log.read("t", 0, 0)] == stamps
    await log.close()


async def test_interrupted_topic_creation_is_cleared_on_open(tmp_path: Path) -> None:
    root = tmp_path / "d"
    log = await FileLog.open(root)
    await log.create_topic("t", 1)
    await log.close()
    (root / "topics" / "half.creating" / "0").mkdir(parents=True)
    (root / "topics" / "deleted").mkdir()
    log = await FileLog.open(root)
    assert [t.name for t in log.topics()] == ["t"]
    await log.close()
    assert sorted(p.name for p in (root / "topics").iterdir()) == ["t"]
