"""HTTP GET/PUT throughput and latency of a real agentlog node beside Redis GET/SET (redis-py), on loopback.

Run it by hand (never in CI) from the repository root, with the project's environment:

    python bench/http_load.py                            # 1, 8, 64 clients, 5 s per cell: about 1.5 minutes
    python bench/http_load.py --seconds 2 --clients 8
    python bench/http_load.py --http-client both         # httpx and a minimal raw client: about 2 minutes
    python bench/http_load.py --json bench/results/http_load.json
    python bench/http_load.py --help

Redis needs `redis-server` on PATH (`apt-get update && apt-get install -y redis-server`) and redis-py;
`--no-redis` leaves it out. With wrk and etcd on PATH (`bench/install-peers.sh`, as root), a second
section drives agentlog and etcd 3.4's HTTP/JSON gateway (fsync on) with `wrk`, and Redis
(appendfsync always) with `redis-benchmark`, at `--wrk-connections` (default 8) for `--wrk-seconds`
each (see `bench/c_load.py`).

The node is `python -m query_api.cli.main serve` (what `agentlog serve` runs: uvicorn, one worker process)
in a subprocess on a free loopback port, with the embedded log under fsync=always in a temporary
directory under `--dir` (default: the current directory) and otherwise default settings (8 partitions,
TTL sweeper, snapshots every 100,000 commands); AGENTLOG_* variables are not passed on. `--keys` keys
are preloaded through `POST /v1/kv/bench/batch-put`.

Clients are asyncio tasks in this process, `--clients` of them at a time (default 1, 8, 64):

- agentlog: each client task has its own `httpx.AsyncClient` with one keep-alive connection
  (`X-Tenant` header): a shared client's pool serializes badly under concurrency, encode/httpx#3215.
  GET `/v1/kv/bench/<preloaded key>` (random order) and PUT `/v1/kv/bench/<key>` with a ~100 B JSON
  value (each client cycles over 1,000 keys of its own): a PUT answers once appended, fsynced and
  applied. `--http-client raw` (or `both`) drives the same requests through a minimal asyncio
  HTTP/1.1 keep-alive client, which costs the client far less CPU than httpx: on a small machine
  where client and server share the cores, it shows more of the server.
- Redis (the reference line): one redis-server (appendonly yes, appendfsync always, save '', no AOF
  rewrite); each client is a `redis.asyncio.Redis` with its own connection; GET on the same preloaded
  keys, SET of the same values.

Each cell runs `--seconds` after one warm-up request per client; agentlog and Redis alternate cell by
cell. Latency is per request as the client sees it. The client and the server share the machine's
cores, so the CPU columns (server process and this client process, % of one core) show which side
saturates. Stdout gets the machine, versions, dataset, the Markdown tables, ratios and the target;
progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import _common
import c_load
import httpx

if TYPE_CHECKING:
    import redis.asyncio

TENANT = "bench"
NAMESPACE = "bench"
HEADERS = {"X-Tenant": TENANT, "X-Agent-Id": "bench"}
#: Distinct keys each writing client cycles through.
KEYS_PER_WRITER = 1_000
#: Keys per preload request (the most one batch put holds).
PRELOAD_BATCH = 1_000
#: Longest wait for the node to answer /health after it is started.
SERVER_START_TIMEOUT_S = 60.0
#: Longest wait for the node to exit after SIGINT, before it is killed.
SERVER_STOP_TIMEOUT_S = 20.0
#: Longest any one request may take.
REQUEST_TIMEOUT_S = 60.0
CLIENTS_MAX = 1_024
REDIS_EXTRA_CONFIG = {"auto-aof-rewrite-percentage": "0"}
PAYLOAD_SEED = 20_240_603
NOISE_NOTE = "Figures from a shared machine are noisy: compare the ratios of one run, not figures across runs."
OPERATIONS = ("GET", "PUT")
CLIENT_DESCRIPTIONS = {
    "httpx": "httpx: one httpx.AsyncClient per client task, keep-alive, one connection each",
    "raw": "raw: a minimal asyncio HTTP/1.1 keep-alive client, one connection per task",
}

AsyncOperation = Callable[[], Awaitable[int]]


def make_payload() -> str:
    generator = random.Random(PAYLOAD_SEED)
    return "".join(generator.choice(string.ascii_letters) for _ in range(80))


PAYLOAD = make_payload()


def value_of(n: int) -> dict[str, Any]:
    return {"n": n, "payload": PAYLOAD}


def value_bytes(n: int) -> bytes:
    return json.dumps(value_of(n), separators=(",", ":")).encode()


def shuffled_keys(count: int) -> list[str]:
    keys = [f"k{i}" for i in range(count)]
    random.Random(PAYLOAD_SEED).shuffle(keys)
    return keys


# ----------------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Row:
    system: str
    operation: str
    clients: int
    result: _common.LoadResult
    server_cpu_percent: float | None
    client_cpu_percent: float

    def table_row(self) -> dict[str, object]:
        return {
            "operation": self.operation,
            "system": self.system,
            "clients": self.clients,
            "requests/s": round(self.result.ops_per_s),
            "p50 ms": _or_blank(self.result.latency_ms(50)),
            "p99 ms": _or_blank(self.result.latency_ms(99)),
            "p99.9 ms": _or_blank(self.result.latency_ms(99.9)),
            "errors": self.result.errors,
            "server CPU %": _or_blank(self.server_cpu_percent),
            "client CPU %": self.client_cpu_percent,
        }

    def as_json(self) -> dict[str, object]:
        return {
            "system": self.system,
            "operation": self.operation,
            "clients": self.clients,
            "requests": self.result.ops,
            "errors": self.result.errors,
            "elapsed_s": self.result.elapsed_s,
            "requests_per_s": self.result.ops_per_s,
            "p50_ms": self.result.latency_ms(50),
            "p99_ms": self.result.latency_ms(99),
            "p99_9_ms": self.result.latency_ms(99.9),
            "server_cpu_percent": self.server_cpu_percent,
            "client_cpu_percent": self.client_cpu_percent,
        }


def _or_blank(value: float | None) -> object:
    return "" if value is None else value


@dataclass(frozen=True, slots=True)
class Options:
    seconds: float
    clients: list[int]
    keys: int
    http_clients: list[str]
    redis: bool
    root: Path
    json_path: Path | None
    wrk: bool = False
    wrk_connections: int = 8
    wrk_seconds: float = 10.0


async def measure_with_cpu(
    system: str,
    operation: str,
    operations: Sequence[AsyncOperation],
    seconds: float,
    server_pid: int | None,
) -> Row:
    """Run `operations` concurrently for `seconds`; note the server's and this process's CPU use."""
    server_before = None if server_pid is None else _common.process_cpu_seconds(server_pid)
    client_before = time.process_time()
    wall_before = time.perf_counter()
    result = await _common.measure_tasks(operations, seconds)
    wall_s = time.perf_counter() - wall_before
    client_percent = (time.process_time() - client_before) / wall_s * 100
    server_after = None if server_pid is None else _common.process_cpu_seconds(server_pid)
    server_percent = None
    if server_before is not None and server_after is not None:
        server_percent = (server_after - server_before) / wall_s * 100
    row = Row(system, operation, len(operations), result, server_percent, client_percent)
    _progress(row)
    return row


# ----------------------------------------------------------------------------------- agentlog


class NodeProcess:
    """`python -m query_api.cli.main serve` on a free loopback port with its data in `data_dir`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command_line(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "query_api.cli.main",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data",
            str(self.data_dir / "data"),
            "--fsync",
            "always",
        ]

    def launch(self) -> None:
        """Start the server process (`wait_ready` then waits for it to answer)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = _common.free_port()
        environment = {name: value for name, value in os.environ.items() if not name.startswith("AGENTLOG_")}
        with open(self.data_dir / "server.log", "wb") as log:
            self.process = subprocess.Popen(self.command_line(), stdout=log, stderr=subprocess.STDOUT, env=environment)

    async def wait_ready(self) -> None:
        """Wait until /health answers ok; RuntimeError if the process dies or the wait times out."""
        if self.process is None:
            raise RuntimeError("the node was not launched")
        deadline_s = time.monotonic() + SERVER_START_TIMEOUT_S
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the node exited with {self.process.returncode}: {self._output()}")
                try:
                    response = await client.get("/health")
                    if response.status_code == 200 and response.json().get("status") == "ok":
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline_s:
                    self.stop()
                    raise RuntimeError(f"the node did not answer /health within {SERVER_START_TIMEOUT_S} s")
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        """SIGINT (uvicorn shuts down gracefully, the node closes its log), then kill if it hangs."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _output(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace").strip()[-2000:] if path.exists() else "(no output)"


