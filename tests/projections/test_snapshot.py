"""Snapshots: the versioned msgpack/.npy format, its checks, the full command mix through snapshot + tail,
old pickle snapshots refused (never unpickled), and a node snapshotting while it serves writes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import pickle
import struct
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from commands import Caller, CommandProducer, Envelope, KvPut, decode_record, stamp
from eventlog.memory import MemoryLog
from eventlog.records import Record
from projections.catalog import new_state
from projections.engine import Engine
from projections.snapshot import SnapshotError, list_snapshots, load_snapshot, write_snapshot
from projections.timetravel import rebuild
from query_api.node.node import Node
from query_api.settings import Settings
from tests.projections.workload import full_mix_workload

pytestmark = pytest.mark.anyio

PARTITIONS = 4
EVERY_TYPE = {
    "collection.create",
    "event.append",
    "kv.batch_put",
    "kv.clear",
    "kv.delete",
    "kv.expire",
    "kv.put",
    "lock.acquire",
    "lock.release",
    "lock.renew",
    "ns.config",
    "run.begin",
    "run.end",
    "state.cas",
    "trace.record",
    "txn",
    "vector.upsert",
    *("task.enqueue", "task.claim", "task.complete", "task.fail"),
    *("channel.create", "channel.subscribe", "channel.share", "agent.register", "agent.heartbeat"),
    *("proposal.create", "proposal.vote"),
}


async def feed(log: MemoryLog, envelopes: list[Envelope], chunk: int = 200) -> None:
    producer = CommandProducer(log, "main")
    for start in range(0, len(envelopes), chunk):
        await producer.submit_many(envelopes[start : start + chunk])


async def statuses_by_type(log: MemoryLog, engine: Engine) -> dict[str, Counter[str]]:
    """Per command type, how many records applied and how many were rejected."""
    found: dict[str, Counter[str]] = {}
    for partition, end in enumerate(await log.end_offsets("main")):
        for record in await log.read("main", partition, 0, max_records=end):
            envelope = decode_record(record)
            outcome = engine.state.outcome(partition, envelope)
            assert outcome is not None
            found.setdefault(envelope.type, Counter())[outcome.status] += 1
    return found


async def test_full_command_mix_live_rebuild_and_snapshot_tail_agree(tmp_path: Path) -> None:
    log = MemoryLog()
    await log.create_topic("main", PARTITIONS)
    workload = full_mix_workload(6_000, seed=21)
    live = Engine(log, "main", new_state(PARTITIONS))
    live.start()
    await feed(log, workload[:3_000])
    middle = await log.end_offsets("main")
    assert await live.wait_for(dict(enumerate(middle)), 300)
    async with live.paused():
        info = await asyncio.to_thread(write_snapshot, tmp_path, "main", live.state)
    assert info.digests == live.state.digests()
    await feed(log, workload[3_000:])
    end = await log.end_offsets("main")
    assert await live.wait_for(dict(enumerate(end)), 300)
    await live.stop()

    statuses = await statuses_by_type(log, live)
    assert set(statuses) == EVERY_TYPE
    assert [name for name, counts in sorted(statuses.items()) if counts["applied"] == 0] == []
    assert sum(counts["rejected"] for counts in statuses.values()) > 0

    from_zero = Engine(log, "main", new_state(PARTITIONS))
    await from_zero.catch_up()
    assert from_zero.state.digests() == live.state.digests()

    [listed] = list_snapshots(tmp_path, "main")
    assert listed.cut == tuple(middle)
    restored = Engine(log, "main", load_snapshot(listed, verify_digests=True))
    assert restored.applied == middle
    await restored.catch_up()
    assert restored.state.digests() == live.state.digests()
    assert restored.state.outcomes == live.state.outcomes


async def test_snapshot_layout_names_format_cut_checksums_and_digests(tmp_path: Path) -> None:
    log = MemoryLog()
    await log.create_topic("main", PARTITIONS)
    await feed(log, full_mix_workload(800, seed=5))
    state = await rebuild(log, "main", await log.end_offsets("main"))
    info = write_snapshot(tmp_path, "main", state)
    manifest = json.loads((info.path / "manifest.json").read_text())
    assert manifest["format"] == 2
    assert manifest["cut"] == state.applied
    assert manifest["digests"] == state.digests()
    assert manifest["models"] == [model.name for model in state.models]
    names = sorted(path.name for path in info.path.iterdir())
    assert names == sorted([*manifest["files"], "manifest.json"])
    assert any(name.endswith(".npy") for name in names)  # the vector matrices
    assert not (info.path / "state.bin").read_bytes().startswith(b"\x80")  # not a pickle stream


@pytest.mark.parametrize("damage", ["array", "truncate", "code_version", "missing_file", "extra_section"])
async def test_a_snapshot_failing_any_check_is_refused_and_rebuild_falls_back(tmp_path: Path, damage: str) -> None:
    log = MemoryLog()
    await log.create_topic("main", PARTITIONS)
    await feed(log, full_mix_workload(800, seed=9))
    end = await log.end_offsets("main")
    expected = await rebuild(log, "main", end)
    info = write_snapshot(tmp_path, "main", expected)
    manifest_path = info.path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    if damage == "array":
        array = next(info.path.glob("*.npy"))
        data = bytearray(array.read_bytes())
        data[-1] ^= 0x01
        array.write_bytes(bytes(data))
    elif damage == "truncate":
        body = info.path / "state.bin"
        body.write_bytes(body.read_bytes()[:-7])
    elif damage == "code_version":
        manifest_path.write_text(json.dumps({**manifest, "code_version": "0"}))
    elif damage == "missing_file":
        next(info.path.glob("*.npy")).unlink()
    else:  # a consistent manifest over a state file with a section no model owns
        body = info.path / "state.bin"
        frame = msgspec.msgpack.encode(["nobody", [1]])
        data = body.read_bytes() + struct.pack("<I", len(frame)) + frame
        body.write_bytes(data)
        manifest["files"]["state.bin"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(SnapshotError):
        load_snapshot(info)
    state = await rebuild(log, "main", end, tmp_path)
    assert state.digests() == expected.digests()


_UNPICKLED: list[str] = []


def _record_unpickling(note: str) -> str:
    _UNPICKLED.append(note)
    return note


class _Tripwire:
    """Unpickling this calls `_record_unpickling`: proof that a loader ran pickle on a file."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (_record_unpickling, ("unpickled",))


