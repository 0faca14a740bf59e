"""Durable append throughput of agentlog beside SQLite-WAL, Redis-AOF and raw write+fdatasync, on one disk.

Run it by hand (never in CI) from the repository root, with the project's environment:

    python bench/log_append.py                          # every cell, 2 s each: a few minutes
    python bench/log_append.py --sizes 100 --batches 100 --appenders 16 --only agentlog,sqlite
    python bench/log_append.py --rounds 3 --json bench/results/log_append.json   # steadier on a busy machine
    python bench/log_append.py --help

Redis needs `redis-server` on PATH (`apt-get update && apt-get install -y redis-server`) and redis-py;
leave it out with `--only agentlog,sqlite,raw`.

A cell is (record size, batch size, appenders). In each cell every system appends the same random
payloads in batches of the same size for `--seconds`, every appender to the same place (one
partition, one table, one key, one file), each append durable before it returns (fsync=always):

- agentlog: `FileLog`, fsync=always, one topic of one partition; appenders are asyncio tasks in one
  process, group-committed by the log.
- SQLite: WAL, synchronous=FULL; a batch is BEGIN IMMEDIATE + executemany INSERT + COMMIT; each
  appender is a thread with its own connection (busy_timeout set). SQLite's busy handler sleeps
  while another writer holds the lock; `--sqlite-serialize` makes the threads queue on a lock instead.
- Redis: appendonly yes, appendfsync always, save ''; a batch is a MULTI/EXEC pipeline of XADD (or
  RPUSH) commands; each appender is a thread with its own client. A fresh server per cell.
- raw: the physical limit, os.write of the batch's payload bytes then os.fdatasync on one O_APPEND
  file; several appenders share the fd and take turns under a lock (no group commit).

Systems run interleaved cell by cell (and round by round with `--rounds`), so a noisy neighbour hurts
them alike. After each agentlog cell
the log is closed, reopened and read back sequentially (max_records=10,000 per call).

Stdout gets the machine, versions, dataset and Markdown tables ready to paste; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import _common

from eventlog import limits
from eventlog.base import EventLog
from eventlog.fsync import FsyncPolicy
from eventlog.records import Message

if TYPE_CHECKING:
    import redis

SYSTEMS = ("agentlog", "sqlite", "redis", "raw")
TOPIC = "bench"
PARTITION = 0
#: Records per read call when reading the log back.
READ_BATCH_RECORDS = 10_000
#: Most concurrent appenders a cell may have.
APPENDERS_MAX = 256
#: Most rounds of each cell.
ROUNDS_MAX = 100
#: Longest wait for every appender of a cell to be connected and warmed up.
START_TIMEOUT_S = 120.0
#: How long SQLite waits for the write lock before failing (PRAGMA busy_timeout).
SQLITE_BUSY_TIMEOUT_MS = 60_000
REDIS_KEY = "bench"
#: Redis config beyond durability: no background AOF rewrite (a fork) in the middle of a cell.
REDIS_EXTRA_CONFIG = {"auto-aof-rewrite-percentage": "0"}
PAYLOAD_SEED = 20_240_601
BYTES_PER_MB = 1_000_000
NOISE_NOTE = "Figures from a shared machine are noisy: compare the ratios of one run, not figures across runs."

# ----------------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Cell:
    """One point of the grid: every system appends batches of `batch_records` records of `size_bytes`."""

    size_bytes: int
    batch_records: int
    appenders: int

    @property
    def label(self) -> str:
        return f"{self.size_bytes} B x {self.batch_records} x {self.appenders}"


@dataclass(frozen=True, slots=True)
class Measurement:
    """What the appenders of one cell did between the common start and the last append's return."""

    records: int
    elapsed_s: float
    latencies_s: list[float] = field(repr=False)

    @property
    def records_per_s(self) -> float:
        return self.records / self.elapsed_s