def http_client(base_url: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, headers=HEADERS, limits=limits, timeout=REQUEST_TIMEOUT_S)


async def preload_node(base_url: str, keys: Sequence[str]) -> None:
    ordered = sorted(keys, key=lambda key: int(key[1:]))
    async with http_client(base_url, 1) as client:
        for start in range(0, len(ordered), PRELOAD_BATCH):
            chunk = ordered[start : start + PRELOAD_BATCH]
            items = [{"key": key, "value": value_of(int(key[1:]))} for key in chunk]
            response = await client.post(f"/v1/kv/{NAMESPACE}/batch-put", json={"items": items})
            if response.status_code != 200:
                raise RuntimeError(f"preload failed: {response.status_code} {response.text[:500]}")


class HttpConnection(Protocol):
    """One client's keep-alive connection: send a request, get the status and body."""

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


class HttpxConnection:
    """An `httpx.AsyncClient` of its own with one keep-alive connection.

    One client per task rather than one shared pool: a shared AsyncClient's pool serializes badly
    under concurrency (encode/httpx#3215); on this benchmark's machine 64 tasks on one shared client
    made ~6x fewer requests than 64 clients of their own.
    """

    def __init__(self, base_url: str) -> None:
        self._client = http_client(base_url, 1)

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else None
        response = await self._client.request(method, path, content=body, headers=headers)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self._client.aclose()


