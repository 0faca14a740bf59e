"""In-process operations per second of an agentlog node (embedded log, fsync=always) beside Redis-AOF via redis-py.

Run it by hand (never in CI) from the repository root, with the project's environment:

    python bench/node_ops.py                             # every cell, 3 s each: about a minute
    python bench/node_ops.py --seconds 1 --keys 2000     # a quick look
    python bench/node_ops.py --json bench/results/node_ops.json
    python bench/node_ops.py --help

Redis needs `redis-server` on PATH (`apt-get update && apt-get install -y redis-server`) and redis-py;
`--no-redis` leaves it out.

One node (`Node.start`) on the embedded file log under fsync=always, in a temporary directory under
`--dir` (default: the current directory, so the disk under test is the repository's), 8 partitions, no
TTL sweeper, no snapshots. All writes go to one tenant and one namespace (so one partition), as every
Redis command goes to one server. Operations, each timed from the caller's side:

- get: `node.records.get(tenant, namespace, key, node.now_ms())` on preloaded keys, one thread, a
  tight loop (no per-call latency: a timer call would cost as much as the get).
- put: `node.execute(stamp(KvPut(...)))`: validate + encode + append + fdatasync (group commit) +
  apply + outcome, from 1 and from 16 asyncio tasks; the envelope is built inside the timed call.
- put, pre-built: the same with envelopes stamped before the clock starts (`--prebuilt-puts` of them,
  shared by 16 tasks): what the log and engine cost without building the command.
- cas: `StateCas` with the right expected version, 16 tasks each on its own name.
- batch put: `KvBatchPut` of `--batch` items per command from 1 and 16 tasks, built in the call, and
  from 16 tasks pre-built (`--prebuilt-batches`). Items count as commands in items/s.
- stamp only: building and validating the envelope of a put or a batch put, no log (CPU context).

Beside it, in the same run, one redis-server (appendonly yes, appendfsync always, save '', no AOF
rewrite) on loopback, driven by redis-py with one client per thread: GET (1 thread), SET (1 and 16
threads), CAS as a Lua script checking a version field (one round trip) and as WATCH/HGET/MULTI/HSET/EXEC
(16 threads, distinct names), MSET of `--batch` keys (1 and 16 threads). Values are the same ~100 B
JSON documents on both sides.

Cells run in pairs (an agentlog operation, then its Redis equivalent), so a noisy neighbour hurts both
alike. Stdout gets the machine, versions, dataset, the Markdown tables, ratios and targets; progress
goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import shutil
import string
import sys
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _common

from commands import Caller, Envelope, KvBatchPut, KvItem, KvPut, StateCas, stamp
from commands.limits import MAX_BATCH_COMMANDS
from query_api.node.node import Node
from query_api.settings import Settings

if TYPE_CHECKING:
    import redis

TENANT = "bench"
NAMESPACE = "bench"
CALLER = Caller(tenant=TENANT, agent_id="bench")
#: Distinct keys each writer cycles through (puts overwrite them, as SET does).
KEYS_PER_WRITER = 1_000
#: Keys written per preload command (the most one kv.batch_put holds).
PRELOAD_BATCH = 1_000
#: Gets between two looks at the clock in the get loop.
GET_CHUNK = 1_000
#: Redis config beyond durability: no background AOF rewrite (a fork) in the middle of a cell.
REDIS_EXTRA_CONFIG = {"auto-aof-rewrite-percentage": "0"}
PAYLOAD_SEED = 20_240_602
NOISE_NOTE = "Figures from a shared machine are noisy: compare the ratios of one run, not figures across runs."

#: Compare-and-set in one round trip: set `value` and bump `version` iff `version` is ARGV[1].
REDIS_CAS_LUA = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then
  return {0, current}
end
redis.call('HSET', KEYS[1], 'version', current + 1, 'value', ARGV[2])
return {1, current + 1}
"""

AsyncOperation = Callable[[], Awaitable[int]]
SyncOperation = Callable[[], int]


# ----------------------------------------------------------------------------------- cells


