"""Rebuild and start-up of agentlog's projections over a large mixed command log: rebuild rate, snapshots, start-up.

Run it by hand (never in CI) from the repository root, with the project's environment:

    python bench/rebuild.py                              # 1,000,000 commands: several minutes on a small machine
    python bench/rebuild.py --commands 200000            # a quicker look
    python bench/rebuild.py --profile always --json bench/results/rebuild.json
    python bench/rebuild.py --help

1. Build: an embedded file log (fsync=never) in a temporary directory under `--dir` (default: the
   current directory), one topic of `--partitions` partitions, `--commands` commands of the mixed
   workload of `tests/projections/workload.py` (`random_workload`: kv put/delete with and without
   version conditions, state CAS, run events, vector upserts; some bound to be rejected). Stamping and
   encoding a million envelopes would take minutes, so `--templates` envelopes are drawn from
   `random_workload`, checked, routed and encoded once by `CommandProducer.prepare`, and the log is
   filled by cycling over them, each copy with a fresh command id spliced into its encoded bytes,
   appended per partition in batches (the producer's submit path, minus re-encoding). The setup
   commands of the workload (collections, runs) come first, once.
2. Rebuild from zero: reopen the log (timed), `Engine(log, topic, new_state(partitions)).catch_up()`
   with the garbage collector paused (as `Node.start` and `projections.timetravel.rebuild` do),
   in two legs: up to the cut `--tail` commands before the end, where snapshot A is written (timed,
   with its size), then to the end, where snapshot B is written; B is written once more in a worker
   thread (as a serving node does) while a 1 ms ticker on the event loop measures the longest stall.
   The rebuild rate counts both legs, not the snapshots.
3. Start-up from a snapshot, as `Node.start` does it: reopen the log, `load_snapshot` (read,
   checksums, msgpack/.npy decode), then `catch_up` of the tail: from A (the tail
   is `--tail` commands, by default a whole `snapshot_every` of the node) and from B (snapshot = end,
   no tail). The state reached from A is checked against B's digests.
4. Profile (`--profile auto`, the default: only when the rebuild is below half the target): over the
   first `--profile-commands` commands, a rebuild whose stages are timed (log read, decode, routing
   check, apply per model and command type, and the rest of the engine), the apply path's struct
   decode against the pydantic decode and orjson alone, and a cProfile run: the top 15 functions by
   cumulative and by own time.

The log is read right after it was written, so it is in the page cache: the figures are CPU, not disk.
Stdout gets the machine, versions, dataset, the Markdown tables and the target; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import gc
import io
import json
import pstats
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common
import orjson

import projections.engine as engine_module
from commands import CommandProducer, decode_record, new_id
from commands.wire import decode_for_apply
from eventlog.file import FileLog
from eventlog.records import Message, Record
from projections.catalog import new_state
from projections.collector import collector_paused
from projections.engine import Engine, EngineState
from projections.model import ApplyContext
from projections.snapshot import SnapshotInfo, list_snapshots, load_snapshot, write_snapshot

REPOSITORY = Path(__file__).resolve().parent.parent
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

from tests.projections.workload import random_workload  # noqa: E402 - needs the repository on sys.path

TOPIC = "main"
#: Records per append while building the log.
APPEND_RECORDS = 2_000
#: Records per read in the stage-timed rebuild (the engine's own batch size).
READ_RECORDS = engine_module.APPLY_BATCH_RECORDS
#: Records whose decode is split into JSON parsing and validation.
DECODE_SAMPLE = 20_000
TARGET_COMMANDS_PER_S = 300_000
NOISE_NOTE = "Figures from a shared machine are noisy: compare the ratios of one run, not figures across runs."


# ----------------------------------------------------------------------------------- build


class Stopwatch:
    """Wall-clock and process CPU seconds since it was made (CPU time shows a busy neighbour's share)."""

    def __init__(self) -> None:
        self._wall_s = time.perf_counter()
        self._cpu_s = time.process_time()

    def wall_s(self) -> float:
        return time.perf_counter() - self._wall_s

    def cpu_s(self) -> float:
        return time.process_time() - self._cpu_s


@dataclass(frozen=True, slots=True)
class BuildStats:
    commands: int
    seconds: float
    cpu_s: float
    log_bytes: int
    types: dict[str, int]
    per_partition: list[int]


def _splice_pattern(command_id: str) -> bytes:
    return b'"command_id":"' + command_id.encode() + b'"'


async def build_log(path: Path, commands: int, templates: int, partitions: int, seed: int) -> BuildStats:
    """Write `commands` encoded commands (the workload's setup, then copies of templates) to a new log."""
    watch = Stopwatch()
    setup = random_workload(0, seed)
    drawn = random_workload(len(setup) + templates, seed)[len(setup) :]
    log = await FileLog.open(path, fsync="never")
    try:
        await log.create_topic(TOPIC, partitions)
        producer = CommandProducer(log, TOPIC)
        prepared = [(envelope, *producer.prepare(envelope)) for envelope in drawn]
        _note(f"build: {len(drawn):,} templates stamped and encoded in {watch.wall_s():.1f} s")
        types: collections.Counter[str] = collections.Counter()
        pending: list[list[Message]] = [[] for _ in range(partitions)]
        per_partition = [0] * partitions

        async def flush(partition: int) -> None:
            if pending[partition]:
                await log.append(TOPIC, partition, pending[partition])
                per_partition[partition] += len(pending[partition])
                pending[partition] = []

        for envelope in setup[:commands]:
            partition, message = producer.prepare(envelope)
            pending[partition].append(message)
            types[envelope.type] += 1
        prefix = new_id()[:24]  # a UUIDv7 prefix; the last 12 hex digits count copies
        patterns = [_splice_pattern(envelope.command_id) for envelope, _, _ in prepared]
        for sequence in range(commands - min(commands, len(setup))):
            index = sequence % len(prepared)
            envelope, partition, message = prepared[index]
            value = message.value.replace(patterns[index], _splice_pattern(f"{prefix}{sequence:012x}"), 1)
            pending[partition].append(Message(value, message.key, message.headers))
            types[envelope.type] += 1
            if len(pending[partition]) >= APPEND_RECORDS:
                await flush(partition)
            if sequence % 200_000 == 199_999:
                _note(f"build: {sequence + 1:,} commands written")
        for partition in range(partitions):
            await flush(partition)
    finally:
        await log.close()
    return BuildStats(commands, watch.wall_s(), watch.cpu_s(), _log_bytes(path), dict(types), per_partition)


def _log_bytes(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*.log"))


# ----------------------------------------------------------------------------------- rebuild


@dataclass(frozen=True, slots=True)
class SnapshotStats:
    name: str
    cut_total: int
    write_s: float
    write_cpu_s: float
    size_bytes: int


@dataclass(frozen=True, slots=True)
class RebuildStats:
    commands: int
    open_s: float
    rebuild_s: float
    rebuild_cpu_s: float
    applied: int
    rejected: int
    peak_rss_mib: float
    snapshots: list[SnapshotStats]
    worker_snapshot_s: float
    loop_stall_ms: float

    @property
    def commands_per_s(self) -> float:
        return self.commands / self.rebuild_s

    @property
    def commands_per_cpu_s(self) -> float:
        return self.commands / self.rebuild_cpu_s


@dataclass(frozen=True, slots=True)
class StartupStats:
    snapshot: str
    tail_commands: int
    open_s: float
    load_s: float
    tail_s: float
    cpu_s: float
    digests_match: bool

    @property
    def total_s(self) -> float:
        return self.open_s + self.load_s + self.tail_s


def tail_cut(per_partition: Sequence[int], tail: int) -> dict[int, int]:
    """A cut `tail` commands before the end, taken from each partition in proportion to its size."""
    total = sum(per_partition)
    tail = min(tail, total)
    return {p: end - round(tail * end / total) if total else 0 for p, end in enumerate(per_partition)}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _outcome_counts(state: EngineState) -> tuple[int, int]:
    applied = rejected = 0
    for remembered in state.outcomes:
        for outcome in remembered.values():
            if outcome.status == "applied":
                applied += 1
            else:
                rejected += 1
    return applied, rejected


async def rebuild(
    path: Path, snapshot_dir: Path, partitions: int, cut: dict[int, int]
) -> tuple[RebuildStats, SnapshotInfo, SnapshotInfo]:
    """Rebuild from zero in two legs, writing snapshot A at `cut` and B at the end."""
    started_s = time.perf_counter()
    log = await FileLog.open(path)
    open_s = time.perf_counter() - started_s
    try:
        engine = Engine(log, TOPIC, new_state(partitions))
        first = Stopwatch()
        with collector_paused():  # as Node.start and every rebuild do
            await engine.catch_up(until=cut)
        first_wall_s, first_cpu_s = first.wall_s(), first.cpu_s()
        _note(
            f"rebuild: {sum(engine.applied):,} commands applied in {first_wall_s:.1f} s "
            f"({first_cpu_s:.1f} CPU s); writing snapshot A"
        )
        snapshot_a, stats_a = _timed_snapshot("A (end - tail)", snapshot_dir, engine.state)
        second = Stopwatch()
        with collector_paused():
            await engine.catch_up()
        second_wall_s, second_cpu_s = second.wall_s(), second.cpu_s()
        _note(f"rebuild: {sum(engine.applied):,} commands applied in all; writing snapshot B")
        snapshot_b, stats_b = _timed_snapshot("B (end)", snapshot_dir, engine.state)
        _note("rebuild: snapshot B again, in a worker thread, with the event loop's longest stall measured")
        worker_s, stall_s = await snapshot_stall(snapshot_dir / "worker", engine.state)
        applied, rejected = _outcome_counts(engine.state)
        stats = RebuildStats(
            commands=sum(engine.applied),
            open_s=open_s,
            rebuild_s=first_wall_s + second_wall_s,
            rebuild_cpu_s=first_cpu_s + second_cpu_s,
            applied=applied,
            rejected=rejected,
            peak_rss_mib=_peak_rss_mib(),
            snapshots=[stats_a, stats_b],
            worker_snapshot_s=worker_s,
            loop_stall_ms=stall_s * 1000,
        )
    finally:
        await log.close()
    return stats, snapshot_a, snapshot_b


def _timed_snapshot(name: str, snapshot_dir: Path, state: EngineState) -> tuple[SnapshotInfo, SnapshotStats]:
    watch = Stopwatch()
    info = write_snapshot(snapshot_dir, TOPIC, state)
    write_s, write_cpu_s = watch.wall_s(), watch.cpu_s()
    size = sum(file.stat().st_size for file in info.path.iterdir())
    return info, SnapshotStats(name, sum(info.cut), write_s, write_cpu_s, size)


async def snapshot_stall(snapshot_dir: Path, state: EngineState) -> tuple[float, float]:
    """Write a snapshot in a worker thread (as `Node.snapshot` does) while a 1 ms ticker runs on the loop.

    Returns the write's wall seconds and the longest gap between two ticks beyond their 1 ms sleep:
    the longest the event loop could not run a ready task.
    """
    stall_s = 0.0
    done = asyncio.Event()

    async def tick() -> None:
        nonlocal stall_s
        loop = asyncio.get_running_loop()
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(0.001)
            stall_s = max(stall_s, loop.time() - before - 0.001)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.01)
    started_s = time.perf_counter()
    await asyncio.to_thread(write_snapshot, snapshot_dir, TOPIC, state)
    write_s = time.perf_counter() - started_s
    done.set()
    await ticker
    return write_s, stall_s


async def start_from(
    path: Path, snapshot_dir: Path, name: str, wanted: SnapshotInfo, end: SnapshotInfo
) -> StartupStats:
    """Open the log, load `wanted` (found by listing, as a node does), catch up; check against `end`'s digests."""
    whole = Stopwatch()
    started_s = time.perf_counter()
    log = await FileLog.open(path)
    open_s = time.perf_counter() - started_s
    try:
        started_s = time.perf_counter()
        info = next(info for info in list_snapshots(snapshot_dir, TOPIC) if info.path == wanted.path)
        state = load_snapshot(info)
        load_s = time.perf_counter() - started_s
        engine = Engine(log, TOPIC, state)
        started_s = time.perf_counter()
        with collector_paused():
            await engine.catch_up()
        tail_s = time.perf_counter() - started_s
        cpu_s = whole.cpu_s()
        tail_commands = sum(engine.applied) - sum(info.cut)
        digests_match = state.digests() == end.digests
    finally:
        await log.close()
    return StartupStats(name, tail_commands, open_s, load_s, tail_s, cpu_s, digests_match)


# ----------------------------------------------------------------------------------- profile


@dataclass(slots=True)
class StageTimes:
    """Seconds spent per stage of the engine's apply path, and calls per stage."""

    seconds: dict[str, float] = field(default_factory=lambda: collections.defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: collections.defaultdict(int))

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] += seconds
        self.calls[stage] += 1


