"""Helpers shared by the benchmark scripts of bench/: machine facts, statistics, tables, a throwaway Redis.

Benchmarks import this module through the script directory on sys.path (`import _common`); the
library never imports it. It needs only the standard library (Redis is spoken to over a raw socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import TracebackType

__all__ = [
    "REDIS_INSTALL_HINT",
    "Exhausted",
    "LoadResult",
    "RedisServer",
    "RedisUnavailableError",
    "filesystem_of",
    "format_count",
    "format_significant",
    "free_port",
    "load_average",
    "machine_info",
    "markdown_table",
    "measure_tasks",
    "measure_threads",
    "package_version",
    "percentile",
    "print_facts",
    "process_cpu_seconds",
    "redis_server_version",
    "stack_versions",
]

#: What to tell a person whose machine has no redis-server.
REDIS_INSTALL_HINT = "install it with `apt-get update && apt-get install -y redis-server` (Debian/Ubuntu)"
#: Longest wait for a started redis-server to answer PING.
REDIS_START_TIMEOUT_S = 15.0
#: Longest wait for a redis-server to exit after SHUTDOWN, before it is killed.
REDIS_STOP_TIMEOUT_S = 15.0


# ----------------------------------------------------------------------------------- machine


def machine_info(data_dir: Path) -> dict[str, str]:
    """CPU model, cores, memory, kernel, the filesystem that holds `data_dir`, and the load right now."""
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count() or 0),
        "memory": f"{_memory_total_bytes() / 2**30:.1f} GiB",
        "kernel": f"{platform.system()} {platform.release()}",
        "filesystem": filesystem_of(data_dir),
        "load average": load_average(),
    }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (busy neighbours make figures noisy), or `unknown`."""
    try:
        return ", ".join(f"{load:.2f}" for load in os.getloadavg()) + " (1, 5, 15 min)"
    except OSError:
        return "unknown"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_total_bytes() -> int:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def filesystem_of(path: Path) -> str:
    """`<type> on <device> (<mount point>)` of the mount holding `path` (Linux), or `unknown`."""
    target = os.path.realpath(path)
    best: tuple[str, str, str] | None = None
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                device, mount_point, fs_type = line.split()[:3]
                inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
                if inside and (best is None or len(mount_point) >= len(best[1])):
                    best = (device, mount_point, fs_type)
    except OSError:
        return "unknown"
    if best is None:
        return "unknown"
    device, mount_point, fs_type = best
    return f"{fs_type} on {device} ({mount_point})"


def package_version(distribution: str) -> str:
    """The installed version of a Python distribution, or `not installed`."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


# ----------------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0..100) of `values`, interpolated linearly between ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# ----------------------------------------------------------------------------------- tables


def format_count(value: float) -> str:
    """An integer with thousands separators: `1,234,567`."""
    return f"{round(value):,}"


def format_significant(value: float, digits: int = 3) -> str:
    """`value` with about `digits` significant digits and never an exponent: 0.135, 12.3, 4567."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}"


