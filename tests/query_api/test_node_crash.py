"""kill -9 of a serving node during writes loses no acknowledged write (invariant 1 through the API)."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_node(data: Path, port: int) -> subprocess.Popen[bytes]:
    """`agentlog serve` on the embedded log in `data`, waiting until /health answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "query_api.cli.main", "serve", "--data", str(data), "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            assert process.stderr is not None
            pytest.fail(f"node exited: {process.stderr.read().decode()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    pytest.fail("node did not become healthy within 60 s")


def writer(
    base: str, worker: int, acknowledged: list[tuple[str, int]], stop: threading.Event, errors: list[BaseException]
) -> None:
    """Put keys until stopped; remember each key whose write was acknowledged with its version."""
    try:
        _write_until_stopped(base, worker, acknowledged, stop)
    except BaseException as error:
        errors.append(error)


def _write_until_stopped(base: str, worker: int, acknowledged: list[tuple[str, int]], stop: threading.Event) -> None:
    with httpx.Client(base_url=base, timeout=5, headers={"X-Tenant": "crash", "X-Agent-Id": f"w{worker}"}) as client:
        seq = 0
        while not stop.is_set():
            key = f"w{worker}-{seq}"
            try:
                response = client.put(f"/v1/kv/crash/{key}", json={"value": {"worker": worker, "seq": seq}})
            except httpx.HTTPError:
                return
            if response.status_code == 200:
                acknowledged.append((key, response.json()["result"]["version"]))
            seq += 1


@pytest.mark.slow
def test_acknowledged_writes_survive_kill_9_of_the_node(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    for cycle in range(3):
        node = start_node(data, port)
        acknowledged: list[tuple[str, int]] = []
        stop = threading.Event()
        errors: list[BaseException] = []
        threads = [threading.Thread(target=writer, args=(base, w, acknowledged, stop, errors)) for w in range(8)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 50 * (cycle + 1) and time.monotonic() < deadline and not errors:
            time.sleep(0.01)
        time.sleep(random.uniform(0, 0.3))
        os.kill(node.pid, signal.SIGKILL)
        node.wait()
        assert node.stderr is not None
        node.stderr.close()
        stop.set()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(acknowledged) > 20, f"cycle {cycle}: only {len(acknowledged)} writes acknowledged"
        node = start_node(data, port)
        try:
            with httpx.Client(base_url=base, timeout=10, headers={"X-Tenant": "crash"}) as client:
                missing = []
                for key, version in acknowledged:
                    response = client.get(f"/v1/kv/crash/{key}")
                    if response.status_code != 200 or response.json()["version"] != version:
                        missing.append((key, response.status_code))
                assert missing == [], f"cycle {cycle}: {len(missing)} of {len(acknowledged)} lost: {missing[:5]}"
        finally:
            node.send_signal(signal.SIGTERM)
            node.wait(timeout=30)
            assert node.stderr is not None
            node.stderr.close()
