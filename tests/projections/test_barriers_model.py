"""Write barriers in the engine: denials are deterministic (live = rebuild from zero = snapshot + tail)
and change no read model; keys written by each command kind are what the barrier judges."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands import BarrierSet, Caller, CommandProducer, KvBatchPut, KvItem, KvPut, StateCas, stamp
from eventlog.memory import MemoryLog
from projections.barriers import BarriersModel, written_keys
from projections.catalog import new_state
from projections.engine import Engine
from projections.records import RecordsModel
from projections.snapshot import load_snapshot, write_snapshot
from projections.timetravel import rebuild

pytestmark = pytest.mark.anyio

PARTITIONS = 4


async def test_denials_replay_identically_and_change_no_model(tmp_path: Path) -> None:
    log = MemoryLog()
    await log.create_topic("main", PARTITIONS)
    producer = CommandProducer(log, "main")
    admin, tool, rogue = Caller("t", "ops"), Caller("t", "bot", "search"), Caller("t", "bot", "shell")
    await producer.submit(stamp(BarrierSet(tools={"search": ["ok/"]}), admin, namespace="n", command_id="b1"))
    live = Engine(log, "main", new_state(PARTITIONS))
    await live.catch_up()
    half = await log.end_offsets("main")
    snapshot = write_snapshot(tmp_path, "main", live.state)
    before = {k: v for k, v in live.state.digests().items() if k != "outcomes"}
    for index in range(20):
        caller = tool if index % 2 else rogue
        key = f"ok/{index}" if index % 3 else f"no/{index}"
        await producer.submit(stamp(KvPut(key=key, value=index), caller, namespace="n", command_id=f"w{index}"))
    await live.catch_up()
    barriers = live.state.model("barriers")
    assert isinstance(barriers, BarriersModel)
    denied = [d.command_id for d in barriers.denials("t")]
    allowed = [f"w{i}" for i in range(20) if i % 2 and i % 3]
    assert sorted(denied) == sorted(f"w{i}" for i in range(20) if f"w{i}" not in allowed)
    records = live.state.model("records")
    assert isinstance(records, RecordsModel)
    present = [f"w{i}" for i in range(20) if records.get("t", "n", f"ok/{i}" if i % 3 else f"no/{i}", 0) is not None]
    assert present == allowed  # denied writes changed nothing
    end = await log.end_offsets("main")
    assert half != end
    from_zero = await rebuild(log, "main", end)
    assert from_zero.digests() == live.state.digests()
    assert from_zero.chain == live.state.chain  # the hash-chain heads too
    tail = Engine(log, "main", load_snapshot(snapshot))
    await tail.catch_up()
    assert tail.state.digests() == live.state.digests()
    assert tail.state.chain == live.state.chain
    assert {k: v for k, v in live.state.digests().items() if k != "outcomes"} != before


def test_written_keys_of_each_command_kind() -> None:
    caller = Caller("t")
    put = stamp(KvPut(key="a", value=1), caller, namespace="n")
    batch = stamp(KvBatchPut(items=[KvItem(key="b", value=1), KvItem(key="a", value=2)]), caller, namespace="n")
    cas = stamp(StateCas(name="s", expected_version=0, value=1), caller, namespace="n")
    assert written_keys(put) == {"n": ("a",)}
    assert written_keys(batch) == {"n": ("a", "b")}
    assert written_keys(cas) == {"n": ("s",)}
