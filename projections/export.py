"""Export an offset range of a topic as JSON lines (or Parquet), import it into a fresh log, read a run's commands.

**Format** (`EXPORT_FORMAT` 1): UTF-8, one JSON object per line, streamable both ways.

- An optional first line, the header: `{"agentlog_export": 1, "topic": "main", "partitions": 8,
  "from": [0, ...], "to": [12, ...], "tenant": null}` (`tenant` names the one tenant kept, if filtered).
- Then one line per record, partition by partition, each in offset order: `{"partition": 0,
  "offset": 12, "timestamp_ms": 1700000000000, "key": "acme/notes", "headers": [["v", "1"],
  ["type", "kv.put"]], "command": {...}}`. `command` is the envelope exactly as the record stores it
  (canonical JSON: `tenant`, `run_id`, `command_id`, `command`, ...). A key or header value that is
  not UTF-8 is `{"base64": "..."}`. A record that does not decode as a command has `value_base64`
  and `error` instead of `command`; one whose bytes are not the canonical JSON of its envelope keeps
  `value_base64` beside `command`. So the value of every record can be rebuilt byte for byte.
- If a `limit` cut the export short, a last line `{"truncated": true, "next_from": "p:o,..."}` names
  the cut to export on from.

**Import and timestamps.** Projections fold in log time (the record timestamp): created/updated
times, TTL expiry, event `log_time_ms` (inside each event's hash). A log stamps its own time at
append, so a plain re-append would change all of them, and every digest with them. `import_lines`
therefore appends through a log opened with an `ImportClock`: before each batch (consecutive
records of one partition with one timestamp) the clock is set to that timestamp, so the log stamps
exactly the exported one. This works for the logs whose clock we own (embedded files, memory); the
import checks each append's stamp and refuses to go on if a log re-stamped it. Kafka stamps
`LogAppendTime` on the broker: an import there cannot keep timestamps (not offered here). Offsets
are dense in the new log: an export from offset 0 of every partition (unfiltered) lands at its
original offsets, so a rebuild of the import has the digests of the original at the same cut.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from commands import CommandError, Envelope, decode_record
from eventlog import limits as log_limits
from eventlog.base import EventLog
from eventlog.errors import TopicNotFoundError
from eventlog.records import Header, Message, Record
from eventlog.scan import scan
from projections.runs import RunsModel
from projections.timetravel import cut_at_time

__all__ = [
    "EXPORT_FORMAT",
    "ExportError",
    "ImportClock",
    "ImportResult",
    "dumps_line",
    "export_lines",
    "header_line",
    "import_lines",
    "import_to_directory",
    "iter_records",
    "message_of",
    "parse_line",
    "record_line",
    "run_commands",
    "run_event_lines",
    "write_parquet",
]

#: Version of the export line format, in the header's `agentlog_export` member.
EXPORT_FORMAT: Final = 1
#: Records one read of an export takes.
READ_BATCH_RECORDS: Final = 1_000
#: Most records and bytes in one batch an import appends.
IMPORT_BATCH_RECORDS: Final = 1_000
IMPORT_BATCH_BYTES: Final = 8 * 1024 * 1024
#: Rows per Parquet row group.
PARQUET_ROW_GROUP: Final = 10_000
#: How far before a run's begin the scan for its commands starts (clock skew between partitions' stampers).
RUN_SCAN_MARGIN_MS: Final = 60_000

_SORTED: Final = orjson.OPT_SORT_KEYS


class ExportError(ValueError):
    """A malformed export line or file, a missing optional dependency, or an import target that is not fresh."""


# -- lines ----------------------------------------------------------------------------------------


def header_line(
    topic: str, partitions: int, start: Sequence[int], end: Sequence[int], tenant: str | None = None
) -> dict[str, Any]:
    """The header object of an export of `topic` from cut `start` to cut `end` (exclusive)."""
    return {
        "agentlog_export": EXPORT_FORMAT,
        "topic": topic,
        "partitions": partitions,
        "from": list(start),
        "to": list(end),
        "tenant": tenant,
    }


def _text_or_base64(data: bytes | None) -> str | dict[str, str] | None:
    """UTF-8 bytes as a string, anything else as `{"base64": ...}`."""
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def _bytes_of(value: Any, what: str) -> bytes | None:
    """The bytes of a line's key or header value (a string or `{"base64": ...}`)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict) and isinstance(value.get("base64"), str):
        return base64.b64decode(value["base64"], validate=True)
    raise ExportError(f'{what} must be a string or {{"base64": ...}}, not {value!r}')


