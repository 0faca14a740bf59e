"""Kafka mode: write throughput and latency through the Kafka backend beside the embedded log and a raw
aiokafka producer, and replica lag of a second node under a steady load.

Run it by hand (never in CI) from the repository root, with the project's environment:

    python bench/kafka_mode.py                     # starts a 1-broker KRaft cluster (launcher), ~3 minutes
    python bench/kafka_mode.py --bootstrap 127.0.0.1:9092 --appenders 1,16,64 --seconds 5
    python bench/kafka_mode.py --help

What runs, on the same workload in the same run (kv.put commands of about 230 bytes over 8 tenants
and 16 namespaces, so every one of the 8 partitions gets writes):

- **raw aiokafka** (the reference line): `AIOKafkaProducer(acks="all", enable_idempotence=True)`,
  `send_and_wait` of the already encoded command records (value, key, headers): no validation.
- **agentlog KafkaLog.append** (the Kafka backend, the target's subject): the same encoded records,
  already routed, through `EventLog.append` (one atomic batch per append, acks=all, idempotent).
- **agentlog kafka**: `CommandProducer.submit` on a `KafkaLog` (validate, route, encode, append;
  returns once the broker acknowledged with acks=all).
- **agentlog kafka node**: `Node.execute` on a node over the Kafka log: the append plus waiting until
  the node's engine applied it (what an HTTP write waits for).
- **agentlog embedded** / **embedded node**: the same two on the embedded `FileLog` (fsync=always).

Each appender is an asyncio task doing one command at a time; latency is per command. A 1 s raw
warm-up runs first (not reported); each cell's pre-built pool is frozen out of the cyclic GC while it
runs (`gc.freeze`), so no system pays for full collections over the generator's objects. Replica lag:
a writer appends at a steady rate (default 5,000 commands/s, independent submits paced every 10 ms)
while a second node runs in another process (`Node.start` on the same topic) and samples its
applied cut every 2 ms; a command's lag is the time from its acknowledgement to the first sample
of the replica that has applied it (0 if the replica had it before the writer's ack arrived).

Stdout gets the machine, versions and Markdown tables; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common

from commands import Caller, CommandProducer, Envelope, KvPut, encode_message, partition_of, stamp
from eventlog.base import EventLog
from eventlog.url import open_log
from query_api.node.node import Node
from query_api.settings import Settings

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parents[1]
PARTITIONS = 8
TENANTS = 8
NAMESPACES = 16
#: Commands built ahead of a cell (a cell ends early, and says so, if it runs out).
POOL_SIZE_DEFAULT = 150_000
#: How often the replica samples its applied cut.
REPLICA_SAMPLE_S = 0.002
#: The steady writer's pacing tick.
TICK_S = 0.010
THROUGHPUT_TARGET = 0.70
LAG_TARGET_MS = 100.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------- workload


def payload(seed: int = 7) -> str:
    generator = random.Random(seed)
    return "".join(generator.choice(string.ascii_letters) for _ in range(120))


PAYLOAD = payload()


def envelopes(count: int, tag: str) -> list[Envelope]:
    """`count` kv.put commands with unique ids, spread over tenants and namespaces."""
    built = []
    for n in range(count):
        tenant = f"t{n % TENANTS}"
        namespace = f"ns{(n // TENANTS) % NAMESPACES}"
        command = KvPut(key=f"k{n % 5000}", value={"n": n, "text": PAYLOAD})
        caller = Caller(tenant=tenant, agent_id="bench")
        built.append(stamp(command, caller, namespace=namespace, command_id=f"{tag}-{n}"))
    return built


class Pool:
    """Hands out pre-built items once each; `_common.Exhausted` when none are left."""

    def __init__(self, items: Sequence[Any]) -> None:
        self._items = items
        self._next = 0

    def take(self) -> Any:
        if self._next >= len(self._items):
            raise _common.Exhausted
        item = self._items[self._next]
        self._next += 1
        return item

    @property
    def used(self) -> int:
        return self._next


# ----------------------------------------------------------------------------------- cells


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    system: str
    appenders: int
    result: _common.LoadResult
    exhausted: bool

    def table_row(self) -> dict[str, object]:
        return {
            "system": self.system,
            "appenders": self.appenders,
            "commands/s": round(self.result.items_per_s),
            "p50 ms": self.result.latency_ms(50) or 0.0,
            "p99 ms": self.result.latency_ms(99) or 0.0,
            "commands": self.result.items,
            "errors": self.result.errors,
            "note": "pool ran out" if self.exhausted else "",
        }


async def measure(operation: Callable[[], Awaitable[int]], appenders: int, seconds: float) -> _common.LoadResult:
    return await _common.measure_tasks([operation] * appenders, seconds, warmup_ops=1)


async def raw_aiokafka(servers: str, topic: str, pool: Pool, appenders: int, seconds: float) -> _common.LoadResult:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.partitions_for(topic)

        async def send() -> int:
            value, key, headers = pool.take()
            await producer.send_and_wait(topic, value=value, key=key, headers=list(headers))
            return 1

        return await measure(send, appenders, seconds)
    finally:
        await producer.stop()


async def log_submit(log_: EventLog, topic: str, pool: Pool, appenders: int, seconds: float) -> _common.LoadResult:
    producer = CommandProducer(log_, topic)

    async def submit() -> int:
        await producer.submit(pool.take())
        return 1

    return await measure(submit, appenders, seconds)


async def node_execute(settings: Settings, pool: Pool, appenders: int, seconds: float) -> _common.LoadResult:
    node = await Node.start(settings)
    try:

        async def execute() -> int:
            await node.execute(pool.take())
            return 1

        return await measure(execute, appenders, seconds)
    finally:
        await node.stop()


def node_settings(log_url: str, topic: str) -> Settings:
    return Settings(
        log=log_url,
        topic=topic,
        partitions=PARTITIONS,
        fsync="always",
        sweep_interval_ms=0,
        snapshot_every=0,
        processors="off",
        write_timeout_ms=60_000,
    )


#: (key, label) of every system measured in a throughput cell, in the order they run.
SYSTEMS = (
    ("raw", "raw aiokafka producer (acks=all, idempotent)"),
    ("backend", "agentlog KafkaLog.append (the Kafka backend)"),
    ("commands", "agentlog kafka: CommandProducer.submit (validate, encode, append)"),
    ("node", "agentlog kafka node: Node.execute (append + applied)"),
    ("embedded", "agentlog embedded: CommandProducer.submit (FileLog, fsync=always)"),
    ("embedded-node", "agentlog embedded node: Node.execute (fsync=always)"),
)


async def log_append(log_: EventLog, topic: str, pool: Pool, appenders: int, seconds: float) -> _common.LoadResult:
    """`EventLog.append` of pre-routed, pre-encoded command records: the backend alone."""

    async def append() -> int:
        partition, message = pool.take()
        await log_.append(topic, partition, [message])
        return 1

    return await measure(append, appenders, seconds)


async def run_system(
    key: str, kafka: EventLog, servers: str, cell: str, pool: Pool, appenders: int, seconds: float, root: Path
) -> _common.LoadResult:
    """Measure system `key` with `appenders` on a fresh topic (or a fresh directory) named after `cell`."""
    topic = f"{cell}-{key}"
    if key in ("raw", "backend", "commands"):
        await kafka.create_topic(topic, PARTITIONS)
    if key == "raw":
        return await raw_aiokafka(servers, topic, pool, appenders, seconds)
    if key == "backend":
        return await log_append(kafka, topic, pool, appenders, seconds)
    if key == "commands":
        return await log_submit(kafka, topic, pool, appenders, seconds)
    if key == "node":
        return await node_execute(node_settings(f"kafka://{servers}", topic), pool, appenders, seconds)
    if key == "embedded":
        return await embedded_submit(root / cell / "log", pool, appenders, seconds)
    return await node_execute(node_settings(f"file://{root / cell / 'node'}", "main"), pool, appenders, seconds)


def pool_items(key: str, built: list[Envelope]) -> Sequence[Any]:
    """What a system's pool hands out: encoded records (raw), routed records (backend) or envelopes."""
    if key == "raw":
        return [encode_message(e) for e in built]
    if key == "backend":
        return [(partition_of(e, PARTITIONS), encode_message(e)) for e in built]
    return built