def markdown_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    """A GitHub Markdown table of `rows`; a missing cell is blank.

    Integers get thousands separators and floats about three significant digits; a column whose
    non-blank cells are all numbers is aligned right.
    """
    cells = [[_cell_text(row.get(column, "")) for column in columns] for row in rows]
    widths = [max([len(column), 3, *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)]
    numeric = [_is_numeric_column([row.get(column, "") for row in rows]) for column in columns]
    header = "| " + " | ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True)) + " |"
    rule = "| " + " | ".join(_rule(width, right) for width, right in zip(widths, numeric, strict=True)) + " |"
    body = [
        "| "
        + " | ".join(
            text.rjust(width) if right else text.ljust(width)
            for text, width, right in zip(line, widths, numeric, strict=True)
        )
        + " |"
        for line in cells
    ]
    return "\n".join([header, rule, *body])


def _is_numeric_column(values: Sequence[object]) -> bool:
    filled = [value for value in values if value != ""]
    return bool(filled) and all(isinstance(value, int | float) and not isinstance(value, bool) for value in filled)


def _cell_text(value: object) -> str:
    if isinstance(value, bool):
        text = str(value)
    elif isinstance(value, int):
        text = format_count(value)
    elif isinstance(value, float):
        text = format_significant(value)
    else:
        text = str(value)
    return text.replace("|", "\\|")


def _rule(width: int, right: bool) -> str:
    return "-" * (width - 1) + ":" if right else "-" * width


# ----------------------------------------------------------------------------------- redis


class RedisUnavailableError(RuntimeError):
    """No redis-server executable on PATH."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` right now (the kernel's pick; another process could still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def redis_server_version(executable: str = "redis-server") -> str:
    """The version `redis-server --version` reports (`7.0.15`), or RedisUnavailableError."""
    path = shutil.which(executable)
    if path is None:
        raise RedisUnavailableError(f"{executable} not found on PATH: {REDIS_INSTALL_HINT}")
    output = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout
    for word in output.split():
        if word.startswith("v="):
            return word.removeprefix("v=")
    return output.strip()


class RedisServer:
    """A private redis-server on a free loopback port with its data in `data_dir`; stopped on exit.

    Persistence is AOF only (`appendonly yes`, `save ''`); `appendfsync` is `always`, `everysec` or `no`.
    `extra_config` adds `--name value` pairs to the command line.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        appendfsync: str = "always",
        extra_config: Mapping[str, str] | None = None,
        executable: str = "redis-server",
        host: str = "127.0.0.1",
    ) -> None:
        if appendfsync not in ("always", "everysec", "no"):
            raise ValueError(f"appendfsync {appendfsync!r}: expected always, everysec or no")
        path = shutil.which(executable)
        if path is None:
            raise RedisUnavailableError(f"{executable} not found on PATH: {REDIS_INSTALL_HINT}")
        self.executable = path
        self.data_dir = data_dir
        self.appendfsync = appendfsync
        self.extra_config = dict(extra_config or {})
        self.host = host
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def command_line(self) -> list[str]:
        """The redis-server command line for the current port."""
        config = {
            "port": str(self.port),
            "bind": self.host,
            "dir": str(self.data_dir),
            "appendonly": "yes",
            "appendfsync": self.appendfsync,
            "save": "",
            "daemonize": "no",
            "logfile": str(self.data_dir / "redis.log"),
            **self.extra_config,
        }
        arguments = [self.executable]
        for name, value in config.items():
            arguments += [f"--{name}", value]
        return arguments

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port(self.host)
        with open(self.data_dir / "redis.stderr", "wb") as stderr:
            self._process = subprocess.Popen(self.command_line(), stdout=subprocess.DEVNULL, stderr=stderr)
        deadline_s = time.monotonic() + REDIS_START_TIMEOUT_S
        while not self._answers_ping():
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}: {self._startup_error()}")
            if time.monotonic() > deadline_s:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING within {REDIS_START_TIMEOUT_S} s")
            time.sleep(0.02)

    def stop(self) -> None:
        """Shut the server down without saving (killing it if it does not exit in time)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(OSError):  # the server closes the connection as it exits
            self._send(b"SHUTDOWN NOSAVE\r\n")
        try:
            process.wait(REDIS_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _answers_ping(self) -> bool:
        try:
            return self._send(b"PING\r\n").startswith(b"+PONG")
        except OSError:
            return False

    def _send(self, inline_command: bytes) -> bytes:
        with socket.create_connection((self.host, self.port), timeout=1.0) as connection:
            connection.sendall(inline_command)
            return connection.recv(64)

    def _startup_error(self) -> str:
        logs = [self.data_dir / "redis.log", self.data_dir / "redis.stderr"]
        text = "".join(log.read_text(errors="replace") for log in logs if log.exists())
        return text.strip()[-2000:] or "(no output)"


# ----------------------------------------------------------------------------------- load loops
# Added for node_ops.py, http_load.py and rebuild.py; general enough for any throughput benchmark.


class Exhausted(Exception):
    """Raised by a load operation that has no more work (a pre-built pool ran dry): its worker stops."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What the workers of one measurement did between their common start and the last operation's end.

    `ops` counts operations that succeeded (returned more than 0 items), `errors` those that returned
    0; `items` sums what the operations returned (a batch of 100 counts 100); latencies are per
    successful operation.
    """

    workers: int
    ops: int
    items: int
    errors: int
    elapsed_s: float
    latencies_s: list[float] = field(repr=False)

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def items_per_s(self) -> float:
        return self.items / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def latency_ms(self, q: float) -> float | None:
        """The `q`-th percentile of the latencies in ms, or None without latencies."""
        return percentile(self.latencies_s, q) * 1000 if self.latencies_s else None


@dataclass(slots=True)
class _WorkerOutcome:
    ops: int = 0
    items: int = 0
    errors: int = 0
    finished_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)

    def record(self, items: int, started_s: float, finished_s: float) -> None:
        if items > 0:
            self.ops += 1
            self.items += items
            self.latencies_s.append(finished_s - started_s)
        else:
            self.errors += 1
        self.finished_s = finished_s


def _merge_outcomes(outcomes: Sequence[_WorkerOutcome], start_s: float) -> LoadResult:
    finished_s = max([start_s, *(outcome.finished_s for outcome in outcomes)])
    return LoadResult(
        workers=len(outcomes),
        ops=sum(outcome.ops for outcome in outcomes),
        items=sum(outcome.items for outcome in outcomes),
        errors=sum(outcome.errors for outcome in outcomes),
        elapsed_s=finished_s - start_s,
        latencies_s=[latency for outcome in outcomes for latency in outcome.latencies_s],
    )


def _thread_worker(
    operation: Callable[[], int], barrier: threading.Barrier, seconds: float, warmup_ops: int
) -> _WorkerOutcome:
    try:
        for _ in range(warmup_ops):
            operation()
    except BaseException:
        barrier.abort()
        raise
    barrier.wait()
    outcome = _WorkerOutcome()
    deadline_s = time.perf_counter() + seconds
    now_s = time.perf_counter()
    outcome.finished_s = now_s
    while now_s < deadline_s:
        try:
            items = operation()
        except Exhausted:
            break
        finished_s = time.perf_counter()
        outcome.record(items, now_s, finished_s)
        now_s = finished_s
    return outcome


def measure_threads(
    operations: Sequence[Callable[[], int]], seconds: float, *, warmup_ops: int = 1, start_timeout_s: float = 120.0
) -> LoadResult:
    """One thread per operation, each calling it in a loop for `seconds` after `warmup_ops` calls.

    An operation returns the items it did (0: it failed, counted as an error) or raises Exhausted.
    """
    barrier = threading.Barrier(len(operations) + 1)
    with ThreadPoolExecutor(max_workers=len(operations), thread_name_prefix="bench-worker") as pool:
        futures = [pool.submit(_thread_worker, operation, barrier, seconds, warmup_ops) for operation in operations]
        try:
            barrier.wait(start_timeout_s)
        except threading.BrokenBarrierError:
            for future in futures:
                future.result()  # raises the worker's own error
            raise
        start_s = time.perf_counter()
        outcomes = [future.result() for future in futures]
    return _merge_outcomes(outcomes, start_s)


async def _task_worker(operation: Callable[[], Awaitable[int]], deadline_s: float) -> _WorkerOutcome:
    outcome = _WorkerOutcome()
    now_s = time.perf_counter()
    outcome.finished_s = now_s
    while now_s < deadline_s:
        try:
            items = await operation()
        except Exhausted:
            break
        finished_s = time.perf_counter()
        outcome.record(items, now_s, finished_s)
        now_s = finished_s
    return outcome


async def measure_tasks(
    operations: Sequence[Callable[[], Awaitable[int]]], seconds: float, *, warmup_ops: int = 1
) -> LoadResult:
    """One asyncio task per operation, each awaiting it in a loop for `seconds` after `warmup_ops` calls.

    An operation returns the items it did (0: it failed, counted as an error) or raises Exhausted.
    """
    for _ in range(warmup_ops):
        await asyncio.gather(*(operation() for operation in operations))
    start_s = time.perf_counter()
    outcomes = await asyncio.gather(*(_task_worker(operation, start_s + seconds) for operation in operations))
    return _merge_outcomes(outcomes, start_s)


# ----------------------------------------------------------------------------------- reporting


def stack_versions() -> dict[str, str]:
    """Python, agentlog, Redis server, redis-py, uvicorn and httpx versions (`not installed` when absent)."""
    try:
        redis_server = redis_server_version()
    except (RedisUnavailableError, OSError, subprocess.CalledProcessError):
        redis_server = "not installed"
    return {
        "Python": sys.version.split()[0],
        "agentlog": package_version("agentlog"),
        "Redis server": redis_server,
        "redis-py": package_version("redis"),
        "uvicorn": package_version("uvicorn"),
        "httpx": package_version("httpx"),
    }


def print_facts(header: Mapping[str, Mapping[str, str]]) -> None:
    """Print `**Title**: name value; name value` paragraphs (machine, versions, dataset...)."""
    for title, facts in header.items():
        print(f"**{title}**: " + "; ".join(f"{name} {value}" for name, value in facts.items()))
        print()


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds process `pid` has used so far (Linux /proc), or None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # after the command name: state is field 3, utime field 14, stime field 15 (1-based, man 5 proc)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