class RawConnection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (Content-Length bodies only).

    Costs the client a fraction of httpx's CPU, so on a small machine it shows more of the server.
    """

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        fixed = "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items())
        self._fixed_headers = f"Host: {host}:{port}\r\n{fixed}"

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._streams
        head = f"{method} {path} HTTP/1.1\r\n{self._fixed_headers}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + (body or b""))
        response_head = await reader.readuntil(b"\r\n\r\n")
        lines = response_head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length: int | None = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"response to {method} {path} has no Content-Length")
        return status, await reader.readexactly(length)

    async def aclose(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self._streams = None


class ErrorNote:
    """Prints the first failed request of a cell to stderr (later ones are only counted)."""

    def __init__(self) -> None:
        self.shown = False

    def show(self, text: str) -> None:
        if not self.shown:
            self.shown = True
            print(f"          first error: {text[:300]}", file=sys.stderr, flush=True)


def http_get_operation(
    connection: HttpConnection, keys: Sequence[str], start: int, errors: ErrorNote
) -> AsyncOperation:
    cycle = itertools.cycle(list(keys[start:]) + list(keys[:start]))

    async def get() -> int:
        status, body = await connection.request("GET", f"/v1/kv/{NAMESPACE}/{next(cycle)}")
        if status == 200:
            return 1
        errors.show(f"GET {status} {body!r}")
        return 0

    return get


def http_put_operation(connection: HttpConnection, worker: int, errors: ErrorNote) -> AsyncOperation:
    counter = itertools.count()

    async def put() -> int:
        n = next(counter)
        body = json.dumps({"value": value_of(n)}, separators=(",", ":")).encode()
        status, answer = await connection.request("PUT", f"/v1/kv/{NAMESPACE}/w{worker}-{n % KEYS_PER_WRITER}", body)
        if status == 200:
            return 1
        errors.show(f"PUT {status} {answer!r}")
        return 0

    return put


async def agentlog_cell(
    node: NodeProcess, client_kind: str, operation: str, clients: int, keys: Sequence[str], seconds: float
) -> Row:
    errors = ErrorNote()
    connections: list[HttpConnection] = [
        HttpxConnection(node.base_url) if client_kind == "httpx" else RawConnection("127.0.0.1", node.port)
        for _ in range(clients)
    ]
    try:
        if operation == "GET":
            step = max(1, len(keys) // clients)
            operations = [
                http_get_operation(connection, keys, worker * step, errors)
                for worker, connection in enumerate(connections)
            ]
        else:
            operations = [
                http_put_operation(connection, worker, errors) for worker, connection in enumerate(connections)
            ]
        pid = None if node.process is None else node.process.pid
        return await measure_with_cpu(f"agentlog HTTP ({client_kind})", operation, operations, seconds, pid)
    finally:
        for connection in connections:
            await connection.aclose()


# ----------------------------------------------------------------------------------- redis


async def preload_redis(port: int, keys: Sequence[str]) -> int:
    """Write the keys; return the server's pid (for its CPU use)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis(host="127.0.0.1", port=port, socket_timeout=REQUEST_TIMEOUT_S)
    try:
        for start in range(0, len(keys), PRELOAD_BATCH):
            chunk = keys[start : start + PRELOAD_BATCH]
            await client.mset({key: value_bytes(int(key[1:])) for key in chunk})
        info = await client.info("server")
        return int(info["process_id"])
    finally:
        await client.aclose()