@dataclass(frozen=True, slots=True)
class AppendStats:
    """One system in one cell over every round: the median round's records/s, latencies of all appends."""

    system: str
    size_bytes: int
    batch_records: int
    appenders: int
    records: int
    appends: int
    elapsed_s: float
    records_per_s: float
    mb_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    rounds_records_per_s: list[float]

    @classmethod
    def of(cls, system: str, cell: Cell, rounds: Sequence[Measurement]) -> AppendStats:
        latencies_ms = [latency_s * 1000 for measurement in rounds for latency_s in measurement.latencies_s]
        rounds_records_per_s = [measurement.records_per_s for measurement in rounds]
        records_per_s = statistics.median(rounds_records_per_s)
        return cls(
            system=system,
            size_bytes=cell.size_bytes,
            batch_records=cell.batch_records,
            appenders=cell.appenders,
            records=sum(measurement.records for measurement in rounds),
            appends=len(latencies_ms),
            elapsed_s=sum(measurement.elapsed_s for measurement in rounds),
            records_per_s=records_per_s,
            mb_per_s=records_per_s * cell.size_bytes / BYTES_PER_MB,
            latency_p50_ms=_common.percentile(latencies_ms, 50),
            latency_p99_ms=_common.percentile(latencies_ms, 99),
            rounds_records_per_s=rounds_records_per_s,
        )

    @property
    def cell(self) -> Cell:
        return Cell(self.size_bytes, self.batch_records, self.appenders)


@dataclass(frozen=True, slots=True)
class ReadStats:
    """Reading back, from offset 0, everything one agentlog cell wrote (warm-up batches included)."""

    size_bytes: int
    batch_records: int
    appenders: int
    records: int
    open_ms: float
    elapsed_s: float
    cpu_s: float
    records_per_s: float
    records_per_cpu_s: float
    mb_per_s: float

    @classmethod
    def of(cls, cell: Cell, records: int, open_ms: float, elapsed_s: float, cpu_s: float) -> ReadStats:
        records_per_s = records / elapsed_s
        return cls(
            size_bytes=cell.size_bytes,
            batch_records=cell.batch_records,
            appenders=cell.appenders,
            records=records,
            open_ms=open_ms,
            elapsed_s=elapsed_s,
            cpu_s=cpu_s,
            records_per_s=records_per_s,
            records_per_cpu_s=records / cpu_s if cpu_s > 0 else float("nan"),
            mb_per_s=records_per_s * cell.size_bytes / BYTES_PER_MB,
        )


@dataclass(frozen=True, slots=True)
class Options:
    seconds: float
    rounds: int
    sizes_bytes: list[int]
    batches_records: list[int]
    appenders: list[int]
    systems: list[str]
    root: Path
    json_path: Path | None
    redis_command: str
    agentlog_backend: str
    sqlite_serialize: bool

    def cells(self) -> Iterator[Cell]:
        for size_bytes in self.sizes_bytes:
            for batch_records in self.batches_records:
                for appenders in self.appenders:
                    yield Cell(size_bytes, batch_records, appenders)


# ----------------------------------------------------------------------------------- timing


class Appender(Protocol):
    """One appender of a threaded peer: `append` writes one batch durably and returns its record count."""

    def append(self) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _LoopOutcome:
    records: int
    latencies_s: list[float]
    finished_s: float


def _append_until(append: Callable[[], int], deadline_s: float) -> _LoopOutcome:
    records = 0
    latencies_s: list[float] = []
    now_s = time.perf_counter()
    while now_s < deadline_s:
        records += append()
        finished_s = time.perf_counter()
        latencies_s.append(finished_s - now_s)
        now_s = finished_s
    return _LoopOutcome(records, latencies_s, now_s)


def _thread_loop(open_appender: Callable[[], Appender], barrier: threading.Barrier, seconds: float) -> _LoopOutcome:
    try:
        appender = open_appender()
        appender.append()  # warm-up: connections, files and tables exist before the clock starts
    except BaseException:
        barrier.abort()
        raise
    try:
        barrier.wait()
        return _append_until(appender.append, time.perf_counter() + seconds)
    finally:
        appender.close()


def _merge(outcomes: Sequence[_LoopOutcome], start_s: float) -> Measurement:
    latencies_s = [latency_s for outcome in outcomes for latency_s in outcome.latencies_s]
    finished_s = max(outcome.finished_s for outcome in outcomes)
    return Measurement(sum(outcome.records for outcome in outcomes), finished_s - start_s, latencies_s)