async def throughput(options: Options, servers: str, root: Path) -> list[Row]:
    rows: list[Row] = []
    run = f"b{os.getpid()}-{int(time.time())}"
    kafka = await open_log(f"kafka://{servers}")
    try:
        log("  warm-up: raw aiokafka, 1 s (not reported) ...")
        warm = Pool(pool_items("raw", envelopes(20_000, f"{run}-warm")))
        await run_system("raw", kafka, servers, f"{run}-warm", warm, 16, 1.0, root)
        for appenders in options.appenders:
            cell = f"{run}-{appenders}"
            for key, label in SYSTEMS:
                log(f"  {label}, {appenders} appenders ...")
                items = pool_items(key, envelopes(options.pool, f"{cell}-{key}"))
                pool = Pool(items)
                with frozen_heap():
                    result = await run_system(key, kafka, servers, cell, pool, appenders, options.seconds, root)
                rows.append(Row(key, label, appenders, result, pool.used >= len(items)))
    finally:
        await kafka.close()
    return rows


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the pre-built pool out of the cyclic GC while measuring (no full collections over it)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def embedded_submit(directory: Path, pool: Pool, appenders: int, seconds: float) -> _common.LoadResult:
    embedded = await open_log(f"file://{directory}", fsync="always")
    try:
        await embedded.create_topic("main", PARTITIONS)
        return await log_submit(embedded, "main", pool, appenders, seconds)
    finally:
        await embedded.close()