@dataclass(frozen=True, slots=True)
class Row:
    """One measured cell."""

    key: str
    system: str
    operation: str
    clients: int
    items_per_op: int
    result: _common.LoadResult

    def table_row(self) -> dict[str, object]:
        p50 = self.result.latency_ms(50)
        p99 = self.result.latency_ms(99)
        return {
            "operation": self.operation,
            "system": self.system,
            "clients": self.clients,
            "items/op": self.items_per_op,
            "ops/s": round(self.result.ops_per_s),
            "items/s": round(self.result.items_per_s),
            "p50 ms": "" if p50 is None else p50,
            "p99 ms": "" if p99 is None else p99,
            "errors": self.result.errors,
        }

    def as_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "system": self.system,
            "operation": self.operation,
            "clients": self.clients,
            "items_per_op": self.items_per_op,
            "ops": self.result.ops,
            "items": self.result.items,
            "errors": self.result.errors,
            "elapsed_s": self.result.elapsed_s,
            "ops_per_s": self.result.ops_per_s,
            "items_per_s": self.result.items_per_s,
            "p50_ms": self.result.latency_ms(50),
            "p99_ms": self.result.latency_ms(99),
        }


@dataclass(frozen=True, slots=True)
class Cell:
    """What to run: `measure` gives the result; key names it for ratios and targets."""

    key: str
    system: str
    operation: str
    clients: int
    items_per_op: int
    measure: Callable[[], Awaitable[_common.LoadResult]]


#: (agentlog cell, Redis cell) pairs compared in the ratio table, on items/s.
RATIO_PAIRS = (
    ("get", "redis-get"),
    ("put-1", "redis-set-1"),
    ("put-16", "redis-set-16"),
    ("put-16-prebuilt", "redis-set-16"),
    ("cas-16", "redis-cas-lua-16"),
    ("cas-16", "redis-cas-watch-16"),
    ("batch-1", "redis-mset-1"),
    ("batch-16", "redis-mset-16"),
    ("batch-16-prebuilt", "redis-mset-16"),
)


@dataclass(frozen=True, slots=True)
class Options:
    seconds: float
    keys: int
    batch: int
    prebuilt_puts: int
    prebuilt_batches: int
    redis: bool
    root: Path
    json_path: Path | None


# ----------------------------------------------------------------------------------- values


def make_payload() -> str:
    """The same 80 random letters in every run: with the counter, values are ~100 B of JSON."""
    generator = random.Random(PAYLOAD_SEED)
    return "".join(generator.choice(string.ascii_letters) for _ in range(80))


PAYLOAD = make_payload()


def value_of(n: int) -> dict[str, Any]:
    return {"n": n, "payload": PAYLOAD}


def value_bytes(n: int) -> bytes:
    return json.dumps(value_of(n), separators=(",", ":")).encode()


def preload_keys(count: int) -> list[str]:
    return [f"k{i}" for i in range(count)]


# ----------------------------------------------------------------------------------- agentlog


def agentlog_settings(data_dir: Path) -> Settings:
    return Settings(
        log=f"file://{data_dir}",
        fsync="always",
        snapshot_every=0,
        sweep_interval_ms=0,
        write_timeout_ms=60_000,
    )


async def preload_node(node: Node, keys: Sequence[str]) -> None:
    for start in range(0, len(keys), PRELOAD_BATCH):
        chunk = keys[start : start + PRELOAD_BATCH]
        items = [KvItem(key=key, value=value_of(start + i)) for i, key in enumerate(chunk)]
        result = await node.execute(stamp(KvBatchPut(items=items), CALLER, namespace=NAMESPACE))
        if result.outcome.status != "applied":
            raise RuntimeError(f"preload rejected: {result.outcome}")