def record_line(record: Record, *, tenant: str | None = None) -> dict[str, Any] | None:
    """The export line of `record`; None when `tenant` is given and the record is not that tenant's command."""
    line: dict[str, Any] = {
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
        "key": _text_or_base64(record.key),
        "headers": [[name, _text_or_base64(value)] for name, value in record.headers],
    }
    try:
        envelope = decode_record(record)
    except CommandError as error:
        if tenant is not None:
            return None
        line["value_base64"] = base64.b64encode(record.value).decode("ascii")
        line["error"] = f"{error.code}: {error.detail}"
        return line
    if tenant is not None and envelope.tenant != tenant:
        return None
    stored = orjson.loads(record.value)
    line["command"] = stored
    if orjson.dumps(stored, option=_SORTED) != record.value:
        line["value_base64"] = base64.b64encode(record.value).decode("ascii")
    return line


def dumps_line(line: dict[str, Any]) -> bytes:
    """One line of the export: compact JSON and a newline."""
    return orjson.dumps(line) + b"\n"


def parse_line(data: bytes | str) -> dict[str, Any]:
    """The object of one export line; ExportError if it is not a JSON object."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise ExportError(f"export line is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise ExportError("export line is not a JSON object")
    return value


def message_of(line: dict[str, Any]) -> tuple[int, int, Message]:
    """`(partition, timestamp_ms, message)` of a record line: the message byte-exact as it was exported."""
    try:
        partition, timestamp_ms = line["partition"], line["timestamp_ms"]
        if not (type(partition) is int and partition >= 0 and type(timestamp_ms) is int and timestamp_ms >= 0):
            raise ExportError(f"bad partition or timestamp in line {line.get('offset')!r}")
        if "value_base64" in line:
            value = base64.b64decode(line["value_base64"], validate=True)
        elif isinstance(line.get("command"), dict):
            value = orjson.dumps(line["command"], option=_SORTED)
        else:
            raise ExportError(f"line at offset {line.get('offset')!r} has neither `command` nor `value_base64`")
        key = _bytes_of(line.get("key"), "key")
        headers: list[Header] = []
        for pair in line.get("headers") or ():
            name, raw = pair
            header_value = _bytes_of(raw, f"header {name!r}")
            if not isinstance(name, str) or header_value is None:
                raise ExportError(f"bad header {pair!r}")
            headers.append((name, header_value))
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, ExportError):
            raise
        raise ExportError(f"malformed record line: {error!r}") from None
    return partition, timestamp_ms, Message(value, key, tuple(headers))


# -- export ---------------------------------------------------------------------------------------


async def iter_records(log: EventLog, topic: str, start: Sequence[int], end: Sequence[int]) -> AsyncIterator[Record]:
    """The records of `topic` from cut `start` up to cut `end` (exclusive), partition by partition, in offset order."""
    for partition, (first, stop) in enumerate(zip(start, end, strict=True)):
        async for record in scan(log, topic, partition, first, stop, batch_records=READ_BATCH_RECORDS):
            yield record


async def export_lines(
    log: EventLog,
    topic: str,
    start: Sequence[int] | None = None,
    end: Sequence[int] | None = None,
    *,
    tenant: str | None = None,
    header: bool = True,
    limit: int | None = None,
) -> AsyncIterator[bytes]:
    """Stream the export of `topic` between two cuts (default: everything now) as bytes, one line each.

    `tenant` keeps only that tenant's commands. `limit` stops after that many record lines; if records
    were left, a last line `{"truncated": true, "next_from": "p:o,..."}` names the cut to go on from.
    """
    partitions = log.topic(topic).partitions
    ends = await log.end_offsets(topic)
    first = list(start) if start is not None else [0] * partitions
    stop = [min(o, e) for o, e in zip(end, ends, strict=True)] if end is not None else ends
    if len(first) != partitions or len(stop) != partitions:
        raise ExportError(f"a cut of {topic!r} has {partitions} offsets")
    if header:
        yield dumps_line(header_line(topic, partitions, first, stop, tenant))
    count = 0
    async for record in iter_records(log, topic, first, stop):
        if limit is not None and count >= limit:
            resume = [*stop[: record.partition], record.offset, *first[record.partition + 1 :]]
            yield dumps_line({"truncated": True, "next_from": ",".join(f"{p}:{o}" for p, o in enumerate(resume))})
            return
        line = record_line(record, tenant=tenant)
        if line is not None:
            count += 1
            yield dumps_line(line)


def _pyarrow() -> tuple[Any, Any]:
    """The `pyarrow` and `pyarrow.parquet` modules, or ExportError saying how to get them."""
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise ExportError("Parquet export needs pyarrow, which is not installed: pip install pyarrow") from None


_PARQUET_COLUMNS: Final = (
    "partition",
    "offset",
    "timestamp_ms",
    "tenant",
    "run_id",
    "namespace",
    "command_id",
    "type",
    "key",
    "headers",
    "command",
    "value_base64",
    "error",
)


def _parquet_row(line: dict[str, Any]) -> dict[str, Any]:
    """The Parquet row of an export line: scalar columns, JSON text for the nested ones."""
    command = line.get("command")
    envelope = command if isinstance(command, dict) else {}
    inner = envelope.get("command") if isinstance(envelope.get("command"), dict) else {}
    key = line.get("key")
    return {
        "partition": line["partition"],
        "offset": line["offset"],
        "timestamp_ms": line["timestamp_ms"],
        "tenant": envelope.get("tenant"),
        "run_id": envelope.get("run_id"),
        "namespace": envelope.get("namespace"),
        "command_id": envelope.get("command_id"),
        "type": inner.get("type") if isinstance(inner, dict) else None,
        "key": key if isinstance(key, str) or key is None else orjson.dumps(key).decode(),
        "headers": orjson.dumps(line.get("headers") or []).decode(),
        "command": None if command is None else orjson.dumps(command, option=_SORTED).decode(),
        "value_base64": line.get("value_base64"),
        "error": line.get("error"),
    }


async def write_parquet(lines: AsyncIterator[bytes], path: Path) -> int:
    """Write an export stream (header line first) to a Parquet file, a row group at a time; the rows written.

    Needs pyarrow (ExportError otherwise, before anything is written). The header goes into the
    file's key-value metadata as `agentlog_export`.
    """
    pa, pq = _pyarrow()
    schema = pa.schema(
        [
            ("partition", pa.int32()),
            ("offset", pa.int64()),
            ("timestamp_ms", pa.int64()),
            *((name, pa.string()) for name in _PARQUET_COLUMNS[3:]),
        ]
    )
    writer: Any = None
    rows: list[dict[str, Any]] = []
    total = 0
    try:
        async for data in lines:
            line = parse_line(data)
            if "agentlog_export" in line:
                schema = schema.with_metadata({"agentlog_export": orjson.dumps(line)})
                continue
            rows.append(_parquet_row(line))
            if len(rows) >= PARQUET_ROW_GROUP:
                writer = writer or pq.ParquetWriter(str(path), schema)
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                total += len(rows)
                rows = []
        writer = writer or pq.ParquetWriter(str(path), schema)
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            total += len(rows)
    finally:
        if writer is not None:
            writer.close()
    return total


# -- import ---------------------------------------------------------------------------------------


class ImportClock:
    """A log clock the importer sets to each batch's exported timestamp before appending it."""

    def __init__(self, start_ms: int = 0) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        """The timestamp the next append is stamped with."""
        return self.now_ms


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import appended: records per partition, and whether each landed at its exported offset."""

    topic: str
    partitions: int
    records: list[int]
    offsets_preserved: bool


@dataclass(slots=True)
class _Batch:
    """Consecutive records of one partition and one timestamp, appended as one batch."""

    partition: int
    timestamp_ms: int
    messages: list[Message]
    offsets: list[int | None]
    size: int


async def import_lines(
    log: EventLog,
    clock: ImportClock,
    lines: Iterable[bytes | str],
    *,
    topic: str | None = None,
    partitions: int | None = None,
) -> ImportResult:
    """Append the records of an export into `log` (opened with `clock`), keeping partitions, order and timestamps.

    The topic (header's name unless `topic` is given) is created with the header's partition count
    (or `partitions` when the stream has no header); if it exists it must be empty and have that
    many partitions. Records are appended in batches of one partition and one timestamp.
    """
    iterator = iter(lines)
    header: dict[str, Any] | None = None
    pending: dict[str, Any] | None = None
    for raw in iterator:
        if not raw.strip():
            continue
        first = parse_line(raw)
        if "agentlog_export" in first:
            header = first
        else:
            pending = first
        break
    if header is not None and header["agentlog_export"] != EXPORT_FORMAT:
        raise ExportError(f"export format {header['agentlog_export']!r} is not {EXPORT_FORMAT}")
    name = topic or (str(header["topic"]) if header is not None else "main")
    count = int(header["partitions"]) if header is not None else partitions
    if count is None:
        raise ExportError("the export has no header line: name the partition count")
    await _fresh_topic(log, name, count)
    written = [0] * count
    last_offset: list[int] = [-1] * count
    last_stamp = [0] * count
    preserved = True
    batch: _Batch | None = None

    async def flush(current: _Batch) -> None:
        """Append `current` stamped with its exported timestamp; refuse a log that re-stamps."""
        nonlocal preserved
        clock.now_ms = current.timestamp_ms
        result = await log.append(name, current.partition, current.messages)
        if result.timestamp_ms != current.timestamp_ms:
            raise ExportError(
                f"the log stamped {result.timestamp_ms}, not the exported {current.timestamp_ms}: "
                "it does not take the import clock (a Kafka log re-stamps every record)"
            )
        for index, original in enumerate(current.offsets):
            if original != result.base_offset + index:
                preserved = False
        written[current.partition] += result.count

    def lines_left() -> Iterator[dict[str, Any]]:
        """The record lines after the header (the first one already parsed)."""
        if pending is not None:
            yield pending
        for raw in iterator:
            if raw.strip():
                yield parse_line(raw)

    for line in lines_left():
        if "agentlog_export" in line:
            raise ExportError("a second header line in the middle of the export")
        if line.get("truncated") is True:
            break  # the trailer of an export a limit cut short: what came before is the range exported
        partition, timestamp_ms, message = message_of(line)
        if partition >= count:
            raise ExportError(f"line names partition {partition}; the topic has {count}")
        offset = line.get("offset")
        if isinstance(offset, int):
            if offset <= last_offset[partition]:
                raise ExportError(f"partition {partition}: offset {offset} after {last_offset[partition]}")
            last_offset[partition] = offset
        if timestamp_ms < last_stamp[partition]:
            raise ExportError(f"partition {partition}: timestamp {timestamp_ms} before {last_stamp[partition]}")
        last_stamp[partition] = timestamp_ms
        size = len(message.value) + len(message.key or b"") + sum(len(n) + len(v) for n, v in message.headers)
        if batch is not None and (
            batch.partition != partition
            or batch.timestamp_ms != timestamp_ms
            or len(batch.messages) >= min(IMPORT_BATCH_RECORDS, log_limits.MAX_BATCH_RECORDS)
            or batch.size + size > IMPORT_BATCH_BYTES
        ):
            await flush(batch)
            batch = None
        if batch is None:
            batch = _Batch(partition, timestamp_ms, [], [], 0)
        batch.messages.append(message)
        batch.offsets.append(offset if isinstance(offset, int) else None)
        batch.size += size
    if batch is not None:
        await flush(batch)
    return ImportResult(name, count, written, preserved)


async def _fresh_topic(log: EventLog, name: str, partitions: int) -> None:
    """Create topic `name` with `partitions`, or accept it if it exists empty with that many; else ExportError."""
    try:
        info = log.topic(name)
    except TopicNotFoundError:
        await log.create_topic(name, partitions)
        return
    if info.partitions != partitions:
        raise ExportError(f"topic {name!r} exists with {info.partitions} partitions; the export has {partitions}")
    if any(await log.end_offsets(name)):
        raise ExportError(f"topic {name!r} already holds records: import into a fresh log")


async def import_to_directory(
    data_dir: Path, lines: Iterable[bytes | str], *, topic: str | None = None, fsync: str = "interval:1000"
) -> ImportResult:
    """Import an export into the embedded log in `data_dir` (created if needed), keeping the exported timestamps."""
    from eventlog.file import FileLog

    clock = ImportClock()
    log = await FileLog.open(data_dir, fsync=fsync, clock=clock)
    try:
        return await import_lines(log, clock, lines, topic=topic)
    finally:
        await log.close()


# -- runs -----------------------------------------------------------------------------------------


async def run_commands(
    log: EventLog,
    topic: str,
    tenant: str,
    run_id: str,
    *,
    since_ms: int,
    until: Sequence[int],
    limit: int,
) -> tuple[list[tuple[Record, Envelope]], bool]:
    """Every command of `tenant` that names `run_id`, below cut `until`, from `since_ms` (less a skew margin) on.

    Each partition is scanned from its first record stamped at or after `since_ms - RUN_SCAN_MARGIN_MS`
    (a binary search: log timestamps are non-decreasing per partition). The result is ordered by
    (log time, partition, offset), which is log order within each partition; the flag says whether
    `limit` cut it short.
    """
    start = await cut_at_time(log, topic, max(0, since_ms - RUN_SCAN_MARGIN_MS) - 1)
    found: list[tuple[Record, Envelope]] = []
    truncated = False
    needle = run_id.encode()
    for partition, (first, stop) in enumerate(zip(start, until, strict=True)):
        async for record in scan(log, topic, partition, first, stop, batch_records=READ_BATCH_RECORDS):
            if needle not in record.value:  # cheap pre-filter: the run id is in every command of the run
                continue
            try:
                envelope = decode_record(record)
            except CommandError:
                continue
            if envelope.run_id == run_id and envelope.tenant == tenant:
                found.append((record, envelope))
    found.sort(key=lambda item: (item[0].timestamp_ms, item[0].partition, item[0].offset))
    if len(found) > limit:
        found, truncated = found[:limit], True
    return found, truncated


def run_event_lines(runs: RunsModel, tenant: str, run_id: str, *, page: int = 1_000) -> Iterator[dict[str, Any]]:
    """The run's events as dataset rows, in seq order: seq, type, payload, thread, agent, tool, log time, hashes."""
    from_seq = 1
    while True:
        views = runs.events(tenant, run_id, from_seq, page)
        for view in views:
            yield dataclasses.asdict(view)
        if len(views) < page:
            return
        from_seq = views[-1].seq + 1