async def redis_cell(port: int, pid: int, operation: str, clients: int, keys: Sequence[str], seconds: float) -> Row:
    import redis.asyncio as aioredis

    connections = [
        aioredis.Redis(host="127.0.0.1", port=port, socket_timeout=REQUEST_TIMEOUT_S, single_connection_client=True)
        for _ in range(clients)
    ]
    try:
        operations: list[AsyncOperation] = []
        step = max(1, len(keys) // clients)
        for worker, connection in enumerate(connections):
            if operation == "GET":
                operations.append(_redis_get(connection, keys, worker * step))
            else:
                operations.append(_redis_set(connection, worker))
        return await measure_with_cpu("Redis", operation, operations, seconds, pid)
    finally:
        for connection in connections:
            await connection.aclose()


def _redis_get(connection: redis.asyncio.Redis, keys: Sequence[str], start: int) -> AsyncOperation:
    cycle = itertools.cycle(list(keys[start:]) + list(keys[:start]))

    async def get() -> int:
        return 0 if await connection.get(next(cycle)) is None else 1

    return get


def _redis_set(connection: redis.asyncio.Redis, worker: int) -> AsyncOperation:
    counter = itertools.count()

    async def set_value() -> int:
        n = next(counter)
        return 1 if await connection.set(f"w{worker}-{n % KEYS_PER_WRITER}", value_bytes(n)) else 0

    return set_value


# ----------------------------------------------------------------------------------- the run


async def run_all(options: Options) -> tuple[list[Row], list[c_load.CRow]]:
    keys = shuffled_keys(options.keys)
    node = NodeProcess(options.root / "node")
    redis_server = (
        _common.RedisServer(options.root / "redis", appendfsync="always", extra_config=REDIS_EXTRA_CONFIG)
        if options.redis
        else None
    )
    try:
        started_s = time.perf_counter()
        node.launch()
        await node.wait_ready()
        _note(f"agentlog: node up on {node.base_url} in {time.perf_counter() - started_s:.2f} s")
        started_s = time.perf_counter()
        await preload_node(node.base_url, keys)
        _note(f"agentlog: preloaded {len(keys):,} keys in {time.perf_counter() - started_s:.2f} s")
        redis_pid = 0
        if redis_server is not None:
            redis_server.start()
            redis_pid = await preload_redis(redis_server.port, keys)
        rows: list[Row] = []
        for clients in options.clients:
            for operation in OPERATIONS:
                for client_kind in options.http_clients:
                    rows.append(await agentlog_cell(node, client_kind, operation, clients, keys, options.seconds))
                if redis_server is not None:
                    rows.append(
                        await redis_cell(redis_server.port, redis_pid, operation, clients, keys, options.seconds)
                    )
        c_rows: list[c_load.CRow] = []
        if options.wrk:
            _note(f"C load generators: wrk and redis-benchmark, {options.wrk_connections} connections")
            c_rows = await asyncio.to_thread(
                c_load.c_load_rows,
                node.base_url,
                HEADERS,
                NAMESPACE,
                keys,
                json.dumps(value_of(0), separators=(",", ":")),
                None if redis_server is None else redis_server.port,
                options.wrk_connections,
                options.wrk_seconds,
                options.root / "c-load",
            )
            for row in c_rows:
                _note(f"{row.system} {row.operation}: {row.requests_per_s:,.0f} req/s, p99 {row.p99_ms} ms")
        return rows, c_rows
    finally:
        node.stop()
        if redis_server is not None:
            redis_server.stop()


def _progress(row: Row) -> None:
    p50 = row.result.latency_ms(50) or 0.0
    p99 = row.result.latency_ms(99) or 0.0
    server = "" if row.server_cpu_percent is None else f"  server CPU {row.server_cpu_percent:5.0f}%"
    print(
        f"{row.system:>21} {row.operation:<4} x{row.clients:<4} {row.result.ops_per_s:>10,.0f} req/s"
        f"  p50 {p50:8.3f} ms  p99 {p99:8.3f} ms  errors {row.result.errors}{server}"
        f"  client CPU {row.client_cpu_percent:5.0f}%",
        file=sys.stderr,
        flush=True,
    )


def _note(text: str) -> None:
    print(f"          {text}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class TargetCheck:
    target: str
    cell: str
    measured: str
    met: bool


def ratio_rows(rows: Sequence[Row]) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    theirs = {(row.operation, row.clients): row for row in rows if row.system == "Redis"}
    for mine in rows:
        peer = theirs.get((mine.operation, mine.clients))
        if mine.system == "Redis" or peer is None:
            continue
        my_p99 = mine.result.latency_ms(99)
        peer_p99 = peer.result.latency_ms(99)
        found.append(
            {
                "operation": mine.operation,
                "clients": mine.clients,
                "agentlog client": mine.system.removeprefix("agentlog HTTP ").strip("()"),
                "agentlog req/s": round(mine.result.ops_per_s),
                "Redis req/s": round(peer.result.ops_per_s),
                "agentlog ÷ Redis req/s": mine.result.ops_per_s / peer.result.ops_per_s,
                "agentlog p99 ms": _or_blank(my_p99),
                "Redis p99 ms": _or_blank(peer_p99),
                "p99 agentlog ÷ Redis": "" if my_p99 is None or not peer_p99 else my_p99 / peer_p99,
            }
        )
    return found


def target_checks(rows: Sequence[Row]) -> list[TargetCheck]:
    """The issue's target, reported and never asserted."""
    checks: list[TargetCheck] = []
    for row in rows:
        p99 = row.result.latency_ms(99)
        if row.system != "Redis" and row.operation == "GET" and row.clients == 8 and p99 is not None:
            cell = f"GET x8, {row.system}"
            checks.append(TargetCheck("HTTP GET p99 ≤ 5 ms at 8 clients", cell, f"{p99:.2f} ms", p99 <= 5.0))
    return checks


def dataset(options: Options) -> dict[str, str]:
    return {
        "keys": f"{options.keys:,} preloaded, values ~{len(value_bytes(0))} B of JSON; "
        f"each writing client cycles over {KEYS_PER_WRITER:,} keys of its own",
        "node": "agentlog serve (uvicorn, 1 worker) on loopback, FileLog fsync=always, 8 partitions, default settings",
        "HTTP clients": ", ".join(CLIENT_DESCRIPTIONS[kind] for kind in options.http_clients),
        "Redis": "redis-server appendonly yes, appendfsync always, save '', no AOF rewrite; "
        "redis.asyncio, one connection per client"
        if options.redis
        else "left out (--no-redis)",
        "clients": ", ".join(str(clients) for clients in options.clients) + " concurrent asyncio tasks in one process",
        "duration": f"{options.seconds:g} s per cell after one warm-up request per client",
        "data": str(options.root),
    }


def print_report(header: dict[str, dict[str, str]], rows: Sequence[Row], c_rows: Sequence[c_load.CRow] = ()) -> None:
    print(f"**Command**: `{command_line()}`")
    print()
    _common.print_facts(header)
    columns = ["operation", "system", "clients", "requests/s", "p50 ms", "p99 ms", "p99.9 ms", "errors"]
    print(_common.markdown_table([row.table_row() for row in rows], [*columns, "server CPU %", "client CPU %"]))
    ratios = ratio_rows(rows)
    if ratios:
        print()
        print(_common.markdown_table(ratios, list(ratios[0])))
    checks = target_checks(rows)
    if checks:
        print()
        check_rows = [{**_check_dict(check), "met": "yes" if check.met else "no"} for check in checks]
        print(_common.markdown_table(check_rows, ["target", "cell", "measured", "met"]))
    print()
    print(
        "Latency is per request as the client sees it. CPU % is of one core over the cell (2 cores = 200%); "
        "the client process is this benchmark (httpx or redis-py plus the event loop). "
        f"{NOISE_NOTE}"
    )
    if c_rows:
        print()
        print("**C load generators** (wrk for HTTP, redis-benchmark for Redis; same connections and duration):")
        print()
        c_table = [row.table_row() for row in c_rows]
        print(_common.markdown_table(c_table, list(c_table[0])))
        c_ratios = c_load.c_ratio_rows(list(c_rows))
        if c_ratios:
            print()
            print(_common.markdown_table(c_ratios, list(c_ratios[0])))
    print(f"Load average at the end: {_common.load_average()}.")


def _check_dict(check: TargetCheck) -> dict[str, object]:
    return {"target": check.target, "cell": check.cell, "measured": check.measured, "met": check.met}


def command_line() -> str:
    return " ".join(["python", *sys.argv])


def write_json(
    path: Path, header: dict[str, dict[str, str]], rows: Sequence[Row], c_rows: Sequence[c_load.CRow] = ()
) -> None:
    document = {
        **header,
        "command": command_line(),
        "cells": [row.as_json() for row in rows],
        "c_load_cells": [row.table_row() for row in c_rows],
        "c_load_ratios": c_load.c_ratio_rows(list(c_rows)),
        "ratios": ratio_rows(rows),
        "targets": [_check_dict(check) for check in target_checks(rows)],
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


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="HTTP GET/PUT load on an agentlog node beside Redis GET/SET.")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each cell (default 5)")
    parser.add_argument("--clients", type=_int_list, default=[1, 8, 64], help="concurrent clients (1,8,64)")
    parser.add_argument("--keys", type=int, default=10_000, help="keys preloaded for GETs (default 10,000)")
    parser.add_argument(
        "--http-client",
        choices=["httpx", "raw", "both"],
        default="httpx",
        help="agentlog's HTTP client: httpx.AsyncClient, a minimal asyncio HTTP/1.1 client, or both (httpx)",
    )
    parser.add_argument("--no-redis", action="store_true", help="leave Redis out")
    parser.add_argument(
        "--wrk",
        choices=["auto", "yes", "no"],
        default="auto",
        help="also drive agentlog and etcd's gateway with wrk and Redis with redis-benchmark (auto: if wrk is on PATH)",
    )
    parser.add_argument("--wrk-connections", type=int, default=8, help="connections of the C load cells (default 8)")
    parser.add_argument("--wrk-seconds", type=float, default=10.0, help="duration of each C load cell (default 10)")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the temp data dir goes (default: .)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def check_arguments(arguments: argparse.Namespace) -> str | None:
    """Why the arguments cannot run, or None."""
    if not 0 < arguments.seconds <= 600:
        return "--seconds must be within (0, 600]"
    if max(arguments.clients) > CLIENTS_MAX:
        return f"--clients: at most {CLIENTS_MAX}"
    if not 1 <= arguments.keys <= 1_000_000:
        return "--keys must be within 1..1,000,000"
    if arguments.wrk == "yes":
        for tool in ("wrk", "etcd", "redis-benchmark"):
            if shutil.which(tool) is None:
                return f"{tool} not found on PATH: run bench/install-peers.sh as root (Debian packages)"
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
        print(f"http_load: {problem}", file=sys.stderr)
        return 2
    arguments.dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="agentlog-bench-", dir=arguments.dir))
    options = Options(
        seconds=arguments.seconds,
        clients=arguments.clients,
        keys=arguments.keys,
        http_clients=["httpx", "raw"] if arguments.http_client == "both" else [arguments.http_client],
        redis=not arguments.no_redis,
        root=root,
        json_path=arguments.json,
        wrk=arguments.wrk == "yes" or (arguments.wrk == "auto" and c_load.wrk_available() and c_load.etcd_available()),
        wrk_connections=arguments.wrk_connections,
        wrk_seconds=arguments.wrk_seconds,
    )
    try:
        header = {
            "Machine": _common.machine_info(root),
            "Versions": {**_common.stack_versions(), **c_load.peer_versions()},
            "Dataset": dataset(options),
        }
        rows, c_rows = asyncio.run(run_all(options))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_report(header, rows, c_rows)
    if options.json_path is not None:
        write_json(options.json_path, header, rows, c_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
