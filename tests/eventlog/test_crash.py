"""Invariant 1: an append that returned is never lost, whatever kill -9 follows; reopening always works."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eventlog.file import FileLog, verify_directory
from tests.eventlog.crash_child import PARTITIONS, value_for

#: Kill cycles; CI runs the default, AGENTLOG_CRASH_CYCLES asks for more.
CYCLES = int(os.environ.get("AGENTLOG_CRASH_CYCLES", "50"))
REPO = Path(__file__).resolve().parents[2]


def run_child_and_kill(root: Path, cycle: int, rng: random.Random) -> list[tuple[int, int, int, str]]:
    """Start the child, let it append for a random while, SIGKILL it; return the acks it printed."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.eventlog.crash_child", str(root), str(cycle), str(rng.randrange(1 << 30))],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    first = child.stdout.readline()
    if first != b"ready\n":
        child.kill()
        _, stderr = child.communicate()
        pytest.fail(f"crash child did not start: {first!r} {stderr.decode()[-2000:]}")
    time.sleep(rng.uniform(0.005, 0.25))
    os.kill(child.pid, signal.SIGKILL)
    stdout, _ = child.communicate()
    acks = []
    for line in stdout.decode().splitlines():
        if line.startswith("ack ") and line.count(" ") == 4:
            _, partition, base, count, first_key = line.split(" ")
            acks.append((int(partition), int(base), int(count), first_key))
    return acks


async def check_acknowledged(root: Path, acks: list[tuple[int, int, int, str]]) -> None:
    log = await FileLog.open(root)
    try:
        for partition, base, count, first_key in acks:
            records = await log.read("t", partition, base, max_records=count)
            assert len(records) == count, (partition, base, count)
            cycle, writer, seq, _ = first_key.split(":")
            for index, record in enumerate(records):
                key = f"{cycle}:{writer}:{seq}:{index}".encode()
                assert record.offset == base + index
                assert record.key == key, (partition, base + index)
                assert record.value == value_for(key), (partition, base + index)
    finally:
        await log.close()


@pytest.mark.slow
def test_acknowledged_appends_survive_sigkill(tmp_path: Path) -> None:
    seed = int(os.environ.get("AGENTLOG_CRASH_SEED", random.SystemRandom().randrange(1 << 30)))
    rng = random.Random(seed)
    root = tmp_path / "data"
    acknowledged: list[tuple[int, int, int, str]] = []
    for cycle in range(CYCLES):
        acks = run_child_and_kill(root, cycle, rng)
        asyncio.run(check_acknowledged(root, acks))
        acknowledged.extend(acks)
    asyncio.run(check_acknowledged(root, acknowledged))
    report = verify_directory(root)
    assert report.ok, f"seed {seed}: {report.corruptions}"
    total = sum(count for _, _, count, _ in acknowledged)
    assert total > CYCLES, f"seed {seed}: only {total} records acknowledged over {CYCLES} cycles"
    assert report.records >= total
    assert len({(p, b) for p, b, _, _ in acknowledged}) == len(acknowledged)
    assert {p for p, _, _, _ in acknowledged} == set(range(PARTITIONS))