# ----------------------------------------------------------------------------------- replica lag


async def replica_main(servers: str, topic: str, seconds: float) -> list[tuple[float, list[int]]]:
    """The second node (run in its own process): start, say ready, sample the applied cut until stdin closes."""
    node = await Node.start(node_settings(f"kafka://{servers}", topic))
    samples: list[tuple[float, list[int]]] = []
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    stop = asyncio.ensure_future(asyncio.to_thread(sys.stdin.read))
    try:
        while time.monotonic() < deadline and not stop.done():
            samples.append((time.time(), node.engine.applied))
            await asyncio.sleep(REPLICA_SAMPLE_S)
    finally:
        await node.stop()
    return samples


@dataclass(frozen=True, slots=True)
class LagResult:
    rate: float
    achieved: float
    commands: int
    lags_ms: list[float]
    behind_records: list[int]

    def table_row(self) -> dict[str, object]:
        return {
            "offered commands/s": round(self.rate),
            "achieved commands/s": round(self.achieved),
            "commands": self.commands,
            "lag p50 ms": _common.percentile(self.lags_ms, 50),
            "lag p99 ms": _common.percentile(self.lags_ms, 99),
            "lag max ms": max(self.lags_ms),
            "records behind p99": round(_common.percentile(self.behind_records, 99)),
        }


async def steady_writer(
    servers: str, topic: str, rate: float, seconds: float, pool: Pool
) -> list[tuple[int, int, float]]:
    """Submit `rate` commands/s for `seconds` (each tick's share as independent submits): (partition, offset, ack)."""
    kafka = await open_log(f"kafka://{servers}")
    acks: list[tuple[int, int, float]] = []
    producer = CommandProducer(kafka, topic)
    pending: set[asyncio.Task[None]] = set()

    async def one(envelope: Envelope) -> None:
        submitted = await producer.submit(envelope)
        acks.append((submitted.partition, submitted.offset, time.time()))

    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        while (now := loop.time()) - start < seconds:
            due = int((now - start) * rate) - sent
            for _ in range(max(0, due)):
                task = asyncio.create_task(one(pool.take()))
                pending.add(task)
                task.add_done_callback(pending.discard)
            sent += max(0, due)
            await asyncio.sleep(TICK_S)
        if pending:
            await asyncio.gather(*pending)
    finally:
        await kafka.close()
    return acks