def write_pickle_snapshot(directory: Path, cut: list[int]) -> Path:
    """A snapshot file in the old format: magic, header JSON, pickle body."""
    body = pickle.dumps(_Tripwire())
    header = json.dumps(
        {"format": 1, "code_version": "2", "topic": "main", "cut": cut, "digests": {}, "body_sha256": ""}
    ).encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"snapshot-{sum(cut):020d}.snap"
    path.write_bytes(b"ALSNAP1\n" + struct.pack("<I", len(header)) + header + body)
    return path


async def test_an_old_pickle_snapshot_is_refused_with_a_warning_and_the_node_rebuilds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    settings = Settings(log=f"file://{data}", fsync="never", partitions=PARTITIONS, sweep_interval_ms=0)
    node = await Node.start(settings)
    caller = Caller(tenant="t", agent_id="a")
    for index in range(50):
        await node.execute(stamp(KvPut(key=f"k{index}", value=index), caller, namespace="ns"))
    live_digests = node.state.digests()
    cut = node.engine.applied
    await node.stop()
    snapshot_dir = settings.resolved_snapshot_dir()
    assert snapshot_dir is not None
    legacy = write_pickle_snapshot(snapshot_dir / "main", cut)

    _UNPICKLED.clear()
    with caplog.at_level(logging.WARNING, logger="agentlog.snapshot"):
        assert list_snapshots(snapshot_dir, "main") == []
        restarted = await Node.start(settings)
    try:
        assert restarted.state.digests() == live_digests
        assert restarted.engine.applied == cut
    finally:
        await restarted.stop()
    assert _UNPICKLED == []
    assert legacy.exists()
    assert any("pickle format is no longer loaded" in message for message in caplog.messages)


async def test_a_node_snapshots_in_a_worker_while_writes_go_on(tmp_path: Path) -> None:
    settings = Settings(
        log=f"file://{tmp_path / 'data'}", fsync="never", partitions=PARTITIONS, sweep_interval_ms=0, snapshot_every=0
    )
    node = await Node.start(settings)
    try:
        await feed(node.log, full_mix_workload(2_000, seed=3))
        assert await node.engine.wait_for(dict(enumerate(await node.log.end_offsets("main"))), 60)
        caller = Caller(tenant="t", agent_id="w")
        writes = [node.execute(stamp(KvPut(key=f"w{n}", value=n), caller, namespace="ns")) for n in range(200)]
        path, *results = await asyncio.gather(node.snapshot(), *writes)
        assert path is not None
        assert all(result.outcome.status == "applied" for result in results)
        [info] = list_snapshots(node.snapshot_dir or tmp_path, "main")
        restored = Engine(node.log, "main", load_snapshot(info, verify_digests=True))
        await restored.catch_up()
        assert restored.state.digests() == node.state.digests()
    finally:
        await node.stop()


async def test_a_node_applies_its_own_writes_without_the_tail_and_agrees_with_a_rebuild(tmp_path: Path) -> None:
    settings = Settings(
        log=f"file://{tmp_path / 'data'}", fsync="never", partitions=PARTITIONS, sweep_interval_ms=0, snapshot_every=0
    )
    node = await Node.start(settings)
    applied_by_writer: list[bool] = []
    apply_appended = node.engine.apply_appended

    def spy(record: Record) -> bool:
        applied_by_writer.append(apply_appended(record))
        return applied_by_writer[-1]

    node.engine.apply_appended = spy  # type: ignore[method-assign]
    try:
        caller = Caller(tenant="t", agent_id="w")
        alone = await node.execute(stamp(KvPut(key="solo", value=1), caller, namespace="ns"))
        assert alone.outcome.status == "applied"
        assert applied_by_writer == [True]
        writes = [
            node.execute(stamp(KvPut(key=f"k{n % 7}", value=n), caller, namespace=f"ns{n % 5}")) for n in range(300)
        ]
        results = await asyncio.gather(*writes)
        assert {result.outcome.status for result in results} == {"applied"}
        assert applied_by_writer.count(True) > 1
        assert await node.engine.wait_for(dict(enumerate(await node.log.end_offsets("main"))), 30)
        rebuilt = Engine(node.log, "main", new_state(PARTITIONS))
        await rebuilt.catch_up()
        assert rebuilt.state.digests() == node.state.digests()
    finally:
        await node.stop()
