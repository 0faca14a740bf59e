"""Export of offset ranges as JSON lines, import into a fresh log with the exported timestamps, equal digests."""

from __future__ import annotations

import base64
import importlib.util
import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest

from commands import Caller, CommandProducer, EventAppend, KvPut, RunBegin, encode_message, stamp
from eventlog.base import EventLog
from eventlog.file import FileLog
from eventlog.memory import MemoryLog
from eventlog.records import Message, Record
from projections.export import (
    ExportError,
    ImportClock,
    export_lines,
    import_lines,
    import_to_directory,
    parse_line,
    record_line,
    run_commands,
    run_event_lines,
    write_parquet,
)
from projections.runs import RunsModel
from projections.timetravel import rebuild
from tests.projections.workload import random_workload

pytestmark = pytest.mark.anyio

PARTITIONS = 4
START_MS = 1_700_000_000_000


def ticking_clock(step_ms: int = 7) -> Callable[[], int]:
    """A log clock that moves `step_ms` on every append (so log times, TTLs and hashes vary)."""
    counter = itertools.count()
    return lambda: START_MS + step_ms * next(counter)


def next_cut(trailer: dict[str, object]) -> list[int]:
    """The cut a truncated export's trailer names."""
    text = trailer["next_from"]
    assert isinstance(text, str)
    return [int(part.split(":")[1]) for part in text.split(",")]


async def collect(lines: AsyncIterator[bytes]) -> list[bytes]:
    """Every line of an export stream."""
    return [line async for line in lines]


async def all_records(log: EventLog, topic: str = "main") -> list[Record]:
    """Every record of `topic`, partition by partition."""
    found: list[Record] = []
    for partition, end in enumerate(await log.end_offsets(topic)):
        if end:
            found.extend(await log.read(topic, partition, 0, max_records=end))
    return found


async def filled_file_log(root: Path, commands: int = 1_500) -> FileLog:
    """A file log whose topic `main` holds a mixed workload, appended in small batches on a ticking clock."""
    log = await FileLog.open(root, fsync="never", clock=ticking_clock())
    await log.create_topic("main", PARTITIONS)
    producer = CommandProducer(log, "main")
    workload = random_workload(commands, seed=11)
    for start in range(0, len(workload), 40):
        await producer.submit_many(workload[start : start + 40])
    return log


async def test_export_then_import_into_a_fresh_log_rebuilds_to_equal_digests(tmp_path: Path) -> None:
    original = await filled_file_log(tmp_path / "original")
    try:
        lines = await collect(export_lines(original, "main"))
        ends = await original.end_offsets("main")
        expected = await rebuild(original, "main", ends)
        records = await all_records(original)
    finally:
        await original.close()
    header = parse_line(lines[0])
    assert header == {
        "agentlog_export": 1,
        "topic": "main",
        "partitions": PARTITIONS,
        "from": [0] * PARTITIONS,
        "to": ends,
        "tenant": None,
    }
    assert len(lines) == 1 + sum(ends)
    export_file = tmp_path / "main.jsonl"
    export_file.write_bytes(b"".join(lines))

    with export_file.open("rb") as stream:
        result = await import_to_directory(tmp_path / "imported", stream)
    assert (result.topic, result.partitions, result.records, result.offsets_preserved) == (
        "main",
        PARTITIONS,
        ends,
        True,
    )
    imported = await FileLog.open(tmp_path / "imported", read_only=True)
    try:
        assert await imported.end_offsets("main") == ends
        assert await all_records(imported) == records  # byte for byte, timestamps included
        rebuilt = await rebuild(imported, "main", ends)
    finally:
        await imported.close()
    assert rebuilt.digests() == expected.digests()
    runs = expected.model("runs")
    assert isinstance(runs, RunsModel)
    assert runs.list_runs("acme")  # the workload has runs with hash-chained events: their hashes hold log times


async def test_an_import_that_would_restamp_is_refused(tmp_path: Path) -> None:
    original = await filled_file_log(tmp_path / "original", commands=200)
    try:
        lines = await collect(export_lines(original, "main"))
    finally:
        await original.close()
    restamping = MemoryLog()  # its own wall clock, not the import clock
    with pytest.raises(ExportError, match="does not take the import clock"):
        await import_lines(restamping, ImportClock(), lines)


