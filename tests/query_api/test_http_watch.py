"""Subscriptions over real sockets: uvicorn on loopback, `websockets` and SSE clients.

Frames come in log order with their positions; a subscriber resumed from its cursor after a forced
disconnect gets every frame exactly once; a subscriber that reads nothing is dropped with 1013 while
writers go on, and resumes without gap; tenants see only their own records.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Close, Frame, Opcode
from websockets.uri import parse_uri

from agentlog.watch import Watch
from query_api.cli.main import main
from query_api.settings import Settings
from tests.query_api.http_node import CLIENT_TIMEOUT_S, memory_settings, serve

#: How long a test waits for a frame before calling the subscription stuck (a hang guard, not a timing).
FRAME_WAIT_S = 30.0


@pytest.fixture
def settings() -> Settings:
    return memory_settings(partitions=4)


@pytest.fixture
def base_url(settings: Settings) -> Iterator[str]:
    with serve(settings, websockets=True) as base:
        yield base


def ws_url(base: str, query: str = "") -> str:
    return "ws" + base[4:] + "/v1/ws" + (f"?{query}" if query else "")


def put(client: httpx.Client, namespace: str, key: str, value: Any, tenant: str = "default") -> tuple[int, int]:
    response = client.put(f"/v1/kv/{namespace}/{key}", json={"value": value}, headers={"X-Tenant": tenant})
    assert response.status_code == 200, response.text
    position = response.json()["position"]
    return position["partition"], position["offset"]


def write_all(
    base: str, writes: list[tuple[str, str]], tenant: str = "default"
) -> dict[tuple[str, str], tuple[int, int]]:
    """Write each (namespace, key) once over HTTP; the positions the node answered."""
    positions: dict[tuple[str, str], tuple[int, int]] = {}
    with httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT_S) as client:
        for namespace, key in writes:
            positions[(namespace, key)] = put(client, namespace, key, {"k": key}, tenant)
    return positions


async def next_json(connection: Any) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(await asyncio.wait_for(connection.recv(), FRAME_WAIT_S))
    return body


def test_frames_arrive_in_log_order_with_positions(base_url: str) -> None:
    async def scenario() -> None:
        async with connect(ws_url(base_url, "namespace=ns-a&namespace=ns-b")) as ws:
            hello = await next_json(ws)
            assert hello["type"] == "subscribed"
            assert hello["cursor"] == "0:0,1:0,2:0,3:0"
            writes = [("ns-a" if i % 2 else "ns-b", f"k{i:03d}") for i in range(40)] + [("other", "x")]
            positions = await asyncio.to_thread(write_all, base_url, writes)
            frames = [await next_json(ws) for _ in range(40)]
        got = {
            (f["namespace"], f["command"]["key"]): (f["position"]["partition"], f["position"]["offset"]) for f in frames
        }
        assert got == {key: value for key, value in positions.items() if key[0] != "other"}
        for namespace in ("ns-a", "ns-b"):
            mine = [f for f in frames if f["namespace"] == namespace]
            offsets = [f["position"]["offset"] for f in mine]
            assert offsets == sorted(offsets), offsets
            assert [f["command"]["key"] for f in mine] == sorted(f["command"]["key"] for f in mine)
            assert {f["command_type"] for f in mine} == {"kv.put"}
            assert {f["outcome"] for f in mine} == {"applied"}

    asyncio.run(scenario())


def test_resume_after_forced_disconnects_gives_every_frame_exactly_once(base_url: str) -> None:
    writes = [(f"ns{i % 3}", f"key{i:04d}") for i in range(300)]
    positions: dict[tuple[str, str], tuple[int, int]] = {}

    def writer() -> None:
        positions.update(write_all(base_url, writes))

    async def scenario() -> list[tuple[int, int]]:
        received: list[tuple[int, int]] = []
        cursor = "0:0,1:0,2:0,3:0"  # from the beginning: the backlog, then live frames
        thread = threading.Thread(target=writer)
        started = False
        disconnects = 0
        while len(received) < len(writes):
            async with connect(ws_url(base_url, f"prefix=ns0/key&prefix=ns1/key&prefix=ns2/key&after={cursor}")) as ws:
                hello = await next_json(ws)
                assert hello["cursor"] == cursor
                if not started:
                    thread.start()
                    started = True
                cut = dict(map(int, part.split(":")) for part in cursor.split(",")) if cursor else {}
                batch = 37 + 11 * disconnects
                for _ in range(batch):
                    if len(received) == len(writes):
                        break
                    frame = await next_json(ws)
                    p, o = frame["position"]["partition"], frame["position"]["offset"]
                    received.append((p, o))
                    cut[p] = o + 1
                cursor = ",".join(f"{p}:{o}" for p, o in sorted(cut.items()))
                if len(received) < len(writes):
                    ws.transport.abort()  # a forced disconnect: no close handshake
                    disconnects += 1
        thread.join()
        assert disconnects >= 5
        return received

    received = asyncio.run(scenario())
    assert len(received) == len(set(received)), "a frame came twice"
    assert set(received) == set(positions.values()), "a frame is missing or unexpected"


def test_sdk_watch_resumes_by_itself(base_url: str) -> None:
    writes = [("sdk", f"k{i:03d}") for i in range(60)]

    async def scenario() -> tuple[list[tuple[int, int]], dict[tuple[str, str], tuple[int, int]], Watch]:
        positions = await asyncio.to_thread(write_all, base_url, writes[:30])
        subscription = Watch(base_url, namespaces=["sdk"], after="")
        received: list[tuple[int, int]] = []
        iterator = aiter(subscription)
        for _ in range(30):
            frame = await asyncio.wait_for(anext(iterator), FRAME_WAIT_S)
            received.append(frame.position)
        await iterator.aclose()  # the consumer goes away; a new watch resumes from its cursor
        resumed = Watch(base_url, namespaces=["sdk"], after=subscription.cursor)
        positions.update(await asyncio.to_thread(write_all, base_url, writes[30:]))
        iterator = aiter(resumed)
        for _ in range(30):
            frame = await asyncio.wait_for(anext(iterator), FRAME_WAIT_S)
            assert frame.command_type == "kv.put"
            assert frame.namespace == "sdk"
            received.append(frame.position)
        await iterator.aclose()
        return received, positions, resumed

    received, positions, resumed = asyncio.run(scenario())
    assert len(received) == len(set(received)) == 60
    assert set(received) == set(positions.values())
    assert resumed.cursor is not None


class StalledSubscriber:
    """A WebSocket client on a blocking socket with a small fixed receive buffer that reads only when told."""

    def __init__(self, url: str) -> None:
        uri = parse_uri(url)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Fixed (not autotuned) receive buffer: the node's send path backs up after a few frames.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
        self.socket.settimeout(FRAME_WAIT_S)
        self.socket.connect((uri.host, uri.port))
        self.protocol = ClientProtocol(uri, max_size=None)
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        self.pending: list[Frame] = []

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.socket.sendall(data)

    def next_frame(self) -> Frame:
        """The next data or close frame (answering pings and the close handshake on the way)."""
        while not self.pending:
            data = self.socket.recv(65_536)
            if not data:
                self.protocol.receive_eof()
            else:
                self.protocol.receive_data(data)
            self._flush()
            for event in self.protocol.events_received():
                if isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CLOSE):
                    self.pending.append(event)
            if not data and not self.pending:
                raise EOFError("connection closed without a close frame")
        return self.pending.pop(0)

    def close(self) -> None:
        self.socket.close()


class TestSlowSubscriber:
    @pytest.fixture
    def settings(self) -> Settings:
        return memory_settings(partitions=2, subscriber_queue_frames=32)

    def test_slow_subscriber_is_dropped_with_1013_writers_go_on_and_it_resumes(self, base_url: str) -> None:
        big = "x" * 65_536
        total = 300
        slow = StalledSubscriber(ws_url(base_url, "namespace=big"))
        try:
            hello = orjson.loads(slow.next_frame().data)
            assert hello["type"] == "subscribed"
            fast_frames: list[tuple[int, int]] = []

            async def fast(ready: threading.Event) -> None:
                async with connect(ws_url(base_url, "namespace=big"), max_size=None) as ws:
                    await next_json(ws)
                    ready.set()
                    while len(fast_frames) < total:
                        frame = await next_json(ws)
                        fast_frames.append((frame["position"]["partition"], frame["position"]["offset"]))

            ready = threading.Event()
            fast_thread = threading.Thread(target=lambda: asyncio.run(fast(ready)))
            fast_thread.start()
            assert ready.wait(FRAME_WAIT_S)
            # Every write is acknowledged while the slow subscriber reads nothing past its greeting.
            positions: dict[tuple[str, str], tuple[int, int]] = {}
            with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
                for i in range(total):
                    positions[("big", f"k{i:04d}")] = put(client, "big", f"k{i:04d}", big)
            fast_thread.join(FRAME_WAIT_S * 3)
            assert set(fast_frames) == set(positions.values()), "the fast subscriber missed frames"
            # Now read the slow one: what was buffered for it, then the 1013 close.
            slow_frames: list[tuple[int, int]] = []
            while True:
                frame = slow.next_frame()
                if frame.opcode == Opcode.CLOSE:
                    assert Close.parse(frame.data).code == 1013
                    break
                body = orjson.loads(frame.data)
                slow_frames.append((body["position"]["partition"], body["position"]["offset"]))
        finally:
            slow.close()
        assert len(slow_frames) < total

        cut = dict(map(int, part.split(":")) for part in hello["cursor"].split(","))
        for p, o in slow_frames:
            cut[p] = max(cut[p], o + 1)
        after = ",".join(f"{p}:{o}" for p, o in sorted(cut.items()))

        async def resume() -> None:
            async with connect(ws_url(base_url, f"namespace=big&after={after}"), max_size=None) as ws:
                await next_json(ws)
                while len(slow_frames) < total:
                    frame = await next_json(ws)
                    slow_frames.append((frame["position"]["partition"], frame["position"]["offset"]))

        asyncio.run(resume())
        assert len(slow_frames) == len(set(slow_frames)), "a frame came twice"
        assert set(slow_frames) == set(positions.values())


def test_a_subscriber_sees_only_its_tenant(base_url: str) -> None:
    async def scenario() -> None:
        async with connect(ws_url(base_url), additional_headers={"X-Tenant": "acme"}) as ws:
            await next_json(ws)
            await asyncio.to_thread(write_all, base_url, [("shared", "from-globex")], "globex")
            await asyncio.to_thread(write_all, base_url, [("shared", "from-acme")], "acme")
            frame = await next_json(ws)
            assert frame["command"]["key"] == "from-acme"
            # The backlog is filtered by tenant too.
        async with connect(ws_url(base_url, "after=0:0,1:0,2:0,3:0"), additional_headers={"X-Tenant": "globex"}) as ws:
            await next_json(ws)
            frame = await next_json(ws)
            assert frame["command"]["key"] == "from-globex"
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)

    asyncio.run(scenario())


def test_bad_subscriptions_are_refused_with_a_problem(base_url: str) -> None:
    async def refused(query: str) -> tuple[int, dict[str, Any]]:
        with pytest.raises(InvalidStatus) as error:
            async with connect(ws_url(base_url, query)):
                pass
        response = error.value.response
        return response.status_code, orjson.loads(response.body or b"{}")

    async def scenario() -> None:
        status, body = await refused("after=garbage")
        assert (status, body["type"]) == (400, "urn:agentlog:error:invalid_token")
        status, body = await refused("prefix=no-slash")
        assert (status, body["type"]) == (400, "urn:agentlog:error:invalid")
        status, body = await refused("namespace=bad/name")
        assert (status, body["type"]) == (400, "urn:agentlog:error:invalid")
        status, body = await refused("after=0:99")
        assert (status, body["type"]) == (409, "urn:agentlog:error:token_ahead")

    asyncio.run(scenario())


def test_sse_stream_pushes_and_resumes_by_last_event_id(base_url: str) -> None:
    positions = write_all(base_url, [("sse", f"k{i}") for i in range(5)])

    def read_events(client: httpx.Client, headers: dict[str, str], count: int) -> list[tuple[str, str, bytes]]:
        events: list[tuple[str, str, bytes]] = []
        with client.stream("GET", "/v1/events/stream?namespace=sse", headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            fields: dict[str, str] = {}
            for line in response.iter_lines():
                if line:
                    name, _, value = line.partition(": ")
                    fields[name] = value
                    continue
                events.append((fields["event"], fields["id"], fields["data"].encode()))
                fields = {}
                if len(events) == count:
                    break
        return events

    with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        first = read_events(client, {"Last-Event-ID": "0:0,1:0,2:0,3:0"}, 4)
        assert [event[0] for event in first] == ["subscribed", "record", "record", "record"]
        write_all(base_url, [("sse", "k5"), ("sse", "k6")])
        rest = read_events(client, {"Last-Event-ID": first[-1][1]}, 5)
    got = [orjson.loads(data) for kind, _, data in first[1:] + rest[1:] if kind == "record"]
    assert len(got) == 7
    expected = set(positions.values())
    seen = {(f["position"]["partition"], f["position"]["offset"]) for f in got}
    assert expected <= seen
    assert len(seen) == 7


def test_cli_watch_streams_json_lines(base_url: str) -> None:
    positions = write_all(base_url, [("cli", f"k{i}") for i in range(3)] + [("not-this", "x")])
    result = CliRunner().invoke(main, ["watch", "--url", base_url, "--namespace", "cli", "--after", "", "--limit", "3"])
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.output.splitlines()]
    assert {(line["partition"], line["offset"]) for line in lines} == {
        value for key, value in positions.items() if key[0] == "cli"
    }
    assert all(line["command_type"] == "kv.put" for line in lines)