def measure_get(node: Node, keys: Sequence[str], seconds: float) -> _common.LoadResult:
    """In-process gets in a tight loop on one thread; a miss counts as an error."""
    order = list(keys)
    random.Random(PAYLOAD_SEED).shuffle(order)
    chunks = [order[i : i + GET_CHUNK] for i in range(0, len(order), GET_CHUNK)]
    get = node.records.get
    now_ms = node.now_ms
    for key in chunks[0]:  # warm-up
        get(TENANT, NAMESPACE, key, now_ms())
    ops = misses = 0
    start_s = time.perf_counter()
    deadline_s = start_s + seconds
    for chunk in itertools.cycle(chunks):
        for key in chunk:
            if get(TENANT, NAMESPACE, key, now_ms()) is None:
                misses += 1
        ops += len(chunk)
        if time.perf_counter() >= deadline_s:
            break
    elapsed_s = time.perf_counter() - start_s
    return _common.LoadResult(1, ops - misses, ops - misses, misses, elapsed_s, [])


def measure_cpu(build: Callable[[], object], items: int, seconds: float) -> _common.LoadResult:
    """Call `build` in a loop on this thread for `seconds` (CPU only, no I/O)."""
    build()
    latencies_s: list[float] = []
    start_s = now_s = time.perf_counter()
    deadline_s = start_s + seconds
    while now_s < deadline_s:
        build()
        finished_s = time.perf_counter()
        latencies_s.append(finished_s - now_s)
        now_s = finished_s
    return _common.LoadResult(1, len(latencies_s), len(latencies_s) * items, 0, now_s - start_s, latencies_s)


def put_envelope(worker: int, n: int) -> Envelope:
    return stamp(KvPut(key=f"w{worker}-{n % KEYS_PER_WRITER}", value=value_of(n)), CALLER, namespace=NAMESPACE)


def batch_envelope(worker: int, n: int, size: int) -> Envelope:
    keys = max(KEYS_PER_WRITER, size)
    items = [KvItem(key=f"b{worker}-{(n * size + i) % keys}", value=value_of(n * size + i)) for i in range(size)]
    return stamp(KvBatchPut(items=items), CALLER, namespace=NAMESPACE)


def put_operation(node: Node, worker: int) -> AsyncOperation:
    counter = itertools.count()

    async def put() -> int:
        result = await node.execute(put_envelope(worker, next(counter)))
        return 1 if result.outcome.status == "applied" else 0

    return put


def batch_operation(node: Node, worker: int, size: int) -> AsyncOperation:
    counter = itertools.count()

    async def batch_put() -> int:
        result = await node.execute(batch_envelope(worker, next(counter), size))
        return size if result.outcome.status == "applied" else 0

    return batch_put


def pool_operation(node: Node, pool: deque[Envelope], items: int) -> AsyncOperation:
    """Execute envelopes built before the clock started; Exhausted once the shared pool is empty."""

    async def execute() -> int:
        if not pool:
            raise _common.Exhausted
        result = await node.execute(pool.popleft())
        return items if result.outcome.status == "applied" else 0

    return execute


def cas_operation(node: Node, worker: int) -> AsyncOperation:
    """CAS on this worker's own state name with the version its last success returned."""
    version = 0
    counter = itertools.count()

    async def cas() -> int:
        nonlocal version
        command = StateCas(name=f"cas-{worker}", expected_version=version, value=next(counter))
        result = await node.execute(stamp(command, CALLER, namespace=NAMESPACE))
        if result.outcome.status != "applied":
            return 0
        version = int(result.outcome.result["version"])
        return 1

    return cas


def build_pool(make: Callable[[int], Envelope], count: int) -> deque[Envelope]:
    started_s = time.perf_counter()
    pool = deque(make(n) for n in range(count))
    _progress_note(f"built {count:,} envelopes in {time.perf_counter() - started_s:.2f} s")
    return pool