def measure_threads(open_appender: Callable[[], Appender], appenders: int, seconds: float) -> Measurement:
    """Run `appenders` threads, each with `open_appender()`, appending from a common start for `seconds`."""
    barrier = threading.Barrier(appenders + 1)
    with ThreadPoolExecutor(max_workers=appenders, thread_name_prefix="bench-appender") as pool:
        futures = [pool.submit(_thread_loop, open_appender, barrier, seconds) for _ in range(appenders)]
        try:
            barrier.wait(START_TIMEOUT_S)
        except threading.BrokenBarrierError:
            for future in futures:
                future.result()  # raises the appender's own error
            raise
        start_s = time.perf_counter()
        outcomes = [future.result() for future in futures]
    return _merge(outcomes, start_s)


async def _append_until_async(append: Callable[[], Awaitable[int]], deadline_s: float) -> _LoopOutcome:
    records = 0
    latencies_s: list[float] = []
    now_s = time.perf_counter()
    while now_s < deadline_s:
        records += await append()
        finished_s = time.perf_counter()
        latencies_s.append(finished_s - now_s)
        now_s = finished_s
    return _LoopOutcome(records, latencies_s, now_s)


async def measure_tasks(append: Callable[[], Awaitable[int]], appenders: int, seconds: float) -> Measurement:
    """Run `appenders` asyncio tasks calling `append` from a common start for `seconds`, after one warm-up each."""
    await asyncio.gather(*(append() for _ in range(appenders)))
    start_s = time.perf_counter()
    outcomes = await asyncio.gather(*(_append_until_async(append, start_s + seconds) for _ in range(appenders)))
    return _merge(outcomes, start_s)


# ----------------------------------------------------------------------------------- agentlog


async def open_agentlog(path: Path, backend: str) -> EventLog:
    """The log under test: the embedded file log with fsync=always, or the in-memory twin."""
    if backend == "memory":
        from eventlog.memory import MemoryLog

        return MemoryLog()
    from eventlog.file import FileLog

    return await FileLog.open(path, fsync=FsyncPolicy.parse("always"))


async def read_back(log: EventLog, end_offset: int) -> tuple[float, float]:
    """Read the bench partition from offset 0 to `end_offset`; return the wall and CPU seconds it took.

    The CPU seconds are this thread's (the file log decodes in the caller's thread), which busy
    neighbours on the machine do not inflate.
    """
    offset = 0
    start_s = time.perf_counter()
    start_cpu_s = time.thread_time()
    while offset < end_offset:
        records = await log.read(TOPIC, PARTITION, offset, max_records=READ_BATCH_RECORDS)
        if not records or records[0].offset != offset:
            raise RuntimeError(f"read at offset {offset} of {end_offset} returned {len(records)} records")
        offset += len(records)
    elapsed_s = time.perf_counter() - start_s
    cpu_s = time.thread_time() - start_cpu_s
    if offset != end_offset:
        raise RuntimeError(f"read back {offset} records, the log holds {end_offset}")
    return elapsed_s, cpu_s


async def agentlog_cell(
    cell: Cell, payloads: list[bytes], seconds: float, path: Path, backend: str
) -> tuple[Measurement, ReadStats]:
    """Append for `seconds`, then close, reopen and read everything back."""
    log = await open_agentlog(path, backend)
    try:
        await log.create_topic(TOPIC, partitions=1)
        messages = [Message(value=payload, key=None) for payload in payloads]

        async def append() -> int:
            return (await log.append(TOPIC, PARTITION, messages)).count

        measurement = await measure_tasks(append, cell.appenders, seconds)
        end_offset = (await log.end_offsets(TOPIC))[PARTITION]
        open_started_s = time.perf_counter()
        if backend != "memory":
            await log.close()
            log = await open_agentlog(path, backend)
        open_ms = (time.perf_counter() - open_started_s) * 1000
        read_s, read_cpu_s = await read_back(log, end_offset)
    finally:
        await log.close()
    return measurement, ReadStats.of(cell, end_offset, open_ms, read_s, read_cpu_s)


# ----------------------------------------------------------------------------------- peers


class RawFile:
    """The physical limit: write a batch's bytes to one O_APPEND file, then fdatasync; appenders take turns."""

    def __init__(self, path: Path, batch_bytes: bytes, batch_records: int) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._batch = memoryview(batch_bytes)
        self._batch_records = batch_records
        self._lock = threading.Lock()

    def append(self) -> int:
        with self._lock:
            written = 0
            while written < len(self._batch):
                written += os.write(self._fd, self._batch[written:])
            os.fdatasync(self._fd)
        return self._batch_records

    def close(self) -> None:
        """Each appender's close: the shared file stays open until `close_file`."""

    def close_file(self) -> None:
        os.close(self._fd)


