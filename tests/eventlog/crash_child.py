"""Child process of the crash test: appends under fsync=always and prints each acknowledged batch.

Usage: python -m tests.eventlog.crash_child ROOT CYCLE SEED. Each line on stdout is
`ack <partition> <base_offset> <count> <key of first record>`, printed only after the append returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import sys
from pathlib import Path

from eventlog.errors import TopicExistsError
from eventlog.file import FileLog
from eventlog.records import Message

PARTITIONS = 2
APPENDERS = 8


def value_for(key: bytes) -> bytes:
    """The value stored under `key`: its length and bytes follow from the key alone."""
    digest = hashlib.sha256(key).digest()
    size = 1 + int.from_bytes(digest[:2], "little") % 3000
    return (digest * (size // len(digest) + 1))[:size]


async def appender(log: FileLog, cycle: int, writer: int, rng: random.Random) -> None:
    seq = 0
    while True:
        count = rng.choice([1, 1, 2, 5, 20, 100])
        partition = rng.randrange(PARTITIONS)
        keys = [f"{cycle}:{writer}:{seq}:{i}".encode() for i in range(count)]
        result = await log.append("t", partition, [Message(value_for(k), k) for k in keys])
        sys.stdout.write(f"ack {partition} {result.base_offset} {count} {keys[0].decode()}\n")
        sys.stdout.flush()
        seq += 1


async def main(root: Path, cycle: int, seed: int) -> None:
    log = await FileLog.open(root, fsync="always", segment_bytes=256 * 1024)
    with contextlib.suppress(TopicExistsError):
        await log.create_topic("t", PARTITIONS)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    rng = random.Random(seed)
    await asyncio.gather(*(appender(log, cycle, w, random.Random(rng.random())) for w in range(APPENDERS)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