def agentlog_cells(node: Node, options: Options, keys: Sequence[str]) -> dict[str, Cell]:
    seconds = options.seconds
    size = options.batch

    async def tasks(operations: Sequence[AsyncOperation]) -> _common.LoadResult:
        return await _common.measure_tasks(operations, seconds)

    async def get() -> _common.LoadResult:
        return measure_get(node, keys, seconds)

    async def prebuilt_puts() -> _common.LoadResult:
        pool = build_pool(lambda n: put_envelope(16 + n % 16, n), options.prebuilt_puts)
        return await tasks([pool_operation(node, pool, 1) for _ in range(16)])

    async def prebuilt_batches() -> _common.LoadResult:
        pool = build_pool(lambda n: batch_envelope(16 + n % 16, n, size), options.prebuilt_batches)
        return await tasks([pool_operation(node, pool, size) for _ in range(16)])

    async def stamp_put() -> _common.LoadResult:
        counter = itertools.count()
        return measure_cpu(lambda: put_envelope(99, next(counter)), 1, seconds)

    async def stamp_batch() -> _common.LoadResult:
        counter = itertools.count()
        return measure_cpu(lambda: batch_envelope(99, next(counter), size), size, seconds)

    def puts(clients: int) -> Callable[[], Awaitable[_common.LoadResult]]:
        return lambda: tasks([put_operation(node, worker) for worker in range(clients)])

    def batches(clients: int) -> Callable[[], Awaitable[_common.LoadResult]]:
        return lambda: tasks([batch_operation(node, worker, size) for worker in range(clients)])

    cells = [
        Cell("get", "agentlog", "get (records.get)", 1, 1, get),
        Cell("put-1", "agentlog", "put (kv.put, durable)", 1, 1, puts(1)),
        Cell("put-16", "agentlog", "put (kv.put, durable)", 16, 1, puts(16)),
        Cell("put-16-prebuilt", "agentlog", "put, envelopes pre-built", 16, 1, prebuilt_puts),
        Cell(
            "cas-16",
            "agentlog",
            "cas (state.cas, durable)",
            16,
            1,
            lambda: tasks([cas_operation(node, worker) for worker in range(16)]),
        ),
        Cell("batch-1", "agentlog", f"batch put (kv.batch_put x {size})", 1, size, batches(1)),
        Cell("batch-16", "agentlog", f"batch put (kv.batch_put x {size})", 16, size, batches(16)),
        Cell("batch-16-prebuilt", "agentlog", "batch put, envelopes pre-built", 16, size, prebuilt_batches),
        Cell("stamp-put", "agentlog", "stamp kv.put only (CPU, no log)", 1, 1, stamp_put),
        Cell("stamp-batch", "agentlog", f"stamp kv.batch_put x {size} only (CPU)", 1, size, stamp_batch),
    ]
    return {cell.key: cell for cell in cells}


# ----------------------------------------------------------------------------------- redis


