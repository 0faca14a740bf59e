"""Processors: the run summary in-process (embedded) and as `agentlog worker` (Faust) on a real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from commands import Caller, CommandProducer, KvPut, decode_record, stamp
from eventlog.memory import MemoryLog
from projections.catalog import new_state
from projections.processors import RUN_SUMMARY_NAMESPACE, expiry_commands, sweep_expired
from projections.records import RecordsModel
from tests.kafka.support import PARTITIONS, REPO, kafka_settings, statuses, unique
from tests.kafka_broker import KafkaHandle
from tests.query_api.http_node import file_settings, serve

TENANT = "acme"


def run_to_end(client: httpx.Client, run_id: str, events: int, status: str = "succeeded") -> dict[str, Any]:
    """Begin a run, append `events` events, end it; return the run as read afterwards."""
    assert client.post("/v1/runs", json={"run_id": run_id, "name": run_id}).status_code == 201
    for seq in range(events):
        response = client.post(f"/v1/runs/{run_id}/events", json={"type": "step", "payload": {"seq": seq}})
        assert response.status_code == 200, response.text
    ended = client.post(f"/v1/runs/{run_id}/end", json={"status": status})
    assert ended.status_code == 200, ended.text
    run = client.get(f"/v1/runs/{run_id}", params={"token": ended.json()["token"]})
    assert run.status_code == 200, run.text
    found: dict[str, Any] = run.json()
    return found


def wait_summary(client: httpx.Client, run_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """The run's summary record once a processor has written it."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get(f"/v1/kv/{RUN_SUMMARY_NAMESPACE}/summary/{run_id}")
        if response.status_code == 200:
            found: dict[str, Any] = response.json()
            return found
        assert response.status_code == 404, response.text
        if time.monotonic() > deadline:
            raise AssertionError(f"no summary of run {run_id} within {timeout_s} s")
        time.sleep(0.1)


def check_summary(summary: dict[str, Any], run: dict[str, Any]) -> None:
    """The summary record matches the run it summarizes, and was written once."""
    value = summary["value"]
    assert value["run_id"] == run["run_id"], (value, run)
    assert (value["events"], value["last_hash"], value["status"]) == (run["events"], run["last_hash"], run["status"])
    assert value["ended_at_ms"] == run["ended_at_ms"]
    assert summary["version"] == 1, summary
    assert summary["created_by"] == "agentlog.processor.run_summary"


def log_end(base_url: str) -> int:
    """Records in the node's topic, all partitions."""
    [status] = statuses([base_url])
    return sum(p["end_offset"] for p in status["partitions"])


def wait_quiet(base_url: str, quiet_s: float = 3.0, timeout_s: float = 60.0) -> int:
    """Wait until the log end has not moved for `quiet_s` and the node has applied it; return the end."""
    deadline = time.monotonic() + timeout_s
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        [status] = statuses([base_url])
        end: int = sum(p["end_offset"] for p in status["partitions"])
        if end != last or any(p["lag"] for p in status["partitions"]):
            last, since = end, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return end
        time.sleep(0.2)
    raise AssertionError(f"the log did not settle within {timeout_s} s")


# ------------------------------------------------------------------------------------------ embedded


def test_embedded_node_writes_run_summaries_once(tmp_path: Path) -> None:
    settings = file_settings(tmp_path)
    assert settings.runs_processors()
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30, headers={"X-Tenant": TENANT}) as client:
        runs = {run_id: run_to_end(client, run_id, events) for run_id, events in (("r1", 3), ("r2", 0), ("r3", 5))}
        failed = client.post("/v1/runs", json={"run_id": "r4"})
        assert failed.status_code == 201
        assert client.post("/v1/runs/r4/end", json={"status": "failed"}).status_code == 200
        assert client.post("/v1/runs/r4/end", json={"status": "cancelled"}).status_code == 409  # rejected: no summary
        runs["r4"] = client.get("/v1/runs/r4").json()
        for run_id, run in runs.items():
            check_summary(wait_summary(client, run_id), run)
        end = wait_quiet(url, quiet_s=1.0)
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30, headers={"X-Tenant": TENANT}) as client:
        # The restarted node scans the log again: every summary is known, nothing new is appended.
        assert wait_quiet(url, quiet_s=1.5) == end
        for run_id, run in runs.items():
            check_summary(wait_summary(client, run_id), run)


def test_memory_and_kafka_nodes_leave_processors_to_the_worker() -> None:
    assert not kafka_settings("127.0.0.1:9092", "t").runs_processors()
    assert kafka_settings("127.0.0.1:9092", "t", processors="on").runs_processors()
    assert not file_settings(Path("/tmp/x"), processors="off").runs_processors()


