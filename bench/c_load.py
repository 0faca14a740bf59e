"""C load generators for `bench/http_load.py`: `wrk` against agentlog and etcd's HTTP/JSON gateway, `redis-benchmark`.

The peers come from Debian packages (`bench/install-peers.sh`): wrk 4, etcd 3.4 (`etcd-server`) and
Redis 7 (`redis-server`, `redis-tools`). Each peer runs in its own temporary directory on loopback:

- etcd: one member, WAL fsync on (etcd's default; `--unsafe-no-fsync` is not given), the v3 JSON
  gateway on its client port. GET is `POST /v3/kv/range`, PUT `POST /v3/kv/put`, keys and values
  base64 in JSON bodies, as the gateway wants them.
- Redis: `appendonly yes`, `appendfsync always`, `save ''`; `redis-benchmark -t get,set -d <bytes>`.
- agentlog: the node `bench/http_load.py` already runs (FileLog, fsync=always), GET and PUT on
  `/v1/kv/bench/<key>` with the same ~100 B values; wrk drives keep-alive connections.

wrk and redis-benchmark report requests/s and latency percentiles (wrk: 50/99 % from `--latency`;
redis-benchmark: its CSV). Every cell uses the same connection count and duration.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import _common
import httpx

__all__ = [
    "CRow",
    "EtcdServer",
    "c_load_rows",
    "c_ratio_rows",
    "etcd_available",
    "peer_versions",
    "wrk_available",
]

#: Threads wrk runs (the machine has 2 cores; the server shares them).
WRK_THREADS = 2
#: Longest wait for etcd to answer after start.
ETCD_START_TIMEOUT_S = 30.0
#: Keys each write cell cycles over (as the Python-client cells).
WRITE_KEYS = 1_000


@dataclass(frozen=True, slots=True)
class CRow:
    """One cell driven by a C load generator."""

    system: str
    operation: str
    connections: int
    requests_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int

    def table_row(self) -> dict[str, object]:
        return {
            "operation": self.operation,
            "system": self.system,
            "connections": self.connections,
            "requests/s": round(self.requests_per_s),
            "p50 ms": "" if self.p50_ms is None else self.p50_ms,
            "p99 ms": "" if self.p99_ms is None else self.p99_ms,
            "errors": self.errors,
        }


def wrk_available() -> bool:
    """True when wrk is on PATH."""
    return shutil.which("wrk") is not None


def etcd_available() -> bool:
    """True when etcd is on PATH."""
    return shutil.which("etcd") is not None


def peer_versions() -> dict[str, str]:
    """wrk, etcd and redis-benchmark versions (`not installed` when absent)."""

    def first_line(command: list[str]) -> str:
        if shutil.which(command[0]) is None:
            return "not installed"
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        text = (done.stdout or done.stderr).strip()
        line = text.splitlines()[0] if text else "unknown"
        for prefix in ("etcd Version: ", "redis-benchmark ", "wrk "):
            line = line.removeprefix(prefix)
        return line.split(" Copyright")[0]

    return {
        "wrk": first_line(["wrk", "--version"]),
        "etcd": first_line(["etcd", "--version"]),
        "redis-benchmark": first_line(["redis-benchmark", "--version"]),
    }


# -- wrk ------------------------------------------------------------------------------------------------

_LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for ASCII text


def _script(method: str, paths: list[str], bodies: list[str] | None, headers: dict[str, str]) -> str:
    """A wrk Lua script cycling over `paths` (and `bodies`), per thread from a different start."""
    lines = [
        "local paths = {" + ", ".join(_lua_string(path) for path in paths) + "}",
        "local bodies = {" + ", ".join(_lua_string(body) for body in (bodies or [])) + "}",
        "local headers = {" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()) + "}",
        "local counter = 0",
        "setup = function(thread) thread:set('start', math.random(1, #paths)) end",
        "init = function(args) counter = tonumber(start) or 1 end",
        "request = function()",
        "  counter = counter + 1",
        "  local index = (counter % #paths) + 1",
        "  local body = nil",
        "  if #bodies > 0 then body = bodies[index] end",
        f"  return wrk.format({_lua_string(method)}, paths[index], headers, body)",
        "end",
    ]
    return "\n".join(lines) + "\n"


def run_wrk(base_url: str, script: str, connections: int, seconds: float, work_dir: Path, name: str) -> CRow:
    """Run wrk with `script` against `base_url`; parse requests/s, p50 and p99, non-2xx and socket errors."""
    path = work_dir / f"{name.replace(' ', '-')}.lua"
    path.write_text(script)
    command = [
        "wrk",
        f"-t{min(WRK_THREADS, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "-s",
        str(path),
        base_url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=seconds + 60)
    output = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if done.returncode != 0 or rate is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {output[-1000:]} {done.stderr[-1000:]}")
    latencies = {match[0]: float(match[1]) * _UNITS_MS[match[2]] for match in _LATENCY.findall(output)}
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket:
        errors += sum(int(value) for value in socket.groups())
    system, operation = name.rsplit(" ", 1)
    return CRow(system, operation, connections, float(rate.group(1)), latencies.get("50"), latencies.get("99"), errors)


# -- etcd -------------------------------------------------------------------------------------------------


class EtcdServer:
    """One etcd 3.4 member on loopback ports with its data in `data_dir` (WAL fsync on)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.client_port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.client_port, peer_port = _common.free_port(), _common.free_port()
        client, peer = f"http://127.0.0.1:{self.client_port}", f"http://127.0.0.1:{peer_port}"
        command = [
            "etcd",
            "--name",
            "bench",
            "--data-dir",
            str(self.data_dir / "member"),
            "--listen-client-urls",
            client,
            "--advertise-client-urls",
            client,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"bench={peer}",
            "--log-level",
            "error",
        ]
        with open(self.data_dir / "etcd.log", "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + ETCD_START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"etcd exited: {(self.data_dir / 'etcd.log').read_text()[-1000:]}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("etcd did not become healthy")
            time.sleep(0.1)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def version(self) -> str:
        return str(httpx.get(f"{self.base_url}/version", timeout=5.0).json().get("etcdserver", "unknown"))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def preload_etcd(base_url: str, keys: list[str], value: str) -> None:
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        for key in keys:
            response = client.post("/v3/kv/put", json={"key": _b64(key), "value": _b64(value)})
            response.raise_for_status()


# -- redis-benchmark ------------------------------------------------------------------------------------


def run_redis_benchmark(port: int, connections: int, requests: int, value_bytes: int, keys: int) -> list[CRow]:
    """`redis-benchmark -t get,set`: requests/s and p50/p99 from its CSV output."""
    command = [
        "redis-benchmark",
        "-p",
        str(port),
        "-c",
        str(connections),
        "-n",
        str(requests),
        "-d",
        str(value_bytes),
        "-r",
        str(keys),
        "-t",
        "set,get",
        "--csv",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"redis-benchmark failed: {done.stderr[-1000:]}")
    rows: list[CRow] = []
    for record in csv.DictReader(io.StringIO(done.stdout)):
        operation = {"GET": "GET", "SET": "PUT"}.get(record["test"])
        if operation is None:
            continue
        p50 = float(record["p50_latency_ms"]) if "p50_latency_ms" in record else None
        p99 = float(record["p99_latency_ms"]) if "p99_latency_ms" in record else None
        rows.append(CRow("redis-benchmark", operation, connections, float(record["rps"]), p50, p99, 0))
    return rows


# -- the section ------------------------------------------------------------------------------------------


def c_load_rows(
    agentlog_url: str,
    headers: dict[str, str],
    namespace: str,
    keys: list[str],
    value_json: str,
    redis_port: int | None,
    connections: int,
    seconds: float,
    work_dir: Path,
) -> list[CRow]:
    """agentlog (wrk), etcd's gateway (wrk) and Redis (redis-benchmark), GET then PUT, in one run."""
    work_dir.mkdir(parents=True, exist_ok=True)
    rows: list[CRow] = []
    get_paths = [f"/v1/kv/{namespace}/{key}" for key in keys[:WRITE_KEYS]]
    put_paths = [f"/v1/kv/{namespace}/w{n}" for n in range(WRITE_KEYS)]
    put_bodies = [f'{{"value":{value_json}}}'] * WRITE_KEYS
    json_headers = {**headers, "Content-Type": "application/json"}
    rows.append(
        run_wrk(
            agentlog_url, _script("GET", get_paths, None, headers), connections, seconds, work_dir, "agentlog (wrk) GET"
        )
    )
    rows.append(
        run_wrk(
            agentlog_url,
            _script("PUT", put_paths, put_bodies, json_headers),
            connections,
            seconds,
            work_dir,
            "agentlog (wrk) PUT",
        )
    )
    etcd = EtcdServer(work_dir / "etcd")
    try:
        etcd.start()
        preload_etcd(etcd.base_url, keys[:WRITE_KEYS], value_json)
        range_bodies = [json.dumps({"key": _b64(key)}) for key in keys[:WRITE_KEYS]]
        put_etcd = [json.dumps({"key": _b64(f"w{n}"), "value": _b64(value_json)}) for n in range(WRITE_KEYS)]
        gateway = {"Content-Type": "application/json"}
        rows.append(
            run_wrk(
                etcd.base_url,
                _script("POST", ["/v3/kv/range"] * WRITE_KEYS, range_bodies, gateway),
                connections,
                seconds,
                work_dir,
                "etcd gateway (wrk) GET",
            )
        )
        rows.append(
            run_wrk(
                etcd.base_url,
                _script("POST", ["/v3/kv/put"] * WRITE_KEYS, put_etcd, gateway),
                connections,
                seconds,
                work_dir,
                "etcd gateway (wrk) PUT",
            )
        )
    finally:
        etcd.stop()
    if redis_port is not None:
        requests = max(10_000, int(20_000 * seconds))
        rows.extend(run_redis_benchmark(redis_port, connections, requests, len(value_json), len(keys)))
    return rows


def c_ratio_rows(rows: list[CRow]) -> list[dict[str, object]]:
    """agentlog ÷ etcd and agentlog ÷ Redis, requests/s and p99, per operation."""
    found: list[dict[str, object]] = []
    for operation in ("GET", "PUT"):
        cells = {row.system: row for row in rows if row.operation == operation}
        mine = cells.get("agentlog (wrk)")
        if mine is None:
            continue
        for peer_name in ("etcd gateway (wrk)", "redis-benchmark"):
            peer = cells.get(peer_name)
            if peer is None or not peer.requests_per_s:
                continue
            p99_ratio: object = ""
            if mine.p99_ms is not None and peer.p99_ms:
                p99_ratio = mine.p99_ms / peer.p99_ms
            found.append(
                {
                    "operation": operation,
                    "peer": peer_name,
                    "agentlog req/s": round(mine.requests_per_s),
                    "peer req/s": round(peer.requests_per_s),
                    "agentlog ÷ peer req/s": mine.requests_per_s / peer.requests_per_s,
                    "agentlog p99 ms": "" if mine.p99_ms is None else mine.p99_ms,
                    "peer p99 ms": "" if peer.p99_ms is None else peer.p99_ms,
                    "p99 agentlog ÷ peer": p99_ratio,
                }
            )
    return found
