"""Helpers of the Kafka-mode tests: nodes as subprocesses, a mixed workload, waiting for equal cuts.

PYTEST_DONT_REWRITE: the asserts here carry their own messages.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from projections.cut import merge_token
from query_api.settings import Settings

__all__ = [
    "PARTITIONS",
    "REPO",
    "NodeProcess",
    "clients",
    "final_token",
    "free_port",
    "kafka_settings",
    "mixed_workload",
    "read_back",
    "statuses",
    "unique",
    "wait_equal_cuts",
    "warm_up",
]

REPO = Path(__file__).resolve().parents[2]
_RUN = uuid.uuid4().hex[:6]
_COUNTER = itertools.count()
#: Partitions of the test topics (fewer than the default 8: less work for a 2-core machine).
PARTITIONS = 4


def unique(base: str) -> str:
    """A topic (or group) name no other test of any session on this broker uses."""
    return f"k{_RUN}-{next(_COUNTER)}-{base}"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def kafka_settings(servers: str, topic: str, **overrides: object) -> Settings:
    """Settings of an in-process node on `topic` of the Kafka cluster at `servers` (no sweeper, no snapshots)."""
    values: dict[str, object] = {
        "log": f"kafka://{servers}",
        "topic": topic,
        "partitions": PARTITIONS,
        "sweep_interval_ms": 0,
        "snapshot_every": 0,
        "write_timeout_ms": 30_000,
        "read_wait_ms_max": 30_000,
    }
    values.update(overrides)
    return Settings.model_validate(values)


class NodeProcess:
    """`agentlog serve --log kafka://...` as a child process (for kill -9), on a fixed port."""

    def __init__(self, servers: str, topic: str, snapshot_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.servers = servers
        self.topic = topic
        self.snapshot_dir = snapshot_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = snapshot_dir.parent / f"node-{self.port}.log"

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the node and wait until /health answers."""
        env = {
            **os.environ,
            "AGENTLOG_TOPIC": self.topic,
            "AGENTLOG_PARTITIONS": str(PARTITIONS),
            "AGENTLOG_SWEEP_INTERVAL_MS": "0",
            **self.extra_env,
        }
        command = [
            sys.executable,
            "-m",
            "query_api.cli.main",
            "serve",
            "--log",
            f"kafka://{self.servers}",
            "--port",
            str(self.port),
            "--snapshot-dir",
            str(self.snapshot_dir),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"node exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        pytest.fail(f"node did not become healthy within {timeout_s} s: {self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the node's output."""
        try:
            return self.log_path.read_bytes().decode(errors="replace")[-chars:]
        except OSError:
            return "<no output>"

    def kill(self) -> None:
        """kill -9 the node and reap it."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM the node (graceful), kill -9 if it lingers."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def mixed_workload(client: httpx.Client, prefix: str, rounds: int) -> list[str]:
    """KV puts (some conditional, some failing), deletes, batch puts, state CAS, runs with events, vectors.

    Returns the consistency tokens of the writes (a merge of them is a cut covering them all).
    """
    tokens: list[str] = []

    def keep(response: httpx.Response) -> None:
        assert response.status_code in (200, 201, 409, 404), response.text
        body = response.json()
        if "token" in body:
            tokens.append(body["token"])

    keep(client.put(f"/v1/collections/{prefix}-vec", json={"dimension": 4, "metric": "cosine"}))
    for i in range(rounds):
        key = f"{prefix}-k{i % 7}"
        keep(client.put(f"/v1/kv/{prefix}/{key}", json={"value": {"i": i, "text": f"v{i}"}}))
        keep(client.put(f"/v1/kv/{prefix}/{key}", json={"value": i, "if_version": 1}))  # conflicts mostly
        if i % 5 == 4:
            keep(client.delete(f"/v1/kv/{prefix}/{prefix}-k{(i + 3) % 7}"))
        if i % 4 == 0:
            items = [{"key": f"{prefix}-b{i}-{j}", "value": [i, j]} for j in range(3)]
            keep(client.post(f"/v1/kv/{prefix}-batch/batch-put", json={"items": items}))
        keep(client.post(f"/v1/state/{prefix}-s{i % 3}/cas", json={"expected_version": i // 3, "value": i}))
        if i % 3 == 0:
            run_id = f"{prefix}-run{i}"
            keep(client.post("/v1/runs", json={"run_id": run_id, "name": f"run {i}"}))
            for step in range(3):
                keep(client.post(f"/v1/runs/{run_id}/events", json={"type": "step", "payload": {"step": step}}))
            if i % 2 == 0:
                keep(client.post(f"/v1/runs/{run_id}/end", json={"status": "succeeded", "result": i}))
        vector = [float(i % 5), 1.0, float(i % 3), 0.5]
        keep(client.put(f"/v1/collections/{prefix}-vec/vectors/v{i % 11}", json={"embedding": vector}))
    return tokens


def final_token(tokens: list[str], partitions: int = PARTITIONS) -> str:
    """One token covering every token in `tokens`."""
    merged = ""
    for token in tokens:
        merged = merge_token(merged, token, partitions)
    return merged


def statuses(base_urls: list[str]) -> list[dict[str, Any]]:
    """/v1/status of each node."""
    found = []
    for base_url in base_urls:
        response = httpx.get(f"{base_url}/v1/status", timeout=30)
        assert response.status_code == 200, response.text
        found.append(response.json())
    return found


def wait_equal_cuts(base_urls: list[str], timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """Wait until every node has applied the log's end (and so the same cut); return their statuses."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = statuses(base_urls)
        cuts = [[p["applied_offset"] for p in status["partitions"]] for status in found]
        ends = [[p["end_offset"] for p in status["partitions"]] for status in found]
        if all(cut == cuts[0] for cut in cuts) and all(end == cuts[0] for end in ends):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"nodes did not reach one cut within {timeout_s} s: applied {cuts}, ends {ends}")
        time.sleep(0.2)


def warm_up(base_urls: list[str]) -> None:
    """One request per node, one node at a time, before concurrent load on in-process nodes.

    FastAPI builds its routes' dependants at the first request, under `warnings.catch_warnings()`, which
    is not thread-safe: two in-process servers doing that at once can let pydantic's warning escape as
    an error under pytest's `filterwarnings = error`. A 404 walks every router, so all are built here.
    """
    for base_url in base_urls:
        assert httpx.get(f"{base_url}/v1/__warm_up__", timeout=30).status_code == 404
        assert httpx.get(f"{base_url}/health", timeout=30).status_code == 200


def read_back(client: httpx.Client, namespace: str, key: str, token: str) -> httpx.Response:
    """GET a key, waiting for `token` first."""
    return client.get(f"/v1/kv/{namespace}/{key}", params={"token": token})


@contextmanager
def clients(base_urls: list[str], tenant: str, timeout_s: float = 60.0) -> Iterator[list[httpx.Client]]:
    """One client per node, all for `tenant`."""
    opened = [
        httpx.Client(base_url=url, timeout=timeout_s, headers={"X-Tenant": tenant, "X-Agent-Id": "tester"})
        for url in base_urls
    ]
    try:
        yield opened
    finally:
        for client in opened:
            client.close()