class RedisClients:
    """redis-py clients (one connection each) to the benchmark's server, closed together."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._open: list[redis.Redis] = []

    def new(self) -> redis.Redis:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=60)
        self._open.append(client)
        return client

    def close_all(self) -> None:
        for client in self._open:
            client.close()
        self._open.clear()


def preload_redis(clients: RedisClients, keys: Sequence[str]) -> None:
    client = clients.new()
    for start in range(0, len(keys), PRELOAD_BATCH):
        chunk = keys[start : start + PRELOAD_BATCH]
        client.mset({key: value_bytes(start + i) for i, key in enumerate(chunk)})


def redis_get_operation(client: redis.Redis, keys: Sequence[str]) -> SyncOperation:
    order = list(keys)
    random.Random(PAYLOAD_SEED).shuffle(order)
    cycle = itertools.cycle(order)

    def get() -> int:
        return 0 if client.get(next(cycle)) is None else 1

    return get


def redis_set_operation(client: redis.Redis, worker: int) -> SyncOperation:
    counter = itertools.count()

    def set_value() -> int:
        n = next(counter)
        return 1 if client.set(f"w{worker}-{n % KEYS_PER_WRITER}", value_bytes(n)) else 0

    return set_value


def redis_mset_operation(client: redis.Redis, worker: int, size: int) -> SyncOperation:
    counter = itertools.count()
    keys = max(KEYS_PER_WRITER, size)

    def mset() -> int:
        n = next(counter)
        mapping = {f"b{worker}-{(n * size + i) % keys}": value_bytes(n * size + i) for i in range(size)}
        return size if client.mset(mapping) else 0

    return mset


def redis_cas_lua_operation(client: redis.Redis, worker: int) -> SyncOperation:
    script = client.register_script(REDIS_CAS_LUA)
    name = f"cas-{worker}"
    version = 0
    counter = itertools.count()

    def cas() -> int:
        nonlocal version
        applied, current = script(keys=[name], args=[version, json.dumps(next(counter))])
        if applied != 1:
            return 0
        version = int(current)
        return 1

    return cas


def redis_cas_watch_operation(client: redis.Redis, worker: int) -> SyncOperation:
    """Optimistic CAS: WATCH, HGET the version, then MULTI/HSET/EXEC (3 round trips)."""
    import redis as redis_module

    name = f"cas-watch-{worker}"
    version = 0
    counter = itertools.count()

    def cas() -> int:
        nonlocal version
        with client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(name)  # type: ignore[no-untyped-call]  # redis-py leaves watch() untyped
                current = int(pipe.hget(name, "version") or 0)
                if current != version:
                    return 0
                pipe.multi()
                pipe.hset(name, mapping={"version": current + 1, "value": json.dumps(next(counter))})
                pipe.execute()
            except redis_module.WatchError:
                return 0
        version = current + 1
        return 1

    return cas


def redis_cells(clients: RedisClients, options: Options, keys: Sequence[str]) -> dict[str, Cell]:
    seconds = options.seconds
    size = options.batch

    def threads(
        make: Callable[[redis.Redis, int], SyncOperation], count: int
    ) -> Callable[[], Awaitable[_common.LoadResult]]:
        async def run() -> _common.LoadResult:
            operations = [make(clients.new(), worker) for worker in range(count)]
            try:
                return await asyncio.to_thread(_common.measure_threads, operations, seconds)
            finally:
                clients.close_all()

        return run

    cells = [
        Cell("redis-get", "Redis", "GET", 1, 1, threads(lambda client, _: redis_get_operation(client, keys), 1)),
        Cell("redis-set-1", "Redis", "SET", 1, 1, threads(redis_set_operation, 1)),
        Cell("redis-set-16", "Redis", "SET", 16, 1, threads(redis_set_operation, 16)),
        Cell("redis-cas-lua-16", "Redis", "CAS (Lua, version field)", 16, 1, threads(redis_cas_lua_operation, 16)),
        Cell("redis-cas-watch-16", "Redis", "CAS (WATCH/MULTI/EXEC)", 16, 1, threads(redis_cas_watch_operation, 16)),
        Cell(
            "redis-mset-1",
            "Redis",
            f"MSET x {size}",
            1,
            size,
            threads(lambda client, worker: redis_mset_operation(client, worker, size), 1),
        ),
        Cell(
            "redis-mset-16",
            "Redis",
            f"MSET x {size}",
            16,
            size,
            threads(lambda client, worker: redis_mset_operation(client, worker, size), 16),
        ),
    ]
    return {cell.key: cell for cell in cells}


# ----------------------------------------------------------------------------------- the run

#: The order cells run in: each agentlog operation right before its Redis equivalent.
RUN_ORDER = (
    "get",
    "redis-get",
    "put-1",
    "redis-set-1",
    "put-16",
    "put-16-prebuilt",
    "redis-set-16",
    "cas-16",
    "redis-cas-lua-16",
    "redis-cas-watch-16",
    "batch-1",
    "redis-mset-1",
    "batch-16",
    "batch-16-prebuilt",
    "redis-mset-16",
    "stamp-put",
    "stamp-batch",
)


async def run_all(options: Options) -> list[Row]:
    keys = preload_keys(options.keys)
    node = await Node.start(agentlog_settings(options.root / "node"))
    try:
        started_s = time.perf_counter()
        await preload_node(node, keys)
        _progress_note(f"agentlog: preloaded {len(keys):,} keys in {time.perf_counter() - started_s:.2f} s")
        cells = agentlog_cells(node, options, keys)
        if not options.redis:
            return await run_cells(cells)
        with _common.RedisServer(
            options.root / "redis", appendfsync="always", extra_config=REDIS_EXTRA_CONFIG
        ) as server:
            clients = RedisClients(server.port)
            try:
                preload_redis(clients, keys)
            finally:
                clients.close_all()
            return await run_cells({**cells, **redis_cells(clients, options, keys)})
    finally:
        await node.stop()


async def run_cells(cells: dict[str, Cell]) -> list[Row]:
    rows: list[Row] = []
    for key in RUN_ORDER:
        cell = cells.get(key)
        if cell is None:
            continue
        result = await cell.measure()
        row = Row(cell.key, cell.system, cell.operation, cell.clients, cell.items_per_op, result)
        _progress(row)
        rows.append(row)
    return rows


def _progress(row: Row) -> None:
    p99 = row.result.latency_ms(99)
    latency = "" if p99 is None else f"  p99 {p99:8.3f} ms"
    print(
        f"{row.system:>8}  {row.operation:<38} x{row.clients:<3} {row.result.ops_per_s:>12,.0f} ops/s"
        f" {row.result.items_per_s:>12,.0f} items/s{latency}  errors {row.result.errors}",
        file=sys.stderr,
        flush=True,
    )


def _progress_note(text: str) -> None:
    print(f"          {text}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class TargetCheck:
    target: str
    cell: str
    measured: str
    met: bool


def ratio_rows(rows: Sequence[Row]) -> list[dict[str, object]]:
    by_key = {row.key: row for row in rows}
    found: list[dict[str, object]] = []
    for ours, theirs in RATIO_PAIRS:
        if ours in by_key and theirs in by_key:
            mine, peer = by_key[ours], by_key[theirs]
            found.append(
                {
                    "agentlog": f"{mine.operation} x{mine.clients}",
                    "Redis": f"{peer.operation} x{peer.clients}",
                    "agentlog items/s": round(mine.result.items_per_s),
                    "Redis items/s": round(peer.result.items_per_s),
                    "agentlog ÷ Redis": mine.result.items_per_s / peer.result.items_per_s,
                }
            )
    return found


def target_checks(rows: Sequence[Row]) -> list[TargetCheck]:
    """The issue's targets, reported and never asserted."""
    checks: list[TargetCheck] = []
    for row in rows:
        if row.key.startswith("batch-"):
            measured = row.result.items_per_s
            label = f"{row.operation} x{row.clients}"
            checks.append(
                TargetCheck(
                    "durable batched put+apply ≥ 50,000 commands/s", label, f"{measured:,.0f}", measured >= 50_000
                )
            )
        if row.key == "get":
            measured = row.result.items_per_s
            checks.append(
                TargetCheck("in-process get ≥ 500,000/s", row.operation, f"{measured:,.0f}", measured >= 500_000)
            )
    return checks