def lag_of(acks: list[tuple[int, int, float]], samples: list[tuple[float, list[int]]]) -> tuple[list[float], list[int]]:
    """Per command: ms from its ack to the first replica sample that applied it; records behind per sample."""
    lags: list[float] = []
    by_partition: dict[int, list[tuple[int, float]]] = {}
    for partition, offset, acked in acks:
        by_partition.setdefault(partition, []).append((offset, acked))
    for partition, items in by_partition.items():
        items.sort()
        index = 0
        for offset, acked in items:
            while index < len(samples) and samples[index][1][partition] <= offset:
                index += 1
            if index == len(samples):
                raise RuntimeError(f"the replica never applied {partition}:{offset} while sampling")
            lags.append(max(0.0, (samples[index][0] - acked) * 1000))
    acked_times = sorted((acked, partition, offset) for partition, offset, acked in acks)
    behind: list[int] = []
    ends = [0] * PARTITIONS
    cursor = 0
    for sampled_at, applied in samples:
        while cursor < len(acked_times) and acked_times[cursor][0] <= sampled_at:
            _, partition, offset = acked_times[cursor]
            ends[partition] = max(ends[partition], offset + 1)
            cursor += 1
        if cursor and cursor < len(acked_times):  # only while the writer runs
            behind.append(sum(max(0, end - done) for end, done in zip(ends, applied, strict=True)))
    return lags, behind or [0]