def raw_cell(cell: Cell, payloads: list[bytes], seconds: float, path: Path) -> Measurement:
    raw = RawFile(path, b"".join(payloads), len(payloads))
    try:
        return measure_threads(lambda: raw, cell.appenders, seconds)
    finally:
        raw.close_file()


class SqliteAppender:
    """One thread's connection to the WAL database; a batch is one IMMEDIATE transaction.

    Writers wait for each other in SQLite's busy handler (which sleeps, up to 100 ms at a time), or,
    given a `turn` lock, queue on it before BEGIN.
    """

    def __init__(self, path: Path, rows: list[tuple[bytes]], turn: threading.Lock | None) -> None:
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
        self._connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        self._connection.execute("PRAGMA synchronous = FULL")
        self._rows = rows
        self._turn = turn

    def append(self) -> int:
        if self._turn is None:
            return self._transaction()
        with self._turn:
            return self._transaction()

    def _transaction(self) -> int:
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            self._connection.executemany("INSERT INTO log (value) VALUES (?)", self._rows)
            self._connection.execute("COMMIT")
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        return len(self._rows)

    def close(self) -> None:
        self._connection.close()


def create_sqlite_database(path: Path) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(f"SQLite refused WAL mode (got {mode!r})")
        connection.execute("CREATE TABLE log (seq INTEGER PRIMARY KEY, value BLOB NOT NULL)")
    finally:
        connection.close()


def sqlite_cell(cell: Cell, payloads: list[bytes], seconds: float, path: Path, serialize: bool) -> Measurement:
    create_sqlite_database(path)
    rows = [(payload,) for payload in payloads]
    turn = threading.Lock() if serialize else None
    return measure_threads(lambda: SqliteAppender(path, rows, turn), cell.appenders, seconds)


class RedisAppender:
    """One thread's client; a batch is a MULTI/EXEC pipeline of one XADD (or RPUSH) per record."""

    def __init__(self, port: int, payloads: list[bytes], command: str) -> None:
        import redis

        self._client: redis.Redis = redis.Redis(host="127.0.0.1", port=port, socket_timeout=60)
        self._payloads = payloads
        self._command = command

    def append(self) -> int:
        pipeline = self._client.pipeline(transaction=True)
        if self._command == "xadd":
            for payload in self._payloads:
                pipeline.xadd(REDIS_KEY, {"v": payload})
        else:
            for payload in self._payloads:
                pipeline.rpush(REDIS_KEY, payload)
        pipeline.execute()
        return len(self._payloads)

    def close(self) -> None:
        self._client.close()


def redis_cell(cell: Cell, payloads: list[bytes], seconds: float, data_dir: Path, command: str) -> Measurement:
    with _common.RedisServer(data_dir, appendfsync="always", extra_config=REDIS_EXTRA_CONFIG) as server:
        return measure_threads(lambda: RedisAppender(server.port, payloads, command), cell.appenders, seconds)


# ----------------------------------------------------------------------------------- the run


def make_payloads(cell: Cell) -> list[bytes]:
    """`batch_records` distinct random (incompressible) values of `size_bytes`, the same in every run."""
    generator = random.Random(PAYLOAD_SEED + cell.size_bytes)
    return [generator.randbytes(cell.size_bytes) for _ in range(cell.batch_records)]


def run_system(system: str, cell: Cell, options: Options, cell_dir: Path) -> tuple[Measurement, ReadStats | None]:
    payloads = make_payloads(cell)
    cell_dir.mkdir(parents=True)
    if system == "agentlog":
        return asyncio.run(agentlog_cell(cell, payloads, options.seconds, cell_dir, options.agentlog_backend))
    if system == "sqlite":
        return sqlite_cell(cell, payloads, options.seconds, cell_dir / "log.db", options.sqlite_serialize), None
    if system == "redis":
        return redis_cell(cell, payloads, options.seconds, cell_dir, options.redis_command), None
    return raw_cell(cell, payloads, options.seconds, cell_dir / "raw.log"), None