def dataset(options: Options) -> dict[str, str]:
    return {
        "keys": f"{options.keys:,} preloaded (k0..), values ~{len(value_bytes(0))} B of JSON; "
        f"writers cycle over {KEYS_PER_WRITER:,} keys each",
        "agentlog": "Node on FileLog, fsync=always, 8 partitions, one tenant/namespace (one partition), "
        "no sweeper, no snapshots; clients are asyncio tasks in this process",
        "Redis": "one redis-server, appendonly yes, appendfsync always, save '', no AOF rewrite; "
        "redis-py, one client (connection) per thread"
        if options.redis
        else "left out (--no-redis)",
        "batch": f"{options.batch} items per kv.batch_put / MSET",
        "pre-built pools": f"{options.prebuilt_puts:,} puts, {options.prebuilt_batches:,} batch puts "
        "(a cell ends early when its pool runs dry)",
        "duration": f"{options.seconds:g} s per cell after one warm-up call per client",
        "data": str(options.root),
    }


def print_report(header: dict[str, dict[str, str]], rows: Sequence[Row]) -> None:
    print(f"**Command**: `{command_line()}`")
    print()
    _common.print_facts(header)
    columns = ["operation", "system", "clients", "items/op", "ops/s", "items/s", "p50 ms", "p99 ms", "errors"]
    print(_common.markdown_table([row.table_row() for row in rows], columns))
    ratios = ratio_rows(rows)
    if ratios:
        print()
        print(
            _common.markdown_table(
                ratios, ["agentlog", "Redis", "agentlog items/s", "Redis items/s", "agentlog ÷ Redis"]
            )
        )
    checks = target_checks(rows)
    if checks:
        print()
        check_rows = [{**_check_dict(check), "met": "yes" if check.met else "no"} for check in checks]
        print(_common.markdown_table(check_rows, ["target", "cell", "measured", "met"]))
    print()
    print(
        "Latency is per call as the caller sees it (a batch is one call); the get loop has none. "
        "Errors are rejected or missed operations (expected 0). "
        f"{NOISE_NOTE}"
    )
    print(f"Load average at the end: {_common.load_average()}.")