async def replica_lag(options: Options, servers: str, data_root: Path) -> LagResult:
    topic = f"lag-{os.getpid()}-{int(time.time())}"
    kafka = await open_log(f"kafka://{servers}")
    try:
        await kafka.create_topic(topic, PARTITIONS)
    finally:
        await kafka.close()
    samples_path = data_root / "replica-samples.json"
    command = [
        str(SCRIPT),
        "--replica",
        "--bootstrap",
        servers,
        "--replica-topic",
        topic,
        "--replica-seconds",
        str(options.lag_seconds + 120),
        "--replica-out",
        str(samples_path),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    replica = await asyncio.create_subprocess_exec(
        sys.executable, *command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    try:
        assert replica.stdout is not None
        line = await replica.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"the replica did not start: {line!r}")
        pool = Pool(envelopes(int(options.lag_rate * options.lag_seconds * 1.1) + 1000, f"lag-{topic}"))
        log(f"  writing {options.lag_rate:.0f} commands/s for {options.lag_seconds} s; replica in pid {replica.pid}")
        with frozen_heap():  # the load generator must not stall on its own pool (the replica is a plain node)
            acks = await steady_writer(servers, topic, options.lag_rate, options.lag_seconds, pool)
        await asyncio.sleep(2.0)  # let the replica apply the tail before it stops sampling
    finally:
        assert replica.stdin is not None
        replica.stdin.close()  # the replica stops sampling and writes its samples
        await replica.wait()
    text = await asyncio.to_thread(samples_path.read_text)
    samples = [(float(t), list(cut)) for t, cut in json.loads(text)]
    lags, behind = lag_of(acks, samples)
    first = min(a for _, _, a in acks)
    last = max(a for _, _, a in acks)
    return LagResult(options.lag_rate, len(acks) / max(last - first, 1e-9), len(acks), lags, behind)


# ----------------------------------------------------------------------------------- main


@dataclass(frozen=True, slots=True)
class Options:
    seconds: float
    appenders: list[int]
    pool: int
    lag_rate: float
    lag_seconds: float
    bootstrap: str | None
    brokers: int
    root: Path


@contextlib.contextmanager
def kafka_cluster(options: Options, root: Path) -> Iterator[str]:
    if options.bootstrap is not None:
        yield options.bootstrap
        return
    from infra.kafka.launcher import start_cluster

    log(f"starting a {options.brokers}-broker Kafka (launcher) ...")
    cluster = start_cluster(nodes=options.brokers, base_dir=root / "kafka", heap_mb=512)
    try:
        yield cluster.bootstrap_servers
    finally:
        cluster.stop(timeout_s=10)


async def run(options: Options, servers: str, root: Path) -> tuple[list[Row], LagResult | None]:
    rows: list[Row] = []
    if options.appenders:
        log("throughput ...")
        rows = await throughput(options, servers, root)
    lag = None
    if options.lag_seconds > 0:
        log("replica lag ...")
        lag = await replica_lag(options, servers, root)
    return rows, lag


def report(rows: list[Row], lag: LagResult | None, options: Options, servers: str, root: Path) -> None:
    import aiokafka

    versions = {
        "Python": sys.version.split()[0],
        "agentlog": _common.package_version("agentlog"),
        "aiokafka": aiokafka.__version__,
        "Kafka": _kafka_version(),
        "brokers": str(options.brokers) if options.bootstrap is None else f"given ({servers})",
    }
    _common.print_facts(
        {
            "Machine": _common.machine_info(root),
            "Versions": versions,
            "Workload": {
                "commands": f"kv.put, ~{len(encode_message(envelopes(1, 'x')[0]).value)} B encoded",
                "partitions": str(PARTITIONS),
                "spread": f"{TENANTS} tenants x {NAMESPACES} namespaces",
                "seconds per cell": str(options.seconds),
            },
        }
    )
    if rows:
        report_throughput(rows, options)
    if lag is not None:
        print("### Replica lag: a second node (own process) under a steady load\n")
        row = lag.table_row()
        row["target"] = f"p99 <= {LAG_TARGET_MS:.0f} ms"
        row["met"] = "yes" if _common.percentile(lag.lags_ms, 99) <= LAG_TARGET_MS else "no"
        print(_common.markdown_table([row], list(row)))
        print()
    print("Figures from a shared machine are noisy: compare the ratios of one run, not figures across runs.")


def report_throughput(rows: list[Row], options: Options) -> None:
    print("### Write throughput and latency (one command per call)\n")
    print(_common.markdown_table([row.table_row() for row in rows], list(rows[0].table_row())))
    print()
    ratios = []
    for appenders in options.appenders:
        rate = {row.key: row.result.items_per_s for row in rows if row.appenders == appenders}
        backend = rate["backend"] / rate["raw"] if rate["raw"] else 0.0
        ratios.append(
            {
                "appenders": appenders,
                "backend / raw aiokafka": backend,
                "target": f">= {THROUGHPUT_TARGET:.2f}",
                "met": "yes" if backend >= THROUGHPUT_TARGET else "no",
                "CommandProducer / raw": rate["commands"] / rate["raw"] if rate["raw"] else 0.0,
                "kafka node / embedded node": rate["node"] / rate["embedded-node"] if rate["embedded-node"] else 0.0,
            }
        )
    print(_common.markdown_table(ratios, list(ratios[0])))
    print()


def _kafka_version() -> str:
    try:
        from infra.kafka.launcher import kafka_version

        return kafka_version()
    except Exception:
        return "unknown"


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Kafka mode: throughput vs raw aiokafka and embedded; replica lag.")
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of each throughput cell (default 4)")
    parser.add_argument("--appenders", default="1,64", help="concurrent appenders per cell, comma-separated")
    parser.add_argument("--pool", type=int, default=POOL_SIZE_DEFAULT, help="commands built per cell")
    parser.add_argument("--lag-rate", type=float, default=5000.0, help="steady commands/s for replica lag")
    parser.add_argument("--lag-seconds", type=float, default=10.0, help="how long the steady load runs (0: skip)")
    parser.add_argument("--bootstrap", default=None, help="use this cluster instead of starting one")
    parser.add_argument("--brokers", type=int, default=1, help="brokers to start when no --bootstrap (default 1)")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the temp data dir goes (default: .)")
    parser.add_argument("--replica", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--replica-topic", default="", help=argparse.SUPPRESS)
    parser.add_argument("--replica-seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--replica-out", type=Path, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.replica:
        samples = asyncio.run(replica_main(arguments.bootstrap, arguments.replica_topic, arguments.replica_seconds))
        arguments.replica_out.write_text(json.dumps(samples))
        return 0
    root = Path(tempfile.mkdtemp(prefix="agentlog-bench-kafka-", dir=arguments.dir))
    options = Options(
        seconds=arguments.seconds,
        appenders=[int(a) for a in arguments.appenders.split(",") if a],
        pool=arguments.pool,
        lag_rate=arguments.lag_rate,
        lag_seconds=arguments.lag_seconds,
        bootstrap=arguments.bootstrap,
        brokers=arguments.brokers,
        root=root,
    )
    try:
        with kafka_cluster(options, root) as servers:
            rows, lag = asyncio.run(run(options, servers, root))
        report(rows, lag, options, servers, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