@pytest.mark.anyio
async def test_sweeps_in_one_second_share_command_ids() -> None:
    log = MemoryLog()
    await log.create_topic("main", 2)
    producer = CommandProducer(log, "main")
    state = new_state(2)
    for key in ("a", "b"):
        await producer.submit(stamp(KvPut(key=key, value=1, ttl_s=1), Caller(tenant=TENANT), namespace="ns"))
    for partition in range(2):
        for record in await log.read("main", partition, 0):
            state.apply_record(record)
    records = state.model("records")
    assert isinstance(records, RecordsModel)
    expires = min(r.expires_at_ms or 0 for r in (records.get(TENANT, "ns", k, 0) for k in "ab") if r is not None)
    assert expiry_commands(records, expires - 1) == []
    first = [e.command_id for e in expiry_commands(records, expires + 10)]
    again = [e.command_id for e in expiry_commands(records, expires + 20)]
    later = [e.command_id for e in expiry_commands(records, expires + 1_010)]
    assert len(first) == 2
    assert first == again  # another node sweeping in the same second appends retries, applied once
    assert set(first).isdisjoint(later)  # a later sweep is a new attempt (log time may lag the sweeper's clock)
    assert await sweep_expired(producer, records, expires + 10) == 2
    ids = [decode_record(r).command_id for p in range(2) for r in await log.read("main", p, 0)]
    assert set(first) <= set(ids)
    await log.close()


# ------------------------------------------------------------------------------------------ Kafka worker


@contextmanager
def worker_process(servers: str, topic: str, group: str, work_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`agentlog worker` as a child process; killed (SIGKILL) on exit unless already gone."""
    env = {**os.environ, "AGENTLOG_TOPIC": topic, "AGENTLOG_PARTITIONS": str(PARTITIONS)}
    command = [
        sys.executable,
        "-m",
        "query_api.cli.main",
        "worker",
        "--log",
        f"kafka://{servers}",
        "--group",
        group,
        "--work-dir",
        str(work_dir),
        "--loglevel",
        "info",
    ]
    work_dir.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / "worker.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def worker_output(work_dir: Path) -> str:
    """The end of a worker's output, for failure messages."""
    try:
        return (work_dir / "worker.log").read_bytes().decode(errors="replace")[-4000:]
    except OSError:
        return "<no output>"


@pytest.mark.kafka
@pytest.mark.slow
def test_faust_worker_derives_run_summaries_end_to_end(kafka_cluster: KafkaHandle, tmp_path: Path) -> None:
    servers = kafka_cluster.bootstrap_servers
    topic, group = unique("worker"), unique("group")
    settings = kafka_settings(servers, topic)
    with serve(settings) as url, httpx.Client(base_url=url, timeout=60, headers={"X-Tenant": TENANT}) as client:
        runs = {"w1": run_to_end(client, "w1", 2)}  # before any worker runs: derived once it starts
        with worker_process(servers, topic, group, tmp_path / "w-a") as first:
            runs["w2"] = run_to_end(client, "w2", 4, status="failed")
            try:
                for run_id in ("w1", "w2"):
                    check_summary(wait_summary(client, run_id, timeout_s=90), runs[run_id])
            except AssertionError as error:
                raise AssertionError(f"{error}\n{worker_output(tmp_path / 'w-a')}") from None
            os.kill(first.pid, signal.SIGKILL)  # no commit, no goodbye: the group redelivers from its last commit
            first.wait(timeout=30)
        runs["w3"] = run_to_end(client, "w3", 1)  # while no worker runs
        with worker_process(servers, topic, group, tmp_path / "w-b"):
            try:
                check_summary(wait_summary(client, "w3", timeout_s=90), runs["w3"])
            except AssertionError as error:
                raise AssertionError(f"{error}\n{worker_output(tmp_path / 'w-b')}") from None
            # A second group re-reads the topic from the start and derives everything again: same command ids.
            with worker_process(servers, topic, unique("fresh"), tmp_path / "w-c"):
                runs["w4"] = run_to_end(client, "w4", 3)
                check_summary(wait_summary(client, "w4", timeout_s=90), runs["w4"])
                wait_quiet(url, quiet_s=3.0, timeout_s=90)
        for run_id, run in runs.items():
            check_summary(wait_summary(client, run_id), run)
        [status] = statuses([url])
        assert status["undecodable_records"] == 0
