"""Time travel, offline: `cut_at_time`, `log_time_at`, `find_command`, and `rebuild` to any cut.

The central property: the state rebuilt to a cut (from zero, or from any usable snapshot) has the
digests the live state had when it stood at that cut.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from commands import Caller, CommandProducer, Envelope, EventAppend, KvPut, RunBegin, stamp
from eventlog.memory import MemoryLog
from eventlog.records import Message
from projections.catalog import new_state
from projections.engine import Engine
from projections.snapshot import list_snapshots, write_snapshot
from projections.timetravel import TimeTravelError, cut_at_time, find_command, log_time_at, rebuild
from tests.projections.workload import random_workload

pytestmark = pytest.mark.anyio

PARTITIONS = 4


class SteppingClock:
    """A log clock the test moves by hand."""

    def __init__(self, now_ms: int = 1_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


async def feed(log: MemoryLog, envelopes: Sequence[Envelope], chunk: int = 150) -> None:
    producer = CommandProducer(log, "main")
    for start in range(0, len(envelopes), chunk):
        await producer.submit_many(envelopes[start : start + chunk])


async def test_cut_at_time_is_the_first_offset_stamped_later_per_partition() -> None:
    clock = SteppingClock()
    log = MemoryLog(clock=clock)
    await log.create_topic("t", 3)
    rng = random.Random(5)
    stamps: list[list[int]] = [[], [], []]
    for _ in range(300):
        clock.now_ms += rng.choice([0, 0, 1, 2, 7])
        partition = rng.randrange(3)
        result = await log.append("t", partition, [Message(b"x")])
        stamps[partition].append(result.timestamp_ms)
    assert not stamps[2] or stamps[2] == sorted(stamps[2])
    for time_ms in [0, 999, 1_000, *rng.sample(range(1_000, clock.now_ms + 5), 80), clock.now_ms, 10**13]:
        expected = [sum(1 for stamp in part if stamp <= time_ms) for part in stamps]
        assert await cut_at_time(log, "t", time_ms) == expected, time_ms


async def test_cut_at_time_and_log_time_on_an_empty_and_a_branch_topic() -> None:
    clock = SteppingClock(50)
    log = MemoryLog(clock=clock)
    await log.create_topic("t", 2)
    assert await cut_at_time(log, "t", 10**12) == [0, 0]
    assert await log_time_at(log, "t", [0, 0]) == 0
    for step in range(6):
        clock.now_ms = 100 + 10 * step
        await log.append("t", step % 2, [Message(b"x")])  # p0 stamps 100, 120, 140; p1 110, 130, 150
    await log.create_branch("b", "t", [2, 1])
    clock.now_ms = 200
    await log.append("b", 1, [Message(b"y")])
    assert await cut_at_time(log, "b", 125) == [2, 1]
    assert await cut_at_time(log, "b", 199) == [2, 1]
    assert await cut_at_time(log, "b", 200) == [2, 2]
    assert await cut_at_time(log, "t", 199) == [3, 3]
    assert await log_time_at(log, "t", [1, 0]) == 100
    assert await log_time_at(log, "t", [2, 3]) == 150
    assert await log_time_at(log, "b", [2, 2]) == 200


async def test_find_command_finds_the_first_record_of_a_command_stamped_then() -> None:
    clock = SteppingClock(1_000)
    log = MemoryLog(clock=clock)
    await log.create_topic("main", 1)
    producer = CommandProducer(log, "main")
    caller = Caller(tenant="acme", agent_id="a")
    await producer.submit(stamp(RunBegin(), caller, run_id="r"))
    events = [stamp(EventAppend(event_type="step", payload=i), caller, run_id="r") for i in range(6)]
    placed = []
    for index, envelope in enumerate(events):
        clock.now_ms = 1_000 + index // 2  # two events per millisecond
        placed.append(await producer.submit(envelope))
    clock.now_ms = 2_000
    retry = await producer.submit(events[3])  # a retry lands later with the same command id
    assert retry.offset > placed[3].offset
    for envelope, submitted in zip(events, placed, strict=True):
        found = await find_command(log, "main", 0, envelope.command_id, submitted.timestamp_ms)
        assert found == submitted.offset
    # A wrong time still finds it (the fallback scans the partition); an unknown command is None.
    assert await find_command(log, "main", 0, events[5].command_id, 1_000) == placed[5].offset
    assert await find_command(log, "main", 0, "no-such-command", 1_001) is None


async def test_rebuild_at_random_cuts_equals_the_live_state_at_those_cuts(tmp_path: Path) -> None:
    log = MemoryLog()
    await log.create_topic("main", PARTITIONS)
    await feed(log, random_workload(4_000, seed=21))
    ends = await log.end_offsets("main")
    rng = random.Random(3)
    # The live engine advances through random, per-partition uneven cuts; capture digests at each.
    live = Engine(log, "main", new_state(PARTITIONS))
    captured: list[tuple[list[int], dict[str, str]]] = [([0] * PARTITIONS, live.state.digests())]
    cut = [0] * PARTITIONS
    for step in range(12):
        cut = [min(end, offset + rng.randrange(0, end // 6 + 2)) for offset, end in zip(cut, ends, strict=True)]
        if step == 11:
            cut = list(ends)
        await live.catch_up(dict(enumerate(cut)))
        assert live.applied == cut
        captured.append((list(cut), live.state.digests()))
        if step == 5:
            write_snapshot(tmp_path, "main", live.state)
    [snapshot] = list_snapshots(tmp_path, "main")
    for cut, digests in rng.sample(captured, len(captured)):
        reports: list[tuple[int, int]] = []

        def report(done: int, total: int, reports: list[tuple[int, int]] = reports) -> None:
            reports.append((done, total))

        state = await rebuild(log, "main", cut, tmp_path, report)
        assert state.applied == cut
        assert state.digests() == digests, cut
        assert reports[-1] == (sum(cut), sum(cut))
        usable = all(s <= c for s, c in zip(snapshot.cut, cut, strict=True))
        assert reports[0][0] == (sum(snapshot.cut) if usable else 0)
        from_zero = await rebuild(log, "main", cut)
        assert from_zero.digests() == digests


async def test_rebuild_matches_a_tailing_live_engine_captured_while_the_workload_is_fed() -> None:
    log = MemoryLog()
    await log.create_topic("main", PARTITIONS)
    live = Engine(log, "main", new_state(PARTITIONS))
    live.start()
    workload = random_workload(3_000, seed=9)
    captured: list[tuple[list[int], dict[str, str]]] = []
    try:
        for start in range(0, len(workload), 500):
            await feed(log, workload[start : start + 500])
            end = await log.end_offsets("main")
            assert await live.wait_for(dict(enumerate(end)), 60)
            captured.append((live.applied, live.state.digests()))
    finally:
        await live.stop()
    for cut, digests in captured:
        assert (await rebuild(log, "main", cut)).digests() == digests


async def test_a_branch_rebuild_may_start_from_an_ancestor_snapshot_below_its_fork_cut(tmp_path: Path) -> None:
    log = MemoryLog()
    await log.create_topic("main", PARTITIONS)
    await feed(log, random_workload(1_500, seed=4))
    middle = await log.end_offsets("main")
    write_snapshot(tmp_path, "main", await rebuild(log, "main", middle))
    await feed(log, random_workload(600, seed=5)[-300:])
    fork = await log.end_offsets("main")
    await log.create_branch("branch.a", "main", fork)
    await log.create_branch("branch.b", "branch.a", fork)
    caller = Caller(tenant="acme", agent_id="x")
    await CommandProducer(log, "branch.b").submit(stamp(KvPut(key="only-b", value=1), caller, namespace="n"))
    end = await log.end_offsets("branch.b")
    reports: list[int] = []
    state = await rebuild(log, "branch.b", end, tmp_path, lambda done, total: reports.append(done))
    assert reports[0] == sum(middle)
    assert state.digests() == (await rebuild(log, "branch.b", end)).digests()
    # Below the snapshot's cut on one partition, the snapshot is of no use.
    early = [0, *middle[1:]]
    reports.clear()
    await rebuild(log, "branch.b", early, tmp_path, lambda done, total: reports.append(done))
    assert reports[0] == 0


async def test_rebuild_skips_a_corrupt_snapshot_and_refuses_cuts_that_do_not_fit(tmp_path: Path) -> None:
    log = MemoryLog()
    await log.create_topic("main", 2)
    await feed(log, random_workload(300, seed=1))
    end = await log.end_offsets("main")
    info = write_snapshot(tmp_path, "main", await rebuild(log, "main", end))
    body = info.path / "state.bin"
    data = bytearray(body.read_bytes())
    data[-10] ^= 0xFF
    body.write_bytes(bytes(data))
    reports: list[int] = []
    state = await rebuild(log, "main", end, tmp_path, lambda done, total: reports.append(done))
    assert reports[0] == 0
    assert state.digests() == info.digests
    with pytest.raises(TimeTravelError, match="2 partitions"):
        await rebuild(log, "main", [0])
    with pytest.raises(TimeTravelError, match="outside"):
        await rebuild(log, "main", [end[0] + 1, 0])
    with pytest.raises(TimeTravelError, match="outside"):
        await rebuild(log, "main", [-1, 0])
