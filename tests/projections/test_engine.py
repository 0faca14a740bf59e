"""Invariants 3 and 4: live state, a rebuild from zero and snapshot + tail have equal digests at equal cuts;
a retried command_id changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from commands import Caller, CommandProducer, KvPut, stamp
from eventlog.file import FileLog
from eventlog.memory import MemoryLog
from eventlog.records import Message
from projections.catalog import new_state
from projections.engine import Engine, outcome_key
from projections.records import RecordsModel
from projections.snapshot import SnapshotError, list_snapshots, load_snapshot, write_snapshot
from tests.projections.workload import random_workload

pytestmark = pytest.mark.anyio

PARTITIONS = 4


async def feed(log: MemoryLog | FileLog, count: int, seed: int, chunk: int = 200) -> None:
    producer = CommandProducer(log, "main")
    workload = random_workload(count, seed)
    for start in range(0, len(workload), chunk):
        await producer.submit_many(workload[start : start + chunk])


async def rebuilt(log: MemoryLog | FileLog, cut: list[int] | None = None) -> Engine:
    engine = Engine(log, "main", new_state(PARTITIONS))
    await engine.catch_up(dict(enumerate(cut)) if cut is not None else None)
    return engine


@pytest.mark.parametrize("commands_per_half", [3_000, pytest.param(50_000, marks=pytest.mark.slow, id="100k-commands")])
async def test_live_rebuild_and_snapshot_tail_agree(tmp_path: Path, commands_per_half: int) -> None:
    log = MemoryLog()
    await log.create_topic("main", PARTITIONS)
    live = Engine(log, "main", new_state(PARTITIONS))
    live.start()
    await feed(log, commands_per_half, seed=7)
    middle = await log.end_offsets("main")
    assert await live.wait_for(dict(enumerate(middle)), 300)
    snapshot = write_snapshot(tmp_path, "main", live.state)
    middle_digests = live.state.digests()
    await feed(log, commands_per_half, seed=8)
    end = await log.end_offsets("main")
    assert await live.wait_for(dict(enumerate(end)), 300)
    await live.stop()

    from_zero = await rebuilt(log)
    assert from_zero.applied == end
    assert from_zero.state.digests() == live.state.digests()

    at_middle = await rebuilt(log, middle)
    assert at_middle.state.digests() == middle_digests == snapshot.digests

    [info] = list_snapshots(tmp_path, "main")
    restored = Engine(log, "main", load_snapshot(info, verify_digests=True))
    assert restored.applied == middle
    await restored.catch_up()
    assert restored.state.digests() == live.state.digests()
    outcomes = [o for part in live.state.outcomes for o in part.values()]
    assert {o.status for o in outcomes} == {"applied", "rejected"}


async def test_two_nodes_on_one_file_log_agree(tmp_path: Path) -> None:
    log = await FileLog.open(tmp_path / "data", fsync="never")
    await log.create_topic("main", PARTITIONS)
    await feed(log, 2_000, seed=11)
    first, second = await rebuilt(log), await rebuilt(log)
    assert first.state.digests() == second.state.digests()
    await log.close()
    reopened = await FileLog.open(tmp_path / "data")
    third = await rebuilt(reopened)
    assert third.state.digests() == first.state.digests()
    await reopened.close()


async def test_retried_command_id_applies_once() -> None:
    log = MemoryLog()
    await log.create_topic("main", PARTITIONS)
    producer = CommandProducer(log, "main")
    engine = Engine(log, "main", new_state(PARTITIONS))
    caller = Caller(tenant="t", agent_id="a")
    first = stamp(KvPut(key="k", value=1), caller, namespace="ns", command_id="cmd-1")
    retry = stamp(KvPut(key="k", value=1), caller, namespace="ns", command_id="cmd-1")
    other = stamp(KvPut(key="k", value=3), caller, namespace="ns", command_id="cmd-2")
    placed = [await producer.submit(e) for e in (first, retry, other)]
    await engine.catch_up()
    records = engine.state.model("records")
    assert isinstance(records, RecordsModel)
    view = records.get("t", "ns", "k", now_ms=0)
    assert view is not None
    assert (view.value, view.version) == (3, 2)
    assert engine.state.outcome(placed[0].partition, first) == engine.state.outcome(placed[1].partition, retry)
    before = engine.state.digests()
    await producer.submit(retry)
    await engine.catch_up()
    after = engine.state.digests()
    assert {k: v for k, v in after.items() if k != "outcomes"} == {k: v for k, v in before.items() if k != "outcomes"}


async def test_undecodable_records_are_counted_and_skipped() -> None:
    log = MemoryLog()
    await log.create_topic("main", PARTITIONS)
    await log.append("main", 0, [Message(b"not json", b"k", (("v", b"1"),)), Message(b"{}", b"k")])
    engine = Engine(log, "main", new_state(PARTITIONS))
    await engine.catch_up()
    assert engine.applied[0] == 2
    assert engine.state.undecodable[0] == 2


async def test_wait_for_times_out_when_the_cut_is_not_reached() -> None:
    log = MemoryLog()
    await log.create_topic("main", PARTITIONS)
    engine = Engine(log, "main", new_state(PARTITIONS))
    assert not await engine.wait_for({0: 1}, 0.05)
    engine.start()
    waiter = asyncio.create_task(engine.wait_for({0: 1}, 10))
    await log.append("main", 0, [Message(b"x", b"k", (("v", b"1"),))])
    assert await waiter
    await engine.stop()


async def test_a_damaged_snapshot_is_refused(tmp_path: Path) -> None:
    log = MemoryLog()
    await log.create_topic("main", PARTITIONS)
    await feed(log, 500, seed=3)
    engine = await rebuilt(log)
    info = write_snapshot(tmp_path, "main", engine.state)
    body = info.path / "state.bin"
    data = bytearray(body.read_bytes())
    data[-10] ^= 0xFF
    body.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="checksum"):
        load_snapshot(info)


async def test_outcomes_are_remembered_for_a_bounded_window(monkeypatch: pytest.MonkeyPatch) -> None:
    import projections.engine as engine_module

    monkeypatch.setattr(engine_module, "OUTCOMES_PER_PARTITION_MAX", 3)
    log = MemoryLog()
    await log.create_topic("main", 1)
    producer = CommandProducer(log, "main")
    caller = Caller(tenant="t")
    for index in range(5):
        await producer.submit(
            stamp(KvPut(key=f"k{index}", value=index), caller, namespace="ns", command_id=f"c{index}")
        )
    engine = Engine(log, "main", new_state(1))
    await engine.catch_up()
    assert list(engine.state.outcomes[0]) == [outcome_key("t", f"c{index}") for index in (2, 3, 4)]
    await producer.submit(stamp(KvPut(key="k0", value="again"), caller, namespace="ns", command_id="c0"))
    await engine.catch_up()
    records = engine.state.model("records")
    assert isinstance(records, RecordsModel)
    view = records.get("t", "ns", "k0", now_ms=0)
    assert view is not None
    assert (view.value, view.version) == ("again", 2)