async def test_undecodable_and_non_canonical_records_round_trip_byte_exact() -> None:
    log = MemoryLog(clock=ticking_clock())
    await log.create_topic("main", 1)
    envelope = stamp(KvPut(key="k", value={"b": 1, "a": [1.5, "é"]}), Caller("acme"), namespace="notes")
    canonical = encode_message(envelope)
    spaced = Message(
        orjson.dumps(orjson.loads(canonical.value), option=orjson.OPT_INDENT_2), canonical.key, canonical.headers
    )
    garbage = Message(b"\xff\x00not json", b"\xfe\xff", (("v", b"1"), ("blob", b"\x80\x81")))
    await log.append("main", 0, [canonical])
    await log.append("main", 0, [spaced, garbage])
    lines = [parse_line(line) for line in await collect(export_lines(log, "main", header=False))]
    assert "value_base64" not in lines[0]
    assert lines[0]["command"]["command"] == {"type": "kv.put", "key": "k", "value": {"b": 1, "a": [1.5, "é"]}}
    assert lines[0]["headers"] == [["v", "1"], ["type", "kv.put"]]
    assert "command" in lines[1]
    assert base64.b64decode(lines[1]["value_base64"]) == spaced.value
    assert "command" not in lines[2]
    assert lines[2]["error"].startswith("malformed")
    assert lines[2]["key"] == {"base64": base64.b64encode(b"\xfe\xff").decode()}

    clock = ImportClock()
    fresh = MemoryLog(clock=clock)
    result = await import_lines(fresh, clock, [orjson.dumps(line) for line in lines], partitions=1)
    assert result.records == [3]
    assert await all_records(fresh) == await all_records(log)


async def test_a_range_and_a_tenant_export_only_what_they_name() -> None:
    log = MemoryLog(clock=ticking_clock())
    await log.create_topic("main", PARTITIONS)
    producer = CommandProducer(log, "main")
    for index in range(20):
        tenant = "acme" if index % 2 else "globex"
        await producer.submit(stamp(KvPut(key=f"k{index}", value=index), Caller(tenant), namespace=f"ns{index % 3}"))
    ends = await log.end_offsets("main")
    start = [min(1, end) for end in ends]
    lines = [parse_line(line) for line in await collect(export_lines(log, "main", start, ends))]
    assert lines[0]["from"] == start
    assert len(lines) - 1 == sum(ends) - sum(start)
    assert all(line["offset"] >= 1 for line in lines[1:])

    acme = [parse_line(line) for line in await collect(export_lines(log, "main", tenant="acme", header=False))]
    assert len(acme) == 10
    assert {line["command"]["tenant"] for line in acme} == {"acme"}
    limited = [parse_line(line) for line in await collect(export_lines(log, "main", header=False, limit=3))]
    assert len(limited) == 4
    trailer = limited[-1]
    assert trailer["truncated"] is True
    rest = [parse_line(line) for line in await collect(export_lines(log, "main", next_cut(trailer), header=False))]
    everything = [parse_line(line) for line in await collect(export_lines(log, "main", header=False))]
    assert limited[:3] + rest == everything
    clock = ImportClock()
    partial = MemoryLog(clock=clock)
    imported = await import_lines(partial, clock, [orjson.dumps(line) for line in limited], partitions=PARTITIONS)
    assert sum(imported.records) == 3
    record = (await all_records(log))[0]
    assert record_line(record, tenant="nobody") is None