def run_cell(cell: Cell, options: Options) -> tuple[list[AppendStats], ReadStats | None]:
    """Every system in `cell`, `options.rounds` times, the order rotated each round."""
    rounds: dict[str, list[Measurement]] = {system: [] for system in options.systems}
    reads: list[ReadStats] = []
    for round_index in range(options.rounds):
        shift = round_index % len(options.systems)
        for system in options.systems[shift:] + options.systems[:shift]:
            cell_dir = options.root / f"{system}-{cell.size_bytes}-{cell.batch_records}-{cell.appenders}"
            try:
                measurement, read = run_system(system, cell, options, cell_dir)
            finally:
                shutil.rmtree(cell_dir, ignore_errors=True)
            rounds[system].append(measurement)
            reads += [] if read is None else [read]
            _progress(system, cell, measurement, read)
    appends = [AppendStats.of(system, cell, measurements) for system, measurements in rounds.items()]
    return appends, _median_read(reads)


def _median_read(reads: Sequence[ReadStats]) -> ReadStats | None:
    """The round whose read-back rate is the median (the lower one of an even count)."""
    ordered = sorted(reads, key=lambda read: read.records_per_s)
    return ordered[(len(ordered) - 1) // 2] if ordered else None


def run_grid(options: Options) -> tuple[list[AppendStats], list[ReadStats]]:
    appends: list[AppendStats] = []
    reads: list[ReadStats] = []
    for cell in options.cells():
        cell_appends, read = run_cell(cell, options)
        appends += cell_appends
        reads += [] if read is None else [read]
    return appends, reads


def _progress(system: str, cell: Cell, measurement: Measurement, read: ReadStats | None) -> None:
    latencies_ms = [latency_s * 1000 for latency_s in measurement.latencies_s]
    line = (
        f"{system:>8}  {cell.label:<20} {measurement.records_per_s:>12,.0f} records/s"
        f"  p50 {_common.percentile(latencies_ms, 50):8.3f} ms  p99 {_common.percentile(latencies_ms, 99):8.3f} ms"
    )
    if read is not None:
        line += f"  | read {read.records_per_s:,.0f} records/s"
    print(line, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------- report


def ratio(appends: Sequence[AppendStats], cell: Cell, peer: str) -> float | None:
    """agentlog's records/s over `peer`'s in `cell`, or None if either did not run."""
    by_system = {stats.system: stats for stats in appends if stats.cell == cell}
    if "agentlog" not in by_system or peer not in by_system:
        return None
    return by_system["agentlog"].records_per_s / by_system[peer].records_per_s


def append_rows(appends: Sequence[AppendStats]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for stats in appends:
        peer_ratio = None if stats.system == "agentlog" else ratio(appends, stats.cell, stats.system)
        rows.append(
            {
                "record B": stats.size_bytes,
                "batch": stats.batch_records,
                "appenders": stats.appenders,
                "system": stats.system,
                "records/s": round(stats.records_per_s),
                "MB/s": stats.mb_per_s,
                "p50 ms": stats.latency_p50_ms,
                "p99 ms": stats.latency_p99_ms,
                "agentlog ÷ system": "" if peer_ratio is None else peer_ratio,
            }
        )
    return rows


def read_rows(reads: Sequence[ReadStats]) -> list[dict[str, object]]:
    return [
        {
            "record B": read.size_bytes,
            "written in batches of": read.batch_records,
            "appenders": read.appenders,
            "records": read.records,
            "reopen ms": read.open_ms,
            "read s": read.elapsed_s,
            "records/s": round(read.records_per_s),
            "MB/s": read.mb_per_s,
            "records per CPU-s": round(read.records_per_cpu_s) if math.isfinite(read.records_per_cpu_s) else "",
        }
        for read in reads
    ]


@dataclass(frozen=True, slots=True)
class TargetCheck:
    target: str
    cell: str
    measured: str
    met: bool


def _ratio_checks(
    appends: Sequence[AppendStats], peer: str, batch_records: int, appenders: int | None, floor: float
) -> list[TargetCheck]:
    cells = {stats.cell for stats in appends if stats.batch_records == batch_records}
    checks: list[TargetCheck] = []
    for cell in sorted(cells, key=lambda cell: (cell.size_bytes, cell.appenders)):
        value = ratio(appends, cell, peer)
        if value is not None and appenders in (None, cell.appenders):
            target = f"agentlog ≥ {floor:g}x {peer} records/s"
            checks.append(TargetCheck(target, cell.label, f"{value:.2f}x", value >= floor))
    return checks


def _read_checks(reads: Sequence[ReadStats], floor_records_per_s: float) -> list[TargetCheck]:
    """The largest read-back of each record size: small ones measure fixed costs more than reading."""
    checks: list[TargetCheck] = []
    for size_bytes in sorted({read.size_bytes for read in reads}):
        read = max((read for read in reads if read.size_bytes == size_bytes), key=lambda read: read.records)
        cell = Cell(read.size_bytes, read.batch_records, read.appenders)
        measured = (
            f"{read.records_per_s:,.0f} records/s over {read.records:,} records"
            f" ({read.records_per_cpu_s:,.0f} per CPU-second)"
        )
        target = f"sequential read ≥ {floor_records_per_s:,.0f} records/s"
        checks.append(TargetCheck(target, f"read of {cell.label}", measured, read.records_per_s >= floor_records_per_s))
    return checks


def target_checks(appends: Sequence[AppendStats], reads: Sequence[ReadStats]) -> list[TargetCheck]:
    """The issue's targets, reported and never asserted."""
    checks = _ratio_checks(appends, "sqlite", batch_records=100, appenders=16, floor=2.0)
    checks += _ratio_checks(appends, "redis", batch_records=100, appenders=16, floor=1.0)
    checks += _ratio_checks(appends, "raw", batch_records=1000, appenders=None, floor=0.5)
    return checks + _read_checks(reads, floor_records_per_s=1_000_000)


def versions(options: Options) -> dict[str, str]:
    found = {
        "Python": sys.version.split()[0],
        "agentlog": f"{_common.package_version('agentlog')} ({agentlog_description(options.agentlog_backend)})",
        "SQLite": sqlite3.sqlite_version,
    }
    if "redis" in options.systems:
        found["Redis server"] = _common.redis_server_version()
        found["redis-py"] = _common.package_version("redis")
    return found


def agentlog_description(backend: str) -> str:
    return "MemoryLog, no durability" if backend == "memory" else "FileLog, fsync=always, group commit"


def dataset(options: Options) -> dict[str, str]:
    sizes = ", ".join(f"{size} B" for size in options.sizes_bytes)
    return {
        "records": f"random (incompressible) values of {sizes}; no key, no headers",
        "batches": ", ".join(f"{batch:,}" for batch in options.batches_records) + " records per append call",
        "appenders": ", ".join(str(count) for count in options.appenders)
        + " concurrent, all on one partition/table/key/file",
        "duration": f"{options.seconds:g} s per cell and system after one warm-up batch per appender, "
        f"median of {options.rounds} round(s) with the systems' order rotated",
        "durability": "fsync=always; SQLite WAL, synchronous=FULL; Redis appendfsync always; raw fdatasync",
        "SQLite writers": "queue on a Python lock" if options.sqlite_serialize else "wait in the busy handler",
        "Redis batch": f"MULTI/EXEC pipeline of {options.redis_command.upper()}",
        "data": str(options.root),
    }


def print_report(header: dict[str, dict[str, str]], appends: list[AppendStats], reads: list[ReadStats]) -> None:
    print(f"**Command**: `{command_line()}`")
    print()
    for title, facts in header.items():
        print(f"**{title}**: " + "; ".join(f"{name} {value}" for name, value in facts.items()))
        print()
    columns = ["record B", "batch", "appenders", "system", "records/s", "MB/s", "p50 ms", "p99 ms"]
    print(_common.markdown_table(append_rows(appends), [*columns, "agentlog ÷ system"]))
    if reads:
        print()
        read_columns = ["record B", "written in batches of", "appenders", "records", "reopen ms", "read s"]
        print(_common.markdown_table(read_rows(reads), [*read_columns, "records/s", "MB/s", "records per CPU-s"]))
    checks = target_checks(appends, reads)
    if checks:
        print()
        check_rows = [{**asdict(check), "met": "yes" if check.met else "no"} for check in checks]
        print(_common.markdown_table(check_rows, ["target", "cell", "measured", "met"]))
    print()
    print(f"Cells are `record size x batch x appenders`; MB/s counts payload bytes (10^6). {NOISE_NOTE}")
    print(f"Load average at the end: {_common.load_average()}.")


def command_line() -> str:
    return " ".join(["python", *sys.argv])


def write_json(
    path: Path, header: dict[str, dict[str, str]], appends: list[AppendStats], reads: list[ReadStats]
) -> None:
    document = {
        **header,
        "command": command_line(),
        "appends": [asdict(stats) for stats in appends],
        "reads": [asdict(read) for read in reads],
        "targets": [asdict(check) for check in target_checks(appends, reads)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


# ----------------------------------------------------------------------------------- command line


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive integers")
    return values


def _system_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(SYSTEMS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: choose among {','.join(SYSTEMS)}")
    return [system for system in SYSTEMS if system in names]


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Durable append throughput of agentlog beside SQLite-WAL, Redis-AOF and raw write+fsync."
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each cell per system (default 2)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="run each cell this many times, systems rotated; report the median"
    )
    parser.add_argument("--sizes", type=_int_list, default=[100, 1024], help="record sizes in bytes (100,1024)")
    parser.add_argument(
        "--batches", type=_int_list, default=[1, 10, 100, 1000], help="records per append (1,10,100,1000)"
    )
    parser.add_argument("--appenders", type=_int_list, default=[1, 16], help="concurrent appenders (1,16)")
    parser.add_argument("--only", type=_system_list, default=list(SYSTEMS), help="systems (agentlog,sqlite,redis,raw)")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the temp data dir goes (default: .)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    parser.add_argument("--redis-command", choices=["xadd", "rpush"], default="xadd", help="Redis command (xadd)")
    parser.add_argument(
        "--agentlog-backend", choices=["file", "memory"], default="file", help="memory: the twin, for trying the script"
    )
    parser.add_argument(
        "--sqlite-serialize",
        action="store_true",
        help="SQLite writers queue on a lock in Python instead of polling in SQLite's sleeping busy handler",
    )
    return parser.parse_args(argv)


def check_arguments(arguments: argparse.Namespace) -> str | None:
    """Why the arguments cannot run, or None."""
    if not 0 < arguments.seconds <= 3600:
        return "--seconds must be within (0, 3600]"
    if not 1 <= arguments.rounds <= ROUNDS_MAX:
        return f"--rounds must be within 1..{ROUNDS_MAX}"
    if max(arguments.batches) > limits.MAX_BATCH_RECORDS:
        return f"--batches: at most {limits.MAX_BATCH_RECORDS:,} records per append"
    if max(arguments.sizes) > limits.MAX_VALUE_BYTES:
        return f"--sizes: at most {limits.MAX_VALUE_BYTES:,} bytes per record"
    if max(arguments.appenders) > APPENDERS_MAX:
        return f"--appenders: at most {APPENDERS_MAX}"
    return _missing_requirement(arguments)


def _missing_requirement(arguments: argparse.Namespace) -> str | None:
    if "redis" in arguments.only:
        if shutil.which("redis-server") is None:
            return (
                f"redis-server not found on PATH: {_common.REDIS_INSTALL_HINT}, "
                "or leave Redis out with --only agentlog,sqlite,raw"
            )
        if _common.package_version("redis") == "not installed":
            return "redis-py is not installed: pip install -e '.[dev]' (or pip install redis), or leave out Redis"
    if "agentlog" in arguments.only and arguments.agentlog_backend == "file":
        try:
            import eventlog.file  # noqa: F401
        except ImportError as error:
            return f"eventlog.file cannot be imported ({error}); try the script with --agentlog-backend memory"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    problem = check_arguments(arguments)
    if problem is not None:
        print(f"log_append: {problem}", file=sys.stderr)
        return 2
    arguments.dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="agentlog-bench-", dir=arguments.dir))
    options = Options(
        seconds=arguments.seconds,
        rounds=arguments.rounds,
        sizes_bytes=arguments.sizes,
        batches_records=arguments.batches,
        appenders=arguments.appenders,
        systems=arguments.only,
        root=root,
        json_path=arguments.json,
        redis_command=arguments.redis_command,
        agentlog_backend=arguments.agentlog_backend,
        sqlite_serialize=arguments.sqlite_serialize,
    )
    try:
        header = {"Machine": _common.machine_info(root), "Versions": versions(options), "Dataset": dataset(options)}
        appends, reads = run_grid(options)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_report(header, appends, reads)
    if options.json_path is not None:
        write_json(options.json_path, header, appends, reads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
