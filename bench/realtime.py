"""Push latency: from a write's acknowledgement to its frame at a subscriber, agentlog beside Redis pub/sub.

Run it by hand (never in CI) from the repository root, with the project's environment:

    python bench/realtime.py                      # 1 and 100 subscribers, 1,000 writes/s, 5 s per cell
    python bench/realtime.py --seconds 3 --subscribers 1 --rate 500

- agentlog: `agentlog serve` (a subprocess, embedded log, fsync=always). A paced writer (open loop,
  `--rate` writes/s, up to 64 in flight) PUTs `/v1/kv/rt/<n>` over httpx; one measuring subscriber in
  this process holds a WebSocket on `/v1/ws?namespace=rt`; the other N-1 subscribers read and discard
  in a second process (so their parsing does not share this process's loop). Latency = the frame's
  arrival minus the PUT's acknowledgement (negative: the frame came before the HTTP answer; the node
  queues the frame when it applies the write, before it answers), and the frame's arrival minus the
  moment the PUT was sent.
- Redis (the peer): redis-server with `appendfsync always`; the writer sends `SET` + `PUBLISH` in one
  pipeline at the same rate; subscribers as above on one channel. Latency = message arrival minus the
  pipeline's answer.

The machine's cores are shared by the node, the writer and the subscribers: figures are the system's.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import _common
import httpx
import orjson
from http_load import NodeProcess

#: Writes in flight at most (the writer is paced; this bounds a stall).
IN_FLIGHT_MAX = 64


def _passive_websockets(url: str, count: int, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    async def main() -> None:
        from websockets.asyncio.client import connect

        async def one() -> None:
            async with connect(url, max_size=None) as ws:
                async for _ in ws:
                    pass

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        await asyncio.sleep(1.0)
        ready.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def _passive_redis(port: int, count: int, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    async def main() -> None:
        import redis.asyncio as redis

        async def one() -> None:
            client = redis.Redis(port=port)
            pubsub = client.pubsub()
            await pubsub.subscribe("rt")
            async for _ in pubsub.listen():
                pass

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        await asyncio.sleep(1.0)
        ready.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


async def paced_writes(
    rate: int, seconds: float, write: Callable[[int], Awaitable[None]], sent: dict[int, float], acked: dict[int, float]
) -> None:
    """`write(n)` at `rate`/s for `seconds` (open loop), recording send and acknowledgement times."""
    gate = asyncio.Semaphore(IN_FLIGHT_MAX)
    start = time.perf_counter()
    total = int(rate * seconds)

    async def one(n: int) -> None:
        try:
            sent[n] = time.perf_counter()
            await write(n)
            acked[n] = time.perf_counter()
        finally:
            gate.release()

    tasks = []
    for n in range(total):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await gate.acquire()
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)


def summary(
    system: str, subscribers: int, rate: int, sent: dict[int, float], acked: dict[int, float], got: dict[int, float]
) -> dict[str, object]:
    """One result row: percentiles of arrival minus acknowledgement and minus send, in ms."""
    after_ack = [(got[n] - acked[n]) * 1000 for n in got if n in acked]
    after_send = [(got[n] - sent[n]) * 1000 for n in got if n in sent]
    return {
        "system": system,
        "subscribers": subscribers,
        "writes/s": rate,
        "writes": len(acked),
        "frames": len(got),
        "ack→frame p50 ms": round(_common.percentile(after_ack, 50), 2) if after_ack else None,
        "ack→frame p99 ms": round(_common.percentile(after_ack, 99), 2) if after_ack else None,
        "send→frame p50 ms": round(_common.percentile(after_send, 50), 2) if after_send else None,
        "send→frame p99 ms": round(_common.percentile(after_send, 99), 2) if after_send else None,
    }


async def run_agentlog(node: NodeProcess, subscribers: int, rate: int, seconds: float) -> dict[str, object]:
    """One agentlog cell."""
    from websockets.asyncio.client import connect

    ws_url = "ws" + node.base_url[4:] + "/v1/ws?namespace=rt"
    ready = multiprocessing.Event()
    passive = None
    if subscribers > 1:
        passive = multiprocessing.Process(target=_passive_websockets, args=(ws_url, subscribers - 1, ready))
        passive.start()
        ready.wait(30)
    sent: dict[int, float] = {}
    acked: dict[int, float] = {}
    got: dict[int, float] = {}
    limits = httpx.Limits(max_connections=IN_FLIGHT_MAX, max_keepalive_connections=IN_FLIGHT_MAX)
    run = time.time_ns()
    try:
        async with (
            connect(ws_url, max_size=None) as ws,
            httpx.AsyncClient(base_url=node.base_url, limits=limits) as http,
        ):
            await ws.recv()
            total = int(rate * seconds)

            async def receive() -> None:
                while len(got) < total:
                    frame = orjson.loads(await ws.recv())
                    value = frame["command"].get("value")
                    if isinstance(value, dict) and value.get("run") == run:
                        got[int(value["n"])] = time.perf_counter()

            async def write(n: int) -> None:
                response = await http.put(f"/v1/kv/rt/k{n % 1000}", json={"value": {"run": run, "n": n}})
                response.raise_for_status()

            receiver = asyncio.create_task(receive())
            await paced_writes(rate, seconds, write, sent, acked)
            await asyncio.wait_for(receiver, 30)
    finally:
        if passive is not None:
            passive.terminate()
            passive.join()
    return summary("agentlog", subscribers, rate, sent, acked, got)


async def run_redis(port: int, subscribers: int, rate: int, seconds: float) -> dict[str, object]:
    """One Redis cell."""
    import redis.asyncio as redis

    ready = multiprocessing.Event()
    passive = None
    if subscribers > 1:
        passive = multiprocessing.Process(target=_passive_redis, args=(port, subscribers - 1, ready))
        passive.start()
        ready.wait(30)
    sent: dict[int, float] = {}
    acked: dict[int, float] = {}
    got: dict[int, float] = {}
    writer = redis.Redis(port=port, max_connections=IN_FLIGHT_MAX)
    listener = redis.Redis(port=port)
    pubsub = listener.pubsub()
    await pubsub.subscribe("rt")
    total = int(rate * seconds)
    try:

        async def receive() -> None:
            async for message in pubsub.listen():
                if message["type"] == "message":
                    got[int(message["data"])] = time.perf_counter()
                    if len(got) >= total:
                        return

        async def write(n: int) -> None:
            async with writer.pipeline(transaction=False) as pipe:
                pipe.set(f"rt:k{n % 1000}", orjson.dumps({"n": n}))
                pipe.publish("rt", str(n))
                await pipe.execute()

        receiver = asyncio.create_task(receive())
        await paced_writes(rate, seconds, write, sent, acked)
        await asyncio.wait_for(receiver, 30)
    finally:
        await pubsub.aclose()
        await listener.aclose()
        await writer.aclose()
        if passive is not None:
            passive.terminate()
            passive.join()
    return summary("Redis pub/sub", subscribers, rate, sent, acked, got)


async def main_async(arguments: argparse.Namespace) -> list[dict[str, object]]:
    """Every cell, agentlog and Redis alternating."""
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(dir=arguments.dir) as scratch:
        node = NodeProcess(Path(scratch) / "node")
        node.launch()
        await node.wait_ready()
        try:
            with _common.RedisServer(Path(scratch) / "redis", appendfsync="always") as redis_server:
                for subscribers in arguments.subscribers:
                    print(f"agentlog, {subscribers} subscribers...", file=sys.stderr)
                    rows.append(await run_agentlog(node, subscribers, arguments.rate, arguments.seconds))
                    print(f"Redis, {subscribers} subscribers...", file=sys.stderr)
                    rows.append(await run_redis(redis_server.port, subscribers, arguments.rate, arguments.seconds))
        finally:
            node.stop()
    return rows


def main() -> None:
    """Parse arguments, run, print facts and the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=int, default=1_000, help="Writes per second")
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--dir", type=Path, default=Path.cwd())
    arguments = parser.parse_args()
    rows = asyncio.run(main_async(arguments))
    _common.print_facts(
        {
            "Machine": _common.machine_info(arguments.dir),
            "Versions": _common.stack_versions() | {"websockets": _common.package_version("websockets")},
        }
    )
    columns = list(rows[0])
    print(_common.markdown_table(rows, columns))
    for agentlog_row, redis_row in zip(rows[0::2], rows[1::2], strict=True):
        ours, theirs = agentlog_row["send→frame p99 ms"], redis_row["send→frame p99 ms"]
        if isinstance(ours, float) and isinstance(theirs, float) and theirs > 0:
            print(
                f"\n{agentlog_row['subscribers']} subscribers: send→frame p99 agentlog / Redis = {ours / theirs:.2f}x"
            )


if __name__ == "__main__":
    main()