@dataclass(frozen=True, slots=True)
class ProfileReport:
    commands: int
    wall_s: float
    cpu_s: float
    stages: list[dict[str, object]]
    decode_split: dict[str, float]
    cprofile_wall_s: float
    cprofile_top: str
    cprofile_top_self: str


class _Patched:
    """Replace module attributes for a while (the bench's own process only)."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def set(self, owner: Any, name: str, value: Any) -> None:
        self._saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    def restore(self) -> None:
        for owner, name, value in reversed(self._saved):
            setattr(owner, name, value)
        self._saved.clear()


def _timed(function: Callable[..., Any], stage: str | Callable[..., str], times: StageTimes) -> Callable[..., Any]:
    clock = time.perf_counter

    def wrapper(*args: Any) -> Any:
        started_s = clock()
        try:
            return function(*args)
        finally:
            elapsed_s = clock() - started_s
            times.add(stage if isinstance(stage, str) else stage(*args), elapsed_s)

    return wrapper


def timer_overhead_s(calls: int = 200_000) -> float:
    """Seconds one `_timed` wrapper adds to a call (a wrapped no-op against the bare no-op), best of 3."""

    def noop(*_: Any) -> None:
        return None

    def named(*_: Any) -> str:
        return f"stage {calls}"

    wrapped = _timed(noop, named, StageTimes())
    best = float("inf")
    for _ in range(3):
        started_s = time.perf_counter()
        for _ in range(calls):
            noop(None)
        bare_s = time.perf_counter() - started_s
        started_s = time.perf_counter()
        for _ in range(calls):
            wrapped(None)
        best = min(best, (time.perf_counter() - started_s - bare_s) / calls)
    return max(0.0, best)


async def staged_rebuild(path: Path, partitions: int, cut: dict[int, int]) -> tuple[int, float, float, StageTimes]:
    """Rebuild up to `cut` with the stages of the apply path timed (a few timer calls per command)."""
    times = StageTimes()
    log = await FileLog.open(path)
    patched = _Patched()
    try:
        state = new_state(partitions)
        engine = Engine(log, TOPIC, state)
        patched.set(log, "read", _async_timed(log.read, "log read (FileLog.read)", times))
        patched.set(
            engine_module, "decode_for_apply", _timed(decode_for_apply, "decode (msgspec structs)", times)
        )
        patched.set(
            EngineState,
            "_partition_of",
            _timed(EngineState._partition_of, "routing check (EngineState._partition_of)", times),
        )
        for model in state.models:

            def stage(context: ApplyContext, name: str = model.name) -> str:
                return f"apply {name}: {context.envelope.type}"

            patched.set(model, "apply", _timed(model.apply, stage, times))
        watch = Stopwatch()
        await engine.catch_up(until=cut)
        wall_s, cpu_s = watch.wall_s(), watch.cpu_s()
        commands = sum(engine.applied)
    finally:
        patched.restore()
        await log.close()
    return commands, wall_s, cpu_s, times


def _async_timed(function: Callable[..., Any], stage: str, times: StageTimes) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started_s = time.perf_counter()
        try:
            return await function(*args, **kwargs)
        finally:
            times.add(stage, time.perf_counter() - started_s)

    return wrapper


def stage_rows(commands: int, wall_s: float, times: StageTimes, overhead_per_call_s: float) -> list[dict[str, object]]:
    """One row per stage, the timers' own cost (calibrated), the engine's rest, and the total."""
    rows: list[dict[str, object]] = []
    accounted = 0.0
    for stage, seconds in sorted(times.seconds.items(), key=lambda item: -item[1]):
        accounted += seconds
        rows.append(_stage_row(stage, times.calls[stage], seconds, commands, wall_s))
    timer_calls = sum(times.calls.values())
    overhead_s = min(overhead_per_call_s * timer_calls, max(0.0, wall_s - accounted))
    rows.append(_stage_row("timers of this table (calibrated estimate)", timer_calls, overhead_s, commands, wall_s))
    rest = max(0.0, wall_s - accounted - overhead_s)
    rows.append(
        _stage_row("engine rest (apply_record: outcomes dict, Outcome, ApplyContext)", commands, rest, commands, wall_s)
    )
    rows.append(_stage_row("total", commands, wall_s, commands, wall_s))
    return rows


def _stage_row(stage: str, calls: int, seconds: float, commands: int, wall_s: float) -> dict[str, object]:
    return {
        "stage": stage,
        "calls": calls,
        "s": seconds,
        "µs per command": seconds / commands * 1e6,
        "µs per call": seconds / calls * 1e6 if calls else 0.0,
        "share %": seconds / wall_s * 100,
    }


async def decode_split(path: Path, sample: int) -> dict[str, float]:
    """µs per record of orjson.loads alone, the apply path's struct decode and the pydantic decode."""
    log = await FileLog.open(path)
    try:
        records: list[Record] = []
        for partition in range(len(await log.end_offsets(TOPIC))):
            records += await log.read(TOPIC, partition, 0, max_records=max(1, sample // 8))
    finally:
        await log.close()
    values = [record.value for record in records]
    started_s = time.perf_counter()
    for value in values:
        orjson.loads(value)
    json_s = time.perf_counter() - started_s
    started_s = time.perf_counter()
    for record in records:
        decode_for_apply(record)
    decode_s = time.perf_counter() - started_s
    started_s = time.perf_counter()
    for record in records:
        decode_record(record)
    pydantic_s = time.perf_counter() - started_s
    count = max(1, len(records))
    return {
        "records": float(len(records)),
        "json µs": json_s / count * 1e6,
        "decode µs": decode_s / count * 1e6,
        "pydantic µs": pydantic_s / count * 1e6,
    }


async def profiled_rebuild(path: Path, partitions: int, cut: dict[int, int]) -> tuple[float, str, str]:
    """cProfile a rebuild up to `cut` (the loop thread: the file log reads on it too); top 15 by cumtime, tottime."""
    log = await FileLog.open(path)
    profiler = cProfile.Profile()
    try:
        engine = Engine(log, TOPIC, new_state(partitions))
        started_s = time.perf_counter()
        profiler.enable()
        await engine.catch_up(until=cut)
        profiler.disable()
        wall_s = time.perf_counter() - started_s
    finally:
        await log.close()
    return wall_s, _top(profiler, pstats.SortKey.CUMULATIVE), _top(profiler, pstats.SortKey.TIME)


def _top(profiler: cProfile.Profile, key: pstats.SortKey) -> str:
    output = io.StringIO()
    pstats.Stats(profiler, stream=output).strip_dirs().sort_stats(key).print_stats(15)
    return "\n".join(line.rstrip() for line in output.getvalue().strip().splitlines())


async def profile(path: Path, partitions: int, per_partition: Sequence[int], commands: int) -> ProfileReport:
    total = sum(per_partition)
    cut = tail_cut(per_partition, max(0, total - commands))
    _note(f"profile: stage-timed rebuild of {sum(cut.values()):,} commands")
    counted, wall_s, cpu_s, times = await staged_rebuild(path, partitions, cut)
    gc.collect()
    split = await decode_split(path, DECODE_SAMPLE)
    _note("profile: cProfile rebuild")
    cprofile_wall_s, top, top_self = await profiled_rebuild(path, partitions, cut)
    gc.collect()
    rows = stage_rows(counted, wall_s, times, timer_overhead_s())
    return ProfileReport(counted, wall_s, cpu_s, rows, split, cprofile_wall_s, top, top_self)


# ----------------------------------------------------------------------------------- the run


@dataclass(frozen=True, slots=True)
class Options:
    commands: int
    templates: int
    partitions: int
    tail: int
    seed: int
    profile: str
    profile_commands: int
    root: Path
    json_path: Path | None


@dataclass(frozen=True, slots=True)
class Results:
    build: BuildStats
    rebuild: RebuildStats
    startups: list[StartupStats]
    profile: ProfileReport | None


async def run_all(options: Options) -> Results:
    log_dir = options.root / "log"
    snapshot_dir = options.root / "snapshots"
    build = await build_log(log_dir, options.commands, options.templates, options.partitions, options.seed)
    _note(f"build: {build.commands:,} commands, {build.log_bytes / 2**20:.0f} MiB in {build.seconds:.1f} s")
    cut = tail_cut(build.per_partition, options.tail)
    rebuilt, snapshot_a, snapshot_b = await rebuild(log_dir, snapshot_dir, options.partitions, cut)
    _note(f"rebuild: {rebuilt.commands_per_s:,.0f} commands/s")
    gc.collect()
    startups = []
    for name, info in (("A (end - tail)", snapshot_a), ("B (end)", snapshot_b)):
        startups.append(await start_from(log_dir, snapshot_dir, name, info, snapshot_b))
        _note(f"start-up from {name}: {startups[-1].total_s:.2f} s")
        gc.collect()
    wanted = options.profile == "always" or (
        options.profile == "auto" and rebuilt.commands_per_s < TARGET_COMMANDS_PER_S / 2
    )
    report = None
    if wanted:
        commands = min(options.profile_commands, build.commands)
        report = await profile(log_dir, options.partitions, build.per_partition, commands)
    return Results(build, rebuilt, startups, report)


def _note(text: str) -> None:
    print(f"          {text}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------- report


def _mib(size: int) -> float:
    return size / 2**20


def summary_rows(results: Results) -> list[dict[str, object]]:
    rebuilt = results.rebuild
    rows: list[dict[str, object]] = [
        {
            "measure": "build the log (templates + copies, fsync=never)",
            "commands": results.build.commands,
            "s": results.build.seconds,
            "CPU s": results.build.cpu_s,
            "commands/s": round(results.build.commands / results.build.seconds),
            "size MiB": _mib(results.build.log_bytes),
        },
        {"measure": "open the log (FileLog.open: scan, index)", "commands": rebuilt.commands, "s": rebuilt.open_s},
        {
            "measure": "rebuild from zero (new_state + catch_up)",
            "commands": rebuilt.commands,
            "s": rebuilt.rebuild_s,
            "CPU s": rebuilt.rebuild_cpu_s,
            "commands/s": round(rebuilt.commands_per_s),
            "commands/CPU-s": round(rebuilt.commands_per_cpu_s),
        },
    ]
    for snapshot in rebuilt.snapshots:
        rows.append(
            {
                "measure": f"write snapshot {snapshot.name}",
                "commands": snapshot.cut_total,
                "s": snapshot.write_s,
                "CPU s": snapshot.write_cpu_s,
                "size MiB": _mib(snapshot.size_bytes),
            }
        )
    rows.append(
        {
            "measure": f"write snapshot B in a worker thread: longest event-loop stall {rebuilt.loop_stall_ms:.1f} ms",
            "commands": rebuilt.commands,
            "s": rebuilt.worker_snapshot_s,
        }
    )
    rows.append(
        {
            "measure": "start-up from zero (open + rebuild)",
            "commands": rebuilt.commands,
            "s": rebuilt.open_s + rebuilt.rebuild_s,
        }
    )
    return rows


def startup_rows(startups: Sequence[StartupStats]) -> list[dict[str, object]]:
    return [
        {
            "start-up from snapshot": startup.snapshot,
            "tail commands": startup.tail_commands,
            "open log s": startup.open_s,
            "load snapshot s": startup.load_s,
            "catch up tail s": startup.tail_s,
            "total s": startup.total_s,
            "total CPU s": startup.cpu_s,
            "tail commands/s": round(startup.tail_commands / startup.tail_s) if startup.tail_commands else "",
            "digests = rebuilt": "yes" if startup.digests_match else "NO",
        }
        for startup in startups
    ]


def dataset(options: Options, build: BuildStats | None = None) -> dict[str, str]:
    facts = {
        "commands": f"{options.commands:,} (the workload's setup, then copies of {options.templates:,} templates "
        f"from random_workload(seed={options.seed}), each with a fresh command id)",
        "log": f"FileLog, one topic of {options.partitions} partitions, written with fsync=never, "
        "read back from the page cache",
        "snapshots": f"A at {options.tail:,} commands before the end, B at the end",
        "data": str(options.root),
    }
    if build is not None:
        total = sum(build.types.values())
        mix = sorted(build.types.items(), key=lambda item: -item[1])
        facts["mix"] = ", ".join(f"{name} {count / total * 100:.1f}%" for name, count in mix)
    return facts


def print_report(header: dict[str, dict[str, str]], results: Results) -> None:
    print(f"**Command**: `{command_line()}`")
    print()
    _common.print_facts(header)
    columns = ["measure", "commands", "s", "CPU s", "commands/s", "commands/CPU-s", "size MiB"]
    print(_common.markdown_table(summary_rows(results), columns))
    print()
    rows = startup_rows(results.startups)
    print(_common.markdown_table(rows, list(rows[0])))
    print()
    rebuilt = results.rebuild
    met = rebuilt.commands_per_s >= TARGET_COMMANDS_PER_S
    check = {
        "target": f"rebuild ≥ {TARGET_COMMANDS_PER_S:,} commands/s",
        "measured": f"{rebuilt.commands_per_s:,.0f} commands/s ({rebuilt.commands_per_cpu_s:,.0f} per CPU-second)",
        "ratio": rebuilt.commands_per_s / TARGET_COMMANDS_PER_S,
        "met": "yes" if met else "no",
    }
    print(_common.markdown_table([check], ["target", "measured", "ratio", "met"]))
    print()
    print(
        f"Outcomes the engine remembers after the rebuild (at most {engine_module.OUTCOMES_PER_PARTITION_MAX:,} "
        f"per partition): {rebuilt.applied:,} applied, {rebuilt.rejected:,} rejected; "
        f"peak RSS {rebuilt.peak_rss_mib:,.0f} MiB. {NOISE_NOTE}"
    )
    if results.profile is not None:
        print_profile(results.profile)
    print()
    print(f"Load average at the end: {_common.load_average()}.")


def print_profile(report: ProfileReport) -> None:
    print()
    print(
        f"**Profile**: stage-timed rebuild of {report.commands:,} commands in {report.wall_s:.2f} s, "
        f"{report.cpu_s:.2f} CPU s ({report.commands / report.wall_s:,.0f} commands/s with the timers on); "
        "stages in wall-clock time"
    )
    print()
    columns = ["stage", "calls", "s", "µs per command", "µs per call", "share %"]
    print(_common.markdown_table(report.stages, columns))
    split = report.decode_split
    print()
    print(
        f"Decode of {int(split['records']):,} records on its own: {split['decode µs']:.1f} µs per record through "
        f"the apply path's msgspec structs, {split['pydantic µs']:.1f} µs through the pydantic models "
        f"({split['pydantic µs'] / split['decode µs']:.1f} times slower); orjson.loads alone {split['json µs']:.1f} µs."
    )
    print()
    print(f"cProfile of the same rebuild ({report.cprofile_wall_s:.2f} s under the profiler), top 15 by cumtime:")
    print()
    print("```")
    print(report.cprofile_top)
    print("```")
    print()
    print("The same profile, top 15 by own time (tottime):")
    print()
    print("```")
    print(report.cprofile_top_self)
    print("```")


def command_line() -> str:
    return " ".join(["python", *sys.argv])


def write_json(path: Path, header: dict[str, dict[str, str]], results: Results) -> None:
    document: dict[str, Any] = {
        **header,
        "command": command_line(),
        "build": {
            "commands": results.build.commands,
            "seconds": results.build.seconds,
            "cpu_s": results.build.cpu_s,
            "log_bytes": results.build.log_bytes,
            "types": results.build.types,
            "per_partition": results.build.per_partition,
        },
        "rebuild": {
            "commands": results.rebuild.commands,
            "open_s": results.rebuild.open_s,
            "rebuild_s": results.rebuild.rebuild_s,
            "rebuild_cpu_s": results.rebuild.rebuild_cpu_s,
            "commands_per_s": results.rebuild.commands_per_s,
            "commands_per_cpu_s": results.rebuild.commands_per_cpu_s,
            "applied": results.rebuild.applied,
            "rejected": results.rebuild.rejected,
            "peak_rss_mib": results.rebuild.peak_rss_mib,
            "snapshots": [
                {
                    "name": s.name,
                    "cut_total": s.cut_total,
                    "write_s": s.write_s,
                    "write_cpu_s": s.write_cpu_s,
                    "size_bytes": s.size_bytes,
                }
                for s in results.rebuild.snapshots
            ],
            "worker_snapshot_s": results.rebuild.worker_snapshot_s,
            "loop_stall_ms": results.rebuild.loop_stall_ms,
        },
        "startups": startup_rows(results.startups),
        "target": {
            "commands_per_s": TARGET_COMMANDS_PER_S,
            "met": results.rebuild.commands_per_s >= TARGET_COMMANDS_PER_S,
        },
    }
    if results.profile is not None:
        document["profile"] = {
            "commands": results.profile.commands,
            "wall_s": results.profile.wall_s,
            "cpu_s": results.profile.cpu_s,
            "stages": results.profile.stages,
            "decode_split": results.profile.decode_split,
            "cprofile_top": results.profile.cprofile_top,
            "cprofile_top_self": results.profile.cprofile_top_self,
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


# ----------------------------------------------------------------------------------- command line


def _count(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a non-negative integer")
    return value


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Rebuild, snapshot and start-up times of agentlog's projections.")
    parser.add_argument("--commands", type=_count, default=1_000_000, help="commands in the log (default 1,000,000)")
    parser.add_argument("--templates", type=_count, default=10_000, help="distinct workload envelopes (default 10,000)")
    parser.add_argument("--partitions", type=_count, default=8, help="partitions of the topic (default 8, as a node)")
    parser.add_argument(
        "--tail", type=_count, default=100_000, help="commands after snapshot A (default 100,000 = snapshot_every)"
    )
    parser.add_argument("--seed", type=_count, default=7, help="random_workload seed (default 7)")
    parser.add_argument(
        "--profile",
        choices=["auto", "always", "never"],
        default="auto",
        help="profile the rebuild: auto = only if below half the target (default auto)",
    )
    parser.add_argument(
        "--profile-commands", type=_count, default=200_000, help="commands the profiled rebuilds cover (200,000)"
    )
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the temp data dir goes (default: .)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def check_arguments(arguments: argparse.Namespace) -> str | None:
    """Why the arguments cannot run, or None."""
    if not 1_000 <= arguments.commands <= 100_000_000:
        return "--commands must be within 1,000..100,000,000"
    if not 1 <= arguments.templates <= 1_000_000:
        return "--templates must be within 1..1,000,000"
    if not 1 <= arguments.partitions <= 1_024:
        return "--partitions must be within 1..1,024"
    if arguments.tail >= arguments.commands:
        return "--tail must be below --commands"
    if arguments.profile_commands < 1_000:
        return "--profile-commands must be at least 1,000"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    problem = check_arguments(arguments)
    if problem is not None:
        print(f"rebuild: {problem}", file=sys.stderr)
        return 2
    arguments.dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="agentlog-bench-", dir=arguments.dir))
    options = Options(
        commands=arguments.commands,
        templates=arguments.templates,
        partitions=arguments.partitions,
        tail=arguments.tail,
        seed=arguments.seed,
        profile=arguments.profile,
        profile_commands=arguments.profile_commands,
        root=root,
        json_path=arguments.json,
    )
    try:
        machine = _common.machine_info(root)
        results = asyncio.run(run_all(options))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    header = {"Machine": machine, "Versions": _common.stack_versions(), "Dataset": dataset(options, results.build)}
    print_report(header, results)
    if options.json_path is not None:
        write_json(options.json_path, header, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