def _check_dict(check: TargetCheck) -> dict[str, object]:
    return {"target": check.target, "cell": check.cell, "measured": check.measured, "met": check.met}


def command_line() -> str:
    return " ".join(["python", *sys.argv])


def write_json(path: Path, header: dict[str, dict[str, str]], rows: Sequence[Row]) -> None:
    document = {
        **header,
        "command": command_line(),
        "cells": [row.as_json() for row in rows],
        "ratios": ratio_rows(rows),
        "targets": [_check_dict(check) for check in target_checks(rows)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


# ----------------------------------------------------------------------------------- command line


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="In-process ops/s of an agentlog node beside Redis-AOF (redis-py).")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each cell (default 3)")
    parser.add_argument("--keys", type=int, default=10_000, help="keys preloaded for gets (default 10,000)")
    parser.add_argument("--batch", type=int, default=100, help="items per batch put / MSET (default 100)")
    parser.add_argument("--prebuilt-puts", type=int, default=8_000, help="pre-built put envelopes (default 8,000)")
    parser.add_argument("--prebuilt-batches", type=int, default=400, help="pre-built batch-put envelopes (default 400)")
    parser.add_argument("--no-redis", action="store_true", help="leave Redis out")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the temp data dir goes (default: .)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def check_arguments(arguments: argparse.Namespace) -> str | None:
    """Why the arguments cannot run, or None."""
    if not 0 < arguments.seconds <= 600:
        return "--seconds must be within (0, 600]"
    if not 1 <= arguments.keys <= 10_000_000:
        return "--keys must be within 1..10,000,000"
    if not 1 <= arguments.batch <= MAX_BATCH_COMMANDS:
        return f"--batch must be within 1..{MAX_BATCH_COMMANDS}"
    if arguments.prebuilt_puts < 16 or arguments.prebuilt_batches < 16:
        return "--prebuilt-puts and --prebuilt-batches must be at least 16 (one per task)"
    if not arguments.no_redis:
        if shutil.which("redis-server") is None:
            return f"redis-server not found on PATH: {_common.REDIS_INSTALL_HINT}, or leave Redis out with --no-redis"
        if _common.package_version("redis") == "not installed":
            return "redis-py is not installed: pip install -e '.[dev]' (or pip install redis), or use --no-redis"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    problem = check_arguments(arguments)
    if problem is not None:
        print(f"node_ops: {problem}", file=sys.stderr)
        return 2
    arguments.dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="agentlog-bench-", dir=arguments.dir))
    options = Options(
        seconds=arguments.seconds,
        keys=arguments.keys,
        batch=arguments.batch,
        prebuilt_puts=arguments.prebuilt_puts,
        prebuilt_batches=arguments.prebuilt_batches,
        redis=not arguments.no_redis,
        root=root,
        json_path=arguments.json,
    )
    try:
        header = {
            "Machine": _common.machine_info(root),
            "Versions": _common.stack_versions(),
            "Dataset": dataset(options),
        }
        rows = asyncio.run(run_all(options))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_report(header, rows)
    if options.json_path is not None:
        write_json(options.json_path, header, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
