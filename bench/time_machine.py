"""The time machine, measured: time-travel reads at random cuts, branch creation, and run replay.

Run it by hand (never in CI) from the repository root, with the project's environment:

    .venv/bin/python bench/time_machine.py                 # everything at full size: ~14 min on a busy 2-core VM
    .venv/bin/python bench/time_machine.py --commands 200000 --snapshot-every 20000 --cuts 8 \\
        --branch-sizes 10000,100000 --run-steps 2000      # a quicker look: ~2 minutes
    .venv/bin/python bench/time_machine.py --parts 2       # branch creation only (builds its logs: ~1 minute)
    .venv/bin/python bench/time_machine.py --parts 3 --agents events --repeats 5
    .venv/bin/python bench/time_machine.py --help

Every log lives in a temporary directory under `--dir` (default: the current directory), removed at
the end. Stdout gets the machine, versions, dataset, one Markdown table per part and each target's
verdict (reported, never asserted); progress goes to stderr.

1. **Time-travel read at a random cut.** A log of `--commands` mixed commands is built exactly as
   `bench/rebuild.py` builds it (its `build_log`: `random_workload` templates, fsync=never, one topic
   of `--partitions` partitions), except that each append (one log frame) holds `--append-records`
   records (default 100, a group commit of a busy node; rebuild.py appends 2,000 at a time): a
   single-record read such as `cut_at_time`'s and `log_time_at`'s reads and checks its whole frame,
   so frame size shows in those two. An engine then catches up in steps of `--snapshot-every`
   commands and a snapshot (`write_snapshot`) is written at every step. Each step ends at a log time
   (the first time by which the log held the step's commands, found with `cut_at_time`), as a live
   node's applied cut does. A node keeps only the newest `SNAPSHOTS_KEPT` (3) snapshots of a topic;
   here each snapshot is written into a staging directory and moved into the snapshot directory, so
   all of them stay usable, as the brief asks. For `--cuts` seeded random cuts per mode, the
   measured operation is `projections.timetravel.rebuild(log, topic, cut, snapshot_dir)` plus one KV
   read of the resulting state (`log_time_at` for the reader's clock, then `RecordsModel.get` of a
   random workload key). Modes: `time` (a uniformly random log time between the first and the last
   record, resolved with `cut_at_time`, which is timed and counted in the total, as `as_of=t:<ms>`
   does) and `offset` (a uniformly random position in the log, cut in proportion on every
   partition, as an arbitrary `as_of=p:o,...` token; such a cut need not be at or above the snapshot
   just below its position on every partition, and then the rebuild starts from an older one). The
   split of each rebuild comes from timing wrappers placed, for the bench's own process, around
   `timetravel.list_snapshots` (choosing the snapshot: reading the headers) and
   `timetravel.load_snapshot` (read, checksums, msgpack/.npy decode); the tail replay is the rest of
   `rebuild`.
   The log is opened once (a node keeps it open) and read from the page cache. Last, the newest
   snapshot's load is taken apart: the checksums of its files, the whole load, and the size and
   msgpack decode time of each section of its state file.
2. **Branch creation.** For each parent size of `--branch-sizes` (the part-1 log is reused for the
   size equal to `--commands`), the log is reopened with `FileLog.open(path, fsync="always")` and
   `log.create_branch(name, "main", end offsets)` is timed `--branches` times (one untimed warm-up
   first); all parents are open at once and the creations take turns between them, so a busy spell
   falls on every size alike. The log's `Disk` is a counting wrapper around `os.fdatasync`/`os.fsync`, so each
   creation's syncs and the time spent in them are reported beside the total.
3. **Run replay.** One run per `--agents` kind of `--run-steps` recorder steps is recorded with
   `record_run` through `AsyncEmbeddedAgentlog` (the real node in this process, embedded file log,
   `--record-fsync`): `events` = every step a `rec.event` (a run event, hash-chained); `tools` = every
   step a `rec.tool_call` (a `trace.record`); `mixed` = the sample agent of the replay tests
   repeated (event, two tool calls, a model call of two steps, an event, a kv put). A step is one
   recorded command; in the `events` run steps and run events are the same thing. Then, each timed
   `--repeats` times (median reported):
   - harness replay: `replay_run(None, run_id, agent, cassette=cassette)` with the cassette already
     in memory: the agent runs again, every step is compared with the recording, nothing is fetched
     or written (no I/O at all);
   - cassette fetch: `fetch_cassette` (`GET /v1/runs/{id}/replay` and `Cassette.from_json`) through
     the embedded node (in-process ASGI, no socket) and through a real HTTP node (`serve` from
     tests/query_api/http_node.py: uvicorn in a thread of this process, loopback socket);
   - end to end: `replay_run(client, run_id, agent)` = fetch + harness replay, embedded and over HTTP;
   - the node's log scan for the cassette: `projections.export.run_commands` from the run's begin
     time (what GET /replay does before building and encoding items);
   - the runs model of that run rebuilt from the log: `run_commands` from time 0 (a scan of every
     partition: read, pre-filter on the run id, decode) then a fresh `RunsModel` folding the run's
     run.begin / event.append / run.end; checked against the node's event count and chain head;
   - for context, every model rebuilt from zero over the whole part-3 log (`timetravel.rebuild` to
     the end).
   `--profile auto` (the default) adds a cProfile of one harness replay when it misses the target.

The machine is usually shared: compare the ratios of one run, not figures from different runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import hashlib
import io
import json
import os
import pstats
import random
import shutil
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common
import msgspec
import rebuild as rebuild_bench  # bench/rebuild.py: build_log, tail_cut, Stopwatch (and the repository on sys.path)

from agentlog import AsyncAgentlogClient, AsyncEmbeddedAgentlog
from agentlog.replay import Cassette, Recorder, fetch_cassette, record_run, replay_run
from commands import Envelope
from eventlog.file import Disk, FileLog
from eventlog.records import Record
from projections import timetravel
from projections.catalog import new_state
from projections.engine import Engine, EngineState
from projections.export import run_commands
from projections.model import ApplyContext
from projections.outcome import Rejected
from projections.records import RecordsModel
from projections.runs import RunsModel
from projections.snapshot import SNAPSHOTS_KEPT, SnapshotInfo, list_snapshots, load_snapshot, write_snapshot
from query_api.http.auth import DEFAULT_TENANT
from query_api.settings import Settings

REPOSITORY = Path(__file__).resolve().parent.parent
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

from tests.projections.workload import NAMESPACES, TENANTS  # noqa: E402 - needs the repository on sys.path
from tests.query_api.http_node import memory_settings, serve  # noqa: E402

TOPIC = rebuild_bench.TOPIC
Stopwatch = rebuild_bench.Stopwatch
#: Keys the workload writes per namespace (`k0` .. `k199`, see tests/projections/workload.py).
WORKLOAD_KEYS = 200
TARGET_TIME_TRAVEL_S = 1.0
TARGET_BRANCH_MS = 10.0
TARGET_REPLAY_STEPS_PER_S = 50_000
AGENT_KINDS = ("events", "tools", "mixed")
CUT_MODES = ("offset", "time")
#: The text every recorded event and tool output carries (about 160 bytes, a short agent thought).
THOUGHT = (
    "compare the two cheapest routes, keep the one with the shorter layover, and note the fare class "
    "so that the booking step can check it against the travel policy"
)
NOISE_NOTE = "Figures from a shared machine are noisy: compare the ratios of one run, not figures across runs."


def _note(text: str) -> None:
    print(f"          {text}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------- logs


class Logs:
    """Logs of the mixed workload, built once per size (rebuild.py's `build_log`) and shared by the parts."""

    def __init__(self, root: Path, templates: int, partitions: int, seed: int, append_records: int) -> None:
        self.root = root
        self.templates = templates
        self.partitions = partitions
        self.seed = seed
        self.append_records = append_records
        self.built: dict[int, tuple[Path, rebuild_bench.BuildStats]] = {}

    async def get(self, commands: int) -> tuple[Path, rebuild_bench.BuildStats]:
        if commands not in self.built:
            path = self.root / f"log-{commands}"
            patched = rebuild_bench._Patched()
            patched.set(rebuild_bench, "APPEND_RECORDS", self.append_records)  # records per append (one frame)
            try:
                stats = await rebuild_bench.build_log(path, commands, self.templates, self.partitions, self.seed)
            finally:
                patched.restore()
            _note(f"build: {commands:,} commands, {stats.log_bytes / 2**20:.0f} MiB in {stats.seconds:.1f} s")
            self.built[commands] = (path, stats)
        return self.built[commands]


# ----------------------------------------------------------------------------------- part 1: time travel


@dataclass(frozen=True, slots=True)
class SnapshotBuilt:
    commands: int
    catch_up_s: float
    catch_up_cpu_s: float
    write_s: float
    size_bytes: int


@dataclass(frozen=True, slots=True)
class CutSample:
    mode: str
    commands: int
    snapshot_commands: int
    resolve_s: float
    rebuild_s: float
    list_s: float
    load_s: float
    clock_s: float
    read_s: float
    cpu_s: float
    exact: bool
    found: bool

    @property
    def tail_s(self) -> float:
        return self.rebuild_s - self.list_s - self.load_s

    @property
    def total_s(self) -> float:
        return self.resolve_s + self.rebuild_s + self.read_s

    @property
    def tail_commands(self) -> int:
        return self.commands - self.snapshot_commands


@dataclass(frozen=True, slots=True)
class TimeTravelResults:
    build: rebuild_bench.BuildStats
    snapshots: list[SnapshotBuilt]
    samples: list[CutSample]
    snapshot_every: int
    anatomy_commands: int
    anatomy: list[dict[str, object]]


async def cut_holding(log: FileLog, commands: int, first_ms: int, last_ms: int) -> list[int]:
    """The cut at the first log time by which the log held at least `commands` commands (binary search on time)."""
    low, high = first_ms, last_ms
    while low < high:
        middle = (low + high) // 2
        if sum(await timetravel.cut_at_time(log, TOPIC, middle)) >= commands:
            high = middle
        else:
            low = middle + 1
    return await timetravel.cut_at_time(log, TOPIC, low)


async def write_snapshots(log_path: Path, snapshot_dir: Path, total: int, every: int) -> list[SnapshotBuilt]:
    """Catch an engine up in steps of `every` commands (cuts at log times, as a live node's applied cuts are);
    a snapshot at every step, all kept."""
    staging = snapshot_dir.parent / "snapshot-staging"
    kept = snapshot_dir / TOPIC
    kept.mkdir(parents=True, exist_ok=True)
    built: list[SnapshotBuilt] = []
    log = await FileLog.open(log_path, fsync="never")
    try:
        first_ms, last_ms = await _time_range(log)
        engine = Engine(log, TOPIC, new_state(len(await log.end_offsets(TOPIC))))
        for position in range(every, total + 1, every):
            cut = await cut_holding(log, position, first_ms, last_ms)
            watch = Stopwatch()
            await engine.catch_up(until=dict(enumerate(cut)))
            catch_up_s, catch_up_cpu_s = watch.wall_s(), watch.cpu_s()
            started_s = time.perf_counter()
            info = write_snapshot(staging, TOPIC, engine.state)
            write_s = time.perf_counter() - started_s
            # write_snapshot keeps the newest SNAPSHOTS_KEPT of a directory: move each out of its reach
            target = kept / info.path.name
            os.replace(info.path, target)
            size = sum(file.stat().st_size for file in target.iterdir())
            built.append(SnapshotBuilt(sum(info.cut), catch_up_s, catch_up_cpu_s, write_s, size))
            _note(
                f"snapshots: {sum(info.cut):,} commands (catch-up {catch_up_s:.1f} s, "
                f"write {write_s:.1f} s, {size / 2**20:.0f} MiB)"
            )
    finally:
        await log.close()
    return built


@dataclass(slots=True)
class RebuildSplit:
    """Seconds `timetravel.rebuild` spent listing snapshot headers and loading the one it chose."""

    list_s: float = 0.0
    load_s: float = 0.0
    loaded: SnapshotInfo | None = None


def _split_wrappers(split: RebuildSplit) -> tuple[Callable[..., list[SnapshotInfo]], Callable[..., EngineState]]:
    def timed_list(root: Path, topic: str) -> list[SnapshotInfo]:
        started_s = time.perf_counter()
        try:
            return list_snapshots(root, topic)
        finally:
            split.list_s += time.perf_counter() - started_s

    def timed_load(info: SnapshotInfo, *, verify_digests: bool = False) -> EngineState:
        started_s = time.perf_counter()
        try:
            return load_snapshot(info, verify_digests=verify_digests)
        finally:
            split.load_s += time.perf_counter() - started_s
            split.loaded = info

    return timed_list, timed_load


async def kv_read(log: FileLog, state: EngineState, cut: Sequence[int], rng: random.Random) -> tuple[bool, float]:
    """One KV read of a random workload key with the reader's clock of an as-of read (the log time at the cut).

    Answers whether the key was found and the seconds `log_time_at` took (the clock: one record read per partition).
    """
    records = state.model("records")
    assert isinstance(records, RecordsModel)
    tenant, namespace, key = rng.choice(TENANTS), rng.choice(NAMESPACES), f"k{rng.randrange(WORKLOAD_KEYS)}"
    started_s = time.perf_counter()
    now_ms = await timetravel.log_time_at(log, TOPIC, cut)
    clock_s = time.perf_counter() - started_s
    return records.get(tenant, namespace, key, now_ms) is not None, clock_s


async def time_cut(
    log: FileLog, snapshot_dir: Path, mode: str, cut: list[int], resolve_s: float, rng: random.Random
) -> CutSample:
    """`timetravel.rebuild` to `cut` plus one KV read, with the snapshot listing and loading timed apart."""
    split = RebuildSplit()
    timed_list, timed_load = _split_wrappers(split)
    read_rng = random.Random(rng.random())
    patched = rebuild_bench._Patched()
    patched.set(timetravel, "list_snapshots", timed_list)
    patched.set(timetravel, "load_snapshot", timed_load)
    try:
        watch = Stopwatch()
        state = await timetravel.rebuild(log, TOPIC, cut, snapshot_dir)
        rebuild_s = watch.wall_s()
        started_s = time.perf_counter()
        found, clock_s = await kv_read(log, state, cut, read_rng)
        read_s = time.perf_counter() - started_s
        cpu_s = watch.cpu_s()
    finally:
        patched.restore()
    exact = list(state.applied) == list(cut)
    snapshot_commands = sum(split.loaded.cut) if split.loaded is not None else 0
    return CutSample(
        mode,
        sum(cut),
        snapshot_commands,
        resolve_s,
        rebuild_s,
        split.list_s,
        split.load_s,
        clock_s,
        read_s,
        cpu_s,
        exact,
        found,
    )


def _load_s(info: SnapshotInfo) -> tuple[float, float]:
    """Seconds two `load_snapshot(info)` calls take (it pauses the garbage collector itself)."""
    times: list[float] = []
    for _ in range(2):
        gc.collect()
        started_s = time.perf_counter()
        loaded = load_snapshot(info)
        times.append(time.perf_counter() - started_s)
        del loaded
    gc.collect()
    return times[0], times[1]


def snapshot_anatomy(info: SnapshotInfo) -> list[dict[str, object]]:
    """Where the load of one snapshot goes: each file's size and checksum time, then each section's decode."""
    rows: list[dict[str, object]] = []
    manifest = json.loads((info.path / "manifest.json").read_text())
    checksum_s = 0.0
    array_bytes = 0
    for name in sorted(manifest["files"]):
        started_s = time.perf_counter()
        with (info.path / name).open("rb") as file:
            hashlib.file_digest(file, "sha256")
        checksum_s += time.perf_counter() - started_s
        if name.endswith(".npy"):
            array_bytes += (info.path / name).stat().st_size
    state_bytes = (info.path / "state.bin").read_bytes()
    load_s, again_s = _load_s(info)
    rows.append(
        {
            "part": f"whole snapshot (load_snapshot; checksums of every file {checksum_s:.2f} s)",
            "MiB": _mib(len(state_bytes) + array_bytes),
            "decode s": load_s,
            "decode s, again": again_s,
        }
    )
    decoder = msgspec.msgpack.Decoder(ext_hook=lambda code, data: None)
    sizes: dict[str, int] = {}
    seconds: dict[str, float] = {}
    offset = 0
    view = memoryview(state_bytes)
    while offset < len(view):
        (length,) = struct.unpack_from("<I", view, offset)
        frame = view[offset + 4 : offset + 4 + length]
        offset += 4 + length
        started_s = time.perf_counter()
        section, _ = decoder.decode(frame)
        seconds[section] = seconds.get(section, 0.0) + time.perf_counter() - started_s
        sizes[section] = sizes.get(section, 0) + length
    for section in sizes:
        rows.append(
            {
                "part": f"section {section} (msgpack decode only)",
                "MiB": _mib(sizes[section]),
                "decode s": seconds[section],
                "decode s, again": "",
            }
        )
    if array_bytes:
        matrices = {"part": "vector matrices (.npy, read through mmap)", "MiB": _mib(array_bytes)}
        rows.append({**matrices, "decode s": "", "decode s, again": ""})
    return rows

async def _time_range(log: FileLog) -> tuple[int, int]:
    """The first and the last log timestamp of the topic."""
    ends = await log.end_offsets(TOPIC)
    first: list[int] = []
    last: list[int] = []
    for partition, end in enumerate(ends):
        if end:
            first += [record.timestamp_ms for record in await log.read(TOPIC, partition, 0, max_records=1)]
            last += [record.timestamp_ms for record in await log.read(TOPIC, partition, end - 1, max_records=1)]
    return min(first), max(last)


async def time_travel(logs: Logs, options: Options) -> TimeTravelResults:
    log_path, build = await logs.get(options.commands)
    snapshot_dir = options.root / "snapshots"
    snapshots = await write_snapshots(log_path, snapshot_dir, sum(build.per_partition), options.snapshot_every)
    gc.collect()
    rng = random.Random(options.seed)
    total = sum(build.per_partition)
    samples: list[CutSample] = []
    log = await FileLog.open(log_path, fsync="never")
    try:
        first_ms, last_ms = await _time_range(log)
        for index in range(options.cuts):
            for mode in options.cut_modes:  # interleaved, so a busy spell hurts both modes alike
                resolve_s = 0.0
                if mode == "offset":
                    position = rng.randint(0, total)
                    cut = list(rebuild_bench.tail_cut(build.per_partition, total - position).values())
                else:
                    at_ms = rng.randint(first_ms, last_ms)
                    started_s = time.perf_counter()
                    cut = await timetravel.cut_at_time(log, TOPIC, at_ms)
                    resolve_s = time.perf_counter() - started_s
                sample = await time_cut(log, snapshot_dir, mode, cut, resolve_s, rng)
                samples.append(sample)
                _note(
                    f"time travel {index + 1}/{options.cuts} {mode}: cut at {sample.commands:,}, snapshot "
                    f"{sample.snapshot_commands:,}, {sample.total_s:.2f} s (load {sample.load_s:.2f}, "
                    f"tail {sample.tail_s:.2f})"
                )
                gc.collect()
    finally:
        await log.close()
    gc.collect()
    newest = max(list_snapshots(snapshot_dir, TOPIC), key=lambda info: sum(info.cut))
    _note(f"time travel: anatomy of the load of the snapshot at {sum(newest.cut):,} commands")
    anatomy = snapshot_anatomy(newest)
    return TimeTravelResults(build, snapshots, samples, options.snapshot_every, sum(newest.cut), anatomy)


# ----------------------------------------------------------------------------------- part 2: branches


@dataclass(slots=True)
class SyncCounter:
    """Counts the log's fdatasync/fsync calls and their seconds (they run on the log's writer threads)."""

    calls: int = 0
    seconds: float = 0.0

    def reset(self) -> None:
        self.calls, self.seconds = 0, 0.0

    def _timed(self, sync: Callable[[int], None]) -> Callable[[int], None]:
        def timed(fd: int) -> None:
            started_s = time.perf_counter()
            try:
                sync(fd)
            finally:
                self.calls += 1
                self.seconds += time.perf_counter() - started_s

        return timed

    def disk(self) -> Disk:
        return Disk(sync_file=self._timed(os.fdatasync), sync_directory=self._timed(os.fsync))


@dataclass(frozen=True, slots=True)
class BranchSample:
    seconds: float
    syncs: int
    sync_s: float


@dataclass(frozen=True, slots=True)
class BranchResults:
    parent_commands: int
    partitions: int
    samples: list[BranchSample]


async def time_branches(parents: Sequence[tuple[int, Path]], count: int) -> list[BranchResults]:
    """Per parent, `count` timed `create_branch` calls (after one untimed) at its end, fsync=always.

    Every parent log is open at once and the creations go round the parents in turn, so a busy
    spell of the disk or the CPU falls on every parent size alike.
    """
    counters = [SyncCounter() for _ in parents]
    logs: list[FileLog] = []
    samples: list[list[BranchSample]] = [[] for _ in parents]
    try:
        for (_, path), counter in zip(parents, counters, strict=True):
            logs.append(await FileLog.open(path, fsync="always", disk=counter.disk()))
        ends = [await log.end_offsets(TOPIC) for log in logs]
        for index in range(count + 1):
            for log, counter, cut, taken in zip(logs, counters, ends, samples, strict=True):
                counter.reset()
                started_s = time.perf_counter()
                await log.create_branch(f"branch.bench-{index}", TOPIC, cut)
                elapsed_s = time.perf_counter() - started_s
                if index > 0:
                    taken.append(BranchSample(elapsed_s, counter.calls, counter.seconds))
    finally:
        for log in logs:
            await log.close()
    return [BranchResults(size, len(cut), taken) for (size, _), cut, taken in zip(parents, ends, samples, strict=True)]


async def branches(logs: Logs, options: Options) -> list[BranchResults]:
    parents = [(size, (await logs.get(size))[0]) for size in options.branch_sizes]
    results = await time_branches(parents, options.branches)
    for result in results:
        median_ms = statistics.median(sample.seconds for sample in result.samples) * 1000
        _note(f"branches: parent of {result.parent_commands:,} commands, median {median_ms:.1f} ms")
    return results


# ----------------------------------------------------------------------------------- part 3: replay


class Tools:
    """Deterministic tools and a toy model that count their calls (a replay must make none)."""

    def __init__(self) -> None:
        self.calls = 0

    def search(self, args: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return {"hits": [f"{args['q']} #1", f"{args['q']} #2"], "note": THOUGHT}

    async def price(self, args: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return {"route": args["route"], "eur": 10.5 * len(args["route"])}

    def llm(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        self.calls += 1
        return {"choice": f"TP-{len(messages[0]['content']) % 997}", "why": THOUGHT}


Agent = Callable[[Recorder], Awaitable[int]]


def make_agent(kind: str, steps: int, tools: Tools) -> Agent:
    """An agent of `kind` that issues exactly `steps` recorder steps (see the module docstring)."""

    async def events(rec: Recorder, index: int) -> None:
        await rec.event("step", {"i": index, "thought": THOUGHT})

    async def tool(rec: Recorder, index: int) -> None:
        await rec.tool_call("search", {"q": f"flights {index}"}, tools.search)

    async def mixed(rec: Recorder, index: int) -> None:
        phase = index % 6
        if phase == 0:
            await rec.event("task", {"goal": f"book trip {index}", "thought": THOUGHT})
        elif phase == 1:
            await rec.tool_call("search", {"q": f"flights {index}"}, tools.search)
        elif phase == 2:
            await rec.tool_call("price", {"route": f"LIS-OPO-{index}"}, tools.price)
        elif phase == 3 and rec.steps + 2 <= steps:  # a model call is two steps (input, output)
            await rec.model_call("toy-llm", [{"role": "user", "content": f"pick for trip {index}"}], tools.llm)
        elif phase == 5:
            await rec.put("plans", f"trip-{index}", {"index": index, "thought": THOUGHT})
        else:
            await rec.event("decision", {"trip": index, "thought": THOUGHT})

    step = {"events": events, "tools": tool, "mixed": mixed}[kind]

    async def agent(rec: Recorder) -> int:
        index = 0
        while rec.steps < steps:
            await step(rec, index)
            index += 1
        return rec.steps

    return agent


@dataclass(frozen=True, slots=True)
class RecordedKind:
    kind: str
    run_id: str
    steps: int
    run_events: int
    last_hash: str | None
    begun_at_ms: int
    record_s: float


@dataclass(slots=True)
class Timings:
    """Repeated timings of one measure of one run: seconds per repeat, and what each repeat handled."""

    measure: str
    kind: str
    items: int
    seconds: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def per_s(self) -> float:
        return self.items / self.median_s if self.median_s > 0 else 0.0


@dataclass(slots=True)
class ReplayResults:
    recorded: list[RecordedKind]
    timings: list[Timings]
    checks: list[str]
    profile: str | None = None
    profile_kind: str = ""


def _settings(data_dir: Path, fsync: str) -> Settings:
    """A node on the embedded file log in `data_dir`: no snapshots, no sweeper (the tests' `file_settings`)."""
    return memory_settings(log=f"file://{data_dir}", fsync=fsync)


async def _replayed(client: AsyncAgentlogClient | None, run: RecordedKind, cassette: Cassette | None) -> str | None:
    """Replay `run` once; None when it matched every step and called no tool, else what went wrong."""
    tools = Tools()
    report = await replay_run(client, run.run_id, make_agent(run.kind, run.steps, tools), cassette=cassette)
    if not report.ok or report.replayed != run.steps or tools.calls:
        return f"{run.kind}: {report} (tool calls {tools.calls})"
    return None


async def _repeat(
    timings: Timings, repeats: int, action: Callable[[], Awaitable[str | None]], checks: list[str]
) -> None:
    await action()  # warm-up, untimed (connections, caches)
    for _ in range(repeats):
        gc.collect()
        started_s = time.perf_counter()
        problem = await action()
        timings.seconds.append(time.perf_counter() - started_s)
        if problem is not None:
            checks.append(f"{timings.measure}: {problem}")


async def record_and_replay_embedded(data_dir: Path, options: Options, results: ReplayResults) -> dict[str, Cassette]:
    """Record one run per kind through the embedded node, then time harness replays and fetches through it."""
    cassettes: dict[str, Cassette] = {}
    async with AsyncEmbeddedAgentlog(_settings(data_dir, options.record_fsync), agent_id="bench-agent") as client:
        for kind in options.agents:
            tools = Tools()
            started_s = time.perf_counter()
            recorded = await record_run(client, make_agent(kind, options.run_steps, tools), name=f"bench {kind}")
            record_s = time.perf_counter() - started_s
            view = await client.get_run(recorded.run_id)
            assert view is not None
            assert view.begun_at_ms is not None
            results.recorded.append(
                RecordedKind(kind, view.run_id, recorded.steps, view.events, view.last_hash, view.begun_at_ms, record_s)
            )
            _note(f"replay: recorded {recorded.steps:,} {kind} steps in {record_s:.1f} s")
        for run in results.recorded:
            cassette = await fetch_cassette(client, run.run_id)
            cassettes[run.kind] = cassette
            if len(cassette.entries) != run.steps:
                results.checks.append(f"{run.kind}: the cassette holds {len(cassette.entries)} of {run.steps} steps")

            async def harness(run: RecordedKind = run, cassette: Cassette = cassette) -> str | None:
                return await _replayed(None, run, cassette)

            async def fetch(run: RecordedKind = run) -> str | None:
                fetched = await fetch_cassette(client, run.run_id)
                return None if len(fetched.entries) == run.steps else f"{len(fetched.entries)} entries"

            async def end_to_end(run: RecordedKind = run) -> str | None:
                return await _replayed(client, run, None)

            for measure, action in (
                ("harness replay (cassette in memory, no I/O)", harness),
                ("fetch_cassette, embedded (in-process ASGI)", fetch),
                ("replay_run end to end, embedded (fetch + replay)", end_to_end),
            ):
                timings = Timings(measure, run.kind, run.steps)
                await _repeat(timings, options.repeats, action, results.checks)
                results.timings.append(timings)
                _note(f"replay: {run.kind}: {measure}: {timings.median_s:.3f} s")
    return cassettes


async def replay_over_http(data_dir: Path, options: Options, results: ReplayResults) -> None:
    """Time the cassette fetch and end-to-end replay against a real node over loopback HTTP."""
    with serve(_settings(data_dir, options.record_fsync)) as base_url:
        async with AsyncAgentlogClient(base_url, agent_id="bench-agent", timeout_s=120) as client:
            for run in results.recorded:

                async def fetch(run: RecordedKind = run) -> str | None:
                    fetched = await fetch_cassette(client, run.run_id)
                    return None if len(fetched.entries) == run.steps else f"{len(fetched.entries)} entries"

                async def end_to_end(run: RecordedKind = run) -> str | None:
                    return await _replayed(client, run, None)

                for measure, action in (
                    ("fetch_cassette, HTTP (uvicorn, loopback)", fetch),
                    ("replay_run end to end, HTTP (fetch + replay)", end_to_end),
                ):
                    timings = Timings(measure, run.kind, run.steps)
                    await _repeat(timings, options.repeats, action, results.checks)
                    results.timings.append(timings)
                    _note(f"replay: {run.kind}: {measure}: {timings.median_s:.3f} s")


def fold_run(found: Sequence[tuple[Record, Envelope]]) -> RunsModel:
    """A fresh runs model fed the run's run.begin / event.append / run.end, each command id once per partition."""
    runs = RunsModel()
    seen: set[tuple[int, str]] = set()
    for record, envelope in found:
        key = (record.partition, envelope.command_id)
        if envelope.type not in RunsModel.command_types or key in seen:
            continue
        seen.add(key)
        with contextlib.suppress(Rejected):
            runs.apply(ApplyContext(envelope, record.partition, record.offset, record.timestamp_ms))
    return runs


async def replay_from_log(data_dir: Path, options: Options, results: ReplayResults) -> None:
    """The raw log side: the cassette's log scan, the runs model of a run rebuilt from the log, a full rebuild."""
    log = await FileLog.open(data_dir, fsync="never")
    try:
        ends = await log.end_offsets(TOPIC)
        for run in results.recorded:
            scan = Timings("cassette log scan (run_commands from the run's begin)", run.kind, run.steps)
            rebuilt = Timings("runs model of the run rebuilt from the log (scan from 0 + fold)", run.kind, run.steps)
            folds: list[float] = []
            for _ in range(options.repeats):
                gc.collect()
                started_s = time.perf_counter()
                found, _ = await run_commands(
                    log, TOPIC, DEFAULT_TENANT, run.run_id, since_ms=run.begun_at_ms, until=ends, limit=10**9
                )
                scan.seconds.append(time.perf_counter() - started_s)
                gc.collect()
                started_s = time.perf_counter()
                found, _ = await run_commands(
                    log, TOPIC, DEFAULT_TENANT, run.run_id, since_ms=0, until=ends, limit=10**9
                )
                scanned_s = time.perf_counter()
                runs = fold_run(found)
                folded_s = time.perf_counter()
                rebuilt.seconds.append(folded_s - started_s)
                folds.append(folded_s - scanned_s)
                view = runs.get_run(DEFAULT_TENANT, run.run_id)
                if view is None or (view.events, view.last_hash) != (run.run_events, run.last_hash):
                    results.checks.append(f"{run.kind}: the runs model rebuilt from the log differs from the node's")
            fold_s = statistics.median(folds)
            rebuilt.note = (
                f"fold {fold_s * 1000:.1f} ms for {run.run_events:,} run events "
                f"({run.run_events / fold_s:,.0f}/s); the rest is the scan"
                if run.run_events and fold_s > 0
                else f"no run events (fold of begin/end {fold_s * 1000:.1f} ms); the rest is the scan"
            )
            scan.note = f"log of {sum(ends):,} records in all"
            results.timings += [scan, rebuilt]
            _note(f"replay: {run.kind}: log scan {scan.median_s:.3f} s, runs model rebuilt {rebuilt.median_s:.3f} s")
        everything = Timings("every model rebuilt from zero (timetravel.rebuild to the end)", "all", sum(ends))
        for _ in range(options.repeats):
            gc.collect()
            started_s = time.perf_counter()
            await timetravel.rebuild(log, TOPIC, ends)
            everything.seconds.append(time.perf_counter() - started_s)
        everything.note = "items = log records (all runs, begin/end included)"
        results.timings.append(everything)
    finally:
        await log.close()


async def profiled_harness(run: RecordedKind, cassette: Cassette) -> str:
    """cProfile of one harness replay (cassette in memory): the top 18 functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        await _replayed(None, run, cassette)
    finally:
        profiler.disable()
    output = io.StringIO()
    pstats.Stats(profiler, stream=output).strip_dirs().sort_stats(pstats.SortKey.TIME).print_stats(18)
    return "\n".join(line.rstrip() for line in output.getvalue().strip().splitlines())


async def replay(options: Options) -> ReplayResults:
    data_dir = options.root / "runs"
    results = ReplayResults([], [], [])
    cassettes = await record_and_replay_embedded(data_dir, options, results)
    if options.http:
        await replay_over_http(data_dir, options, results)
    await replay_from_log(data_dir, options, results)
    harness = [t for t in results.timings if t.measure.startswith("harness")]
    slowest = min(harness, key=lambda t: t.per_s, default=None)
    wanted = options.profile == "always" or (
        options.profile == "auto" and slowest is not None and slowest.per_s < TARGET_REPLAY_STEPS_PER_S
    )
    if wanted and slowest is not None:
        run = next(r for r in results.recorded if r.kind == slowest.kind)
        results.profile = await profiled_harness(run, cassettes[run.kind])
        results.profile_kind = run.kind
    return results


# ----------------------------------------------------------------------------------- the run


@dataclass(frozen=True, slots=True)
class Options:
    parts: tuple[int, ...]
    commands: int
    snapshot_every: int
    templates: int
    partitions: int
    append_records: int
    seed: int
    cuts: int
    cut_modes: tuple[str, ...]
    branch_sizes: tuple[int, ...]
    branches: int
    run_steps: int
    agents: tuple[str, ...]
    repeats: int
    record_fsync: str
    http: bool
    profile: str
    root: Path


@dataclass(slots=True)
class Results:
    logs: Logs
    time_travel: TimeTravelResults | None = None
    branches: list[BranchResults] | None = None
    replay: ReplayResults | None = None
    seconds: dict[str, float] = field(default_factory=dict)


async def run_all(options: Options) -> Results:
    results = Results(Logs(options.root, options.templates, options.partitions, options.seed, options.append_records))
    if 1 in options.parts:
        watch = Stopwatch()
        results.time_travel = await time_travel(results.logs, options)
        results.seconds["part 1"] = watch.wall_s()
        gc.collect()
    if 2 in options.parts:
        watch = Stopwatch()
        results.branches = await branches(results.logs, options)
        results.seconds["part 2"] = watch.wall_s()
    if 3 in options.parts:
        watch = Stopwatch()
        results.replay = await replay(options)
        results.seconds["part 3"] = watch.wall_s()
    return results


# ----------------------------------------------------------------------------------- report


def _mib(size: int) -> float:
    return size / 2**20


def _stat(values: Sequence[float], statistic: str) -> float:
    if statistic == "mean":
        return statistics.fmean(values)
    if statistic == "max":
        return max(values)
    return _common.percentile(values, float(statistic.removeprefix("p")))


def snapshot_rows(snapshots: Sequence[SnapshotBuilt]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    previous = 0
    for snapshot in snapshots:
        steps = snapshot.commands - previous
        rows.append(
            {
                "snapshot at (commands)": snapshot.commands,
                "catch-up s": snapshot.catch_up_s,
                "catch-up commands/s": round(steps / snapshot.catch_up_s) if snapshot.catch_up_s > 0 else "",
                "write s": snapshot.write_s,
                "size MiB": _mib(snapshot.size_bytes),
            }
        )
        previous = snapshot.commands
    return rows


def cut_rows(samples: Sequence[CutSample], mode: str) -> list[dict[str, object]]:
    chosen = [sample for sample in samples if sample.mode == mode]
    if not chosen:
        return []
    label = f"{mode} ({len(chosen)} cuts)"
    columns: dict[str, Callable[[CutSample], float]] = {
        "total s": lambda s: s.total_s,
        "CPU s": lambda s: s.cpu_s,
        "cut_at_time ms": lambda s: s.resolve_s * 1000,
        "find snapshot ms": lambda s: s.list_s * 1000,
        "load snapshot s": lambda s: s.load_s,
        "tail replay s": lambda s: s.tail_s,
        "KV read ms": lambda s: s.read_s * 1000,
        "of which clock ms": lambda s: s.clock_s * 1000,
        "tail commands": lambda s: s.tail_commands,
    }
    rows: list[dict[str, object]] = []
    for statistic in ("p50", "p99", "max", "mean"):
        row: dict[str, object] = {"cuts": label, "statistic": statistic}
        for name, value in columns.items():
            figure = _stat([value(s) for s in chosen], statistic)
            row[name] = round(figure) if name == "tail commands" else figure
        rows.append(row)
    total = sum(s.total_s for s in chosen)
    share: dict[str, object] = {"cuts": label, "statistic": "share of summed total %"}
    for name, part in (
        ("cut_at_time ms", sum(s.resolve_s for s in chosen)),
        ("find snapshot ms", sum(s.list_s for s in chosen)),
        ("load snapshot s", sum(s.load_s for s in chosen)),
        ("tail replay s", sum(s.tail_s for s in chosen)),
        ("KV read ms", sum(s.read_s for s in chosen)),
        ("of which clock ms", sum(s.clock_s for s in chosen)),
    ):
        share[name] = part / total * 100
    rows.append(share)
    return rows


def branch_rows(results: Sequence[BranchResults]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for result in results:
        seconds = [s.seconds for s in result.samples]
        rows.append(
            {
                "parent commands": result.parent_commands,
                "creations": len(result.samples),
                "median ms": statistics.median(seconds) * 1000,
                "p90 ms": _common.percentile(seconds, 90) * 1000,
                "min ms": min(seconds) * 1000,
                "max ms": max(seconds) * 1000,
                "syncs per creation": round(statistics.median(s.syncs for s in result.samples)),
                "median ms in syncs": statistics.median(s.sync_s for s in result.samples) * 1000,
                "median ms outside syncs": statistics.median(s.seconds - s.sync_s for s in result.samples) * 1000,
            }
        )
    return rows


def recorded_rows(recorded: Sequence[RecordedKind]) -> list[dict[str, object]]:
    return [
        {
            "run": run.kind,
            "steps (commands)": run.steps,
            "run events": run.run_events,
            "record s": run.record_s,
            "recorded steps/s": round(run.steps / run.record_s),
        }
        for run in recorded
    ]


def replay_rows(timings: Sequence[Timings]) -> list[dict[str, object]]:
    return [
        {
            "measure": t.measure,
            "run": t.kind,
            "items": t.items,
            "median s": t.median_s,
            "min s": min(t.seconds),
            "items/s": round(t.per_s),
            "note": t.note,
        }
        for t in timings
    ]


def dataset(options: Options, results: Results) -> dict[str, str]:
    facts: dict[str, str] = {}
    if results.logs.built:
        sizes = ", ".join(f"{size:,}" for size in sorted(results.logs.built))
        facts["logs"] = (
            f"{sizes} commands of rebuild.py's mixed workload (random_workload(seed={options.seed}), "
            f"{options.templates:,} templates, fresh command ids), FileLog, topic `{TOPIC}` of "
            f"{options.partitions} partitions, written fsync=never, read from the page cache"
        )
    if results.time_travel is not None:
        facts["part 1"] = (
            f"snapshots every {options.snapshot_every:,} commands, all {len(results.time_travel.snapshots)} kept "
            f"(a node keeps {SNAPSHOTS_KEPT}); {options.cuts} cuts per mode ({', '.join(options.cut_modes)}), "
            f"seed {options.seed}"
        )
    if results.branches is not None:
        facts["part 2"] = (
            f"create_branch at the parent's end offsets, fsync=always, {options.branches} timed creations per "
            "parent after one untimed"
        )
    if results.replay is not None:
        facts["part 3"] = (
            f"runs of {options.run_steps:,} recorder steps ({', '.join(options.agents)}), recorded through "
            f"AsyncEmbeddedAgentlog (embedded file log, fsync={options.record_fsync}, no snapshots); each "
            f"measure repeated {options.repeats} times, median reported; payloads carry a "
            f"{len(THOUGHT)}-byte text"
        )
    facts["data"] = str(options.root)
    return facts


def _verdict(target: str, measured: str, met: bool) -> dict[str, object]:
    return {"target": target, "measured": measured, "met": "yes" if met else "NO"}


def verdicts(results: Results) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    if results.time_travel is not None:
        for mode in CUT_MODES:
            chosen = [s.total_s for s in results.time_travel.samples if s.mode == mode]
            if chosen:
                p50, p99, worst = _common.percentile(chosen, 50), _common.percentile(chosen, 99), max(chosen)
                rows.append(
                    _verdict(
                        f"time-travel read ({mode} cuts) ≤ {TARGET_TIME_TRAVEL_S:g} s",
                        f"p50 {p50:.2f} s, p99 {p99:.2f} s, max {worst:.2f} s",
                        p99 <= TARGET_TIME_TRAVEL_S,
                    )
                )
    if results.branches is not None:
        medians = {r.parent_commands: statistics.median(s.seconds for s in r.samples) * 1000 for r in results.branches}
        text = ", ".join(f"{size:,}: {ms:.1f} ms" for size, ms in medians.items())
        flat = max(medians.values()) <= 2 * min(medians.values()) if medians else False
        rows.append(
            _verdict(
                f"branch creation < {TARGET_BRANCH_MS:g} ms (median)",
                text,
                all(ms < TARGET_BRANCH_MS for ms in medians.values()),
            )
        )
        rows.append(_verdict("branch creation flat in log size (max median ≤ 2 x min)", text, flat))
        outside = {
            r.parent_commands: statistics.median(s.seconds - s.sync_s for s in r.samples) * 1000
            for r in results.branches
        }
        rows.append(
            _verdict(
                "branch creation flat in log size, time outside fsyncs (max median ≤ 2 x min)",
                ", ".join(f"{size:,}: {ms:.1f} ms" for size, ms in outside.items()),
                max(outside.values()) <= 2 * min(outside.values()) if outside else False,
            )
        )
    if results.replay is not None:
        for timings in results.replay.timings:
            if timings.measure.startswith(("harness", "replay_run")):
                rows.append(
                    _verdict(
                        f"run replay ≥ {TARGET_REPLAY_STEPS_PER_S:,} steps/s: {timings.measure}, {timings.kind}",
                        f"{timings.per_s:,.0f} steps/s ({timings.items:,} steps in {timings.median_s:.3f} s)",
                        timings.per_s >= TARGET_REPLAY_STEPS_PER_S,
                    )
                )
    return rows


def print_report(header: dict[str, dict[str, str]], results: Results) -> None:
    print(f"**Command**: `{' '.join(['python', *sys.argv])}`")
    print()
    _common.print_facts(header)
    if results.time_travel is not None:
        print("### 1. Time-travel read at a random cut")
        print()
        rows = snapshot_rows(results.time_travel.snapshots)
        print("Snapshots (setup, not the measure):")
        print()
        print(_common.markdown_table(rows, list(rows[0])) if rows else "(none: the log is shorter than a step)")
        print()
        cut_table = [row for mode in CUT_MODES for row in cut_rows(results.time_travel.samples, mode)]
        columns = ["cuts", "statistic", "total s", "CPU s", "cut_at_time ms", "find snapshot ms", "load snapshot s"]
        columns += ["tail replay s", "KV read ms", "of which clock ms", "tail commands"]
        print(_common.markdown_table(cut_table, columns))
        print()
        samples = results.time_travel.samples
        exact = sum(s.exact for s in samples)
        found = sum(s.found for s in samples)
        from_zero = sum(s.snapshot_commands == 0 for s in samples)
        every = results.time_travel.snapshot_every
        longer = sum(s.tail_commands > every + every // 20 for s in samples)
        per_mode = len(samples) // max(1, len({s.mode for s in samples}))
        print(
            "total = cut_at_time (time cuts only) + `timetravel.rebuild` + KV read (the reader's clock, "
            "`log_time_at`, then `RecordsModel.get`); each column's statistic is "
            f"taken on its own (they do not add up), the share row does. States exactly at their cut: "
            f"{exact}/{len(samples)}; KV reads that found the key: {found}/{len(samples)}; rebuilt from zero "
            f"(no snapshot at or below the cut): {from_zero}; tails longer than a snapshot step (+5%), i.e. the "
            f"newest snapshot below the cut's position was above it on some partition: {longer}. With {per_mode} "
            "cuts per mode, p99 is close to the max."
        )
        print()
        print(
            f"Where a snapshot load goes, for the newest snapshot ({results.time_travel.anatomy_commands:,} commands):"
        )
        print()
        print(_common.markdown_table(results.time_travel.anatomy, list(results.time_travel.anatomy[0])))
        print()
        print(
            "The whole row is `load_snapshot` (every file's checksum, the msgpack pieces, the .npy matrices, "
            "the models rebuilt from their rows); the section rows time msgpack decoding alone."
        )
        print()
    if results.branches is not None:
        print("### 2. Branch creation")
        print()
        rows = branch_rows(results.branches)
        print(_common.markdown_table(rows, list(rows[0])))
        print()
        partitions = results.branches[0].partitions if results.branches else 0
        print(
            f"One creation makes a topic of {partitions} empty partitions: a staging directory, per partition a "
            "directory and an empty segment (fdatasync + directory fsync), topic.json (fdatasync), a rename and "
            "a directory fsync, then the partition stores are opened. Nothing of the parent is copied."
        )
        print()
    if results.replay is not None:
        replay = results.replay
        print("### 3. Run replay")
        print()
        rows = recorded_rows(replay.recorded)
        print(_common.markdown_table(rows, list(rows[0])))
        print()
        rows = replay_rows(replay.timings)
        print(_common.markdown_table(rows, list(rows[0])))
        print()
        print(
            "items = recorder steps of the run (one recorded command each; in the `events` run every step is a "
            "run event), except the last row. Harness replay = the agent run again against the cassette held in "
            "memory: each step builds its command, compares it with the recorded one and answers the recorded "
            "output; nothing is read or written. End to end adds fetching the cassette. The HTTP node runs in a "
            "thread of this process, so client and server share one GIL."
        )
        print()
        print("Checks: " + ("every replay matched every step and called no tool; " if not replay.checks else ""))
        for check in replay.checks:
            print(f"- {check}")
        print()
        if replay.profile is not None:
            print(f"cProfile of one harness replay of the `{replay.profile_kind}` run, top 18 by own time:")
            print()
            print("```")
            print(replay.profile)
            print("```")
            print()
    rows = verdicts(results)
    if rows:
        print("### Targets")
        print()
        print(_common.markdown_table(rows, ["target", "measured", "met"]))
        print()
    spent = ", ".join(f"{part} {seconds:.0f} s" for part, seconds in results.seconds.items())
    print(f"Wall time: {spent}. Load average at the end: {_common.load_average()}. {NOISE_NOTE}")


# ----------------------------------------------------------------------------------- command line


def _count(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a non-negative integer")
    return value


def _counts(text: str) -> tuple[int, ...]:
    return tuple(dict.fromkeys(_count(part) for part in text.split(",") if part.strip()))


def _names(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
        unknown = [name for name in names if name not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a comma-separated list of {', '.join(allowed)}")
        return names

    return parse


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time travel, branch creation and run replay of agentlog, measured.")
    parser.add_argument("--parts", type=_counts, default=(1, 2, 3), help="parts to run (default 1,2,3)")
    parser.add_argument("--commands", type=_count, default=1_000_000, help="commands in the part-1 log (1,000,000)")
    parser.add_argument("--snapshot-every", type=_count, default=100_000, help="commands between snapshots (100,000)")
    parser.add_argument("--templates", type=_count, default=10_000, help="distinct workload envelopes (10,000)")
    parser.add_argument("--partitions", type=_count, default=8, help="partitions of the topic (default 8, as a node)")
    parser.add_argument(
        "--append-records",
        type=_count,
        default=100,
        help="records per append while building, i.e. per log frame (100; rebuild.py uses 2,000)",
    )
    parser.add_argument("--seed", type=_count, default=7, help="seed of the workload and of the cuts (7)")
    parser.add_argument("--cuts", type=_count, default=20, help="random cuts per mode (20)")
    parser.add_argument(
        "--cut-modes", type=_names(CUT_MODES), default=CUT_MODES, help="offset and/or time (default offset,time)"
    )
    parser.add_argument(
        "--branch-sizes",
        type=_counts,
        default=(10_000, 100_000, 1_000_000),
        help="parent sizes in commands (default 10000,100000,1000000)",
    )
    parser.add_argument("--branches", type=_count, default=15, help="timed creations per parent size (15)")
    parser.add_argument("--run-steps", type=_count, default=10_000, help="recorder steps per recorded run (10,000)")
    parser.add_argument(
        "--agents", type=_names(AGENT_KINDS), default=AGENT_KINDS, help="runs to record (default events,tools,mixed)"
    )
    parser.add_argument("--repeats", type=_count, default=3, help="timings per replay measure; median (3)")
    parser.add_argument(
        "--record-fsync", default="never", help="fsync of the part-3 node's log: never, always, interval:<ms>"
    )
    parser.add_argument("--no-http", action="store_true", help="skip the real HTTP node in part 3")
    parser.add_argument(
        "--profile",
        choices=["auto", "always", "never"],
        default="auto",
        help="cProfile a harness replay: auto = only if it misses the target (default auto)",
    )
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the temp data dir goes (default: .)")
    return parser.parse_args(argv)


def check_arguments(arguments: argparse.Namespace) -> str | None:
    """Why the arguments cannot run, or None."""
    if not arguments.parts or any(part not in (1, 2, 3) for part in arguments.parts):
        return "--parts must list some of 1, 2, 3"
    if not 1_000 <= arguments.commands <= 100_000_000:
        return "--commands must be within 1,000..100,000,000"
    if not 1_000 <= arguments.snapshot_every <= arguments.commands:
        return "--snapshot-every must be within 1,000..--commands"
    if not 1 <= arguments.templates <= 1_000_000:
        return "--templates must be within 1..1,000,000"
    if not 1 <= arguments.partitions <= 1_024:
        return "--partitions must be within 1..1,024"
    if not 1 <= arguments.append_records <= 10_000:
        return "--append-records must be within 1..10,000"
    if not 1 <= arguments.cuts <= 10_000:
        return "--cuts must be within 1..10,000"
    if not arguments.branch_sizes or any(not 1_000 <= size <= 100_000_000 for size in arguments.branch_sizes):
        return "--branch-sizes must be within 1,000..100,000,000"
    if not 1 <= arguments.branches <= 10_000:
        return "--branches must be within 1..10,000"
    if not 10 <= arguments.run_steps <= 90_000:
        return "--run-steps must be within 10..90,000 (a cassette holds at most 100,000 commands)"
    if not 1 <= arguments.repeats <= 100:
        return "--repeats must be within 1..100"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    problem = check_arguments(arguments)
    if problem is not None:
        print(f"time_machine: {problem}", file=sys.stderr)
        return 2
    arguments.dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="agentlog-bench-", dir=arguments.dir))
    options = Options(
        parts=tuple(sorted(arguments.parts)),
        commands=arguments.commands,
        snapshot_every=arguments.snapshot_every,
        templates=arguments.templates,
        partitions=arguments.partitions,
        append_records=arguments.append_records,
        seed=arguments.seed,
        cuts=arguments.cuts,
        cut_modes=arguments.cut_modes,
        branch_sizes=arguments.branch_sizes,
        branches=arguments.branches,
        run_steps=arguments.run_steps,
        agents=arguments.agents,
        repeats=arguments.repeats,
        record_fsync=arguments.record_fsync,
        http=not arguments.no_http,
        profile=arguments.profile,
        root=root,
    )
    try:
        machine = _common.machine_info(root)
        results = asyncio.run(run_all(options))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    versions = {
        **_common.stack_versions(),
        "fastapi": _common.package_version("fastapi"),
        "pydantic": _common.package_version("pydantic"),
        "orjson": _common.package_version("orjson"),
    }
    header = {"Machine": machine, "Versions": versions, "Dataset": dataset(options, results)}
    print_report(header, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