async def test_import_refuses_a_used_topic_and_bad_lines() -> None:
    clock = ImportClock()
    log = MemoryLog(clock=clock)
    await log.create_topic("main", 2)
    await log.append("main", 0, [Message(b"x")])
    header = orjson.dumps({"agentlog_export": 1, "topic": "main", "partitions": 2, "from": [0, 0], "to": [0, 0]})
    with pytest.raises(ExportError, match="already holds records"):
        await import_lines(log, clock, [header])
    with pytest.raises(ExportError, match="exists with 2 partitions; the export has 3"):
        await import_lines(log, clock, [header.replace(b'"partitions":2', b'"partitions":3')])

    def line(partition: int, offset: int, timestamp_ms: int) -> bytes:
        value = base64.b64encode(b"v").decode()
        return orjson.dumps(
            {"partition": partition, "offset": offset, "timestamp_ms": timestamp_ms, "value_base64": value}
        )

    fresh_header = header.replace(b'"topic":"main"', b'"topic":"other"')
    cases = [
        ([fresh_header, line(0, 0, 5), line(0, 1, 4)], "timestamp 4 before 5"),
        ([fresh_header, line(0, 1, 5), line(0, 1, 5)], "offset 1 after 1"),
        ([fresh_header, line(7, 0, 5)], "partition 7"),
        ([fresh_header, b"[1, 2]"], "not a JSON object"),
        ([fresh_header, b'{"partition": 0, "timestamp_ms": 1}'], "neither"),
        ([fresh_header, fresh_header], "second header"),
        ([b'{"agentlog_export": 2, "topic": "x", "partitions": 1}'], "format 2"),
        ([line(0, 0, 1)], "no header"),
    ]
    for index, (lines, message) in enumerate(cases):
        target = MemoryLog(clock=clock)
        with pytest.raises(ExportError, match=message):
            await import_lines(target, clock, lines, topic=f"t{index}")


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None, reason="pyarrow is installed")
async def test_parquet_without_pyarrow_says_how_to_get_it(tmp_path: Path) -> None:
    log = MemoryLog()
    await log.create_topic("main", 1)
    with pytest.raises(ExportError, match="pip install pyarrow"):
        await write_parquet(export_lines(log, "main"), tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


async def test_parquet_export_reads_back(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    log = MemoryLog(clock=ticking_clock())
    await log.create_topic("main", 2)
    producer = CommandProducer(log, "main")
    await producer.submit_many([stamp(KvPut(key=f"k{i}", value=i), Caller("acme"), namespace="n") for i in range(5)])
    await log.append("main", 1, [Message(b"\xff")])
    assert await write_parquet(export_lines(log, "main"), tmp_path / "out.parquet") == 6
    table = pq.read_table(tmp_path / "out.parquet")
    rows = table.to_pylist()
    assert [row["type"] for row in rows].count("kv.put") == 5
    assert {row["tenant"] for row in rows if row["type"]} == {"acme"}
    assert b"agentlog_export" in table.schema.metadata


async def test_run_commands_span_partitions_in_log_time_order_and_run_events_export() -> None:
    log = MemoryLog(clock=ticking_clock())
    await log.create_topic("main", PARTITIONS)
    producer = CommandProducer(log, "main")
    acme = Caller("acme", agent_id="a")
    await producer.submit(stamp(KvPut(key="before", value=0), acme, namespace="notes", run_id="r1"))
    await producer.submit(stamp(RunBegin(name="r1"), acme, run_id="r1"))
    await producer.submit(stamp(EventAppend(event_type="step", payload=1), acme, run_id="r1"))
    await producer.submit(stamp(KvPut(key="k", value=1), acme, namespace="notes", run_id="r1"))
    await producer.submit(stamp(KvPut(key="k", value=2), acme, namespace="other", run_id="r2"))
    await producer.submit(stamp(KvPut(key="k", value=3), Caller("globex"), namespace="notes", run_id="r1"))
    await producer.submit(stamp(EventAppend(event_type="step", payload=2), acme, run_id="r1"))
    ends = await log.end_offsets("main")
    found, truncated = await run_commands(log, "main", "acme", "r1", since_ms=START_MS, until=ends, limit=100)
    assert not truncated
    assert [envelope.type for _, envelope in found] == ["kv.put", "run.begin", "event.append", "kv.put", "event.append"]
    stamps = [record.timestamp_ms for record, _ in found]
    assert stamps == sorted(stamps)
    shortened, truncated = await run_commands(log, "main", "acme", "r1", since_ms=START_MS, until=ends, limit=2)
    assert (len(shortened), truncated) == (2, True)

    state = await rebuild(log, "main", ends)
    runs = state.model("runs")
    assert isinstance(runs, RunsModel)
    rows = list(run_event_lines(runs, "acme", "r1", page=1))
    assert [(row["seq"], row["type"], row["payload"]) for row in rows] == [(1, "step", 1), (2, "step", 2)]
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    assert list(run_event_lines(runs, "acme", "missing")) == []
