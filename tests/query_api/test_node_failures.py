"""Failures a client can act on: log and broker errors are 503 with Retry-After, `/health` fails
when the apply loop or the log has, `/ready` tells caught up from started, and a snapshot that
fails to load for any reason is skipped with a warning."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import query_api.node.node as node_module
from eventlog.errors import LogError
from eventlog.memory import MemoryLog
from eventlog.records import AppendResult, Message
from query_api.http.app import create_app
from query_api.node.node import Node
from tests.query_api.http_node import CLIENT_TIMEOUT_S, assert_problem, file_settings, memory_settings, serve_app


@pytest.fixture
def app() -> Iterator[tuple[FastAPI, httpx.Client]]:
    """A node's app served over real HTTP, and a client of it."""
    application = create_app(memory_settings())
    with serve_app(application) as base_url, httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        yield application, client


def _node(app: FastAPI) -> Node:
    node: Node = app.state.node
    return node


def test_a_log_failure_on_write_is_503_with_retry_after(
    app: tuple[FastAPI, httpx.Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = app

    async def unreachable(*_: Any, **__: Any) -> AppendResult:
        raise LogError("kafka: append: KafkaConnectionError: broker unreachable")

    monkeypatch.setattr(MemoryLog, "append", unreachable)
    refused = client.put("/v1/kv/n/k", json={"value": 1})
    body = assert_problem(refused, 503, "log_unavailable")
    assert "broker unreachable" in body["detail"]
    assert refused.headers["Retry-After"] == "1"
    monkeypatch.undo()
    assert client.put("/v1/kv/n/k", json={"value": 1}).status_code == 200
    assert client.get("/health").json() == {"status": "ok"}


def test_health_is_503_once_the_log_or_the_apply_loop_failed(
    app: tuple[FastAPI, httpx.Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    application, client = app
    node = _node(application)
    assert client.get("/health").status_code == 200
    monkeypatch.setattr(node.log, "failure", lambda: "OSError(5, 'fsync failed')")
    failed = client.get("/health")
    assert_problem(failed, 503, "unhealthy")
    assert "fsync failed" in failed.json()["detail"]
    assert failed.headers["Retry-After"] == "1"
    assert_problem(client.get("/ready"), 503, "unhealthy")
    monkeypatch.undo()
    node.engine.error = RuntimeError("apply loop died")
    assert "apply loop died" in assert_problem(client.get("/health"), 503, "unhealthy")["detail"]
    node.engine.error = None
    assert client.get("/health").status_code == 200


def test_ready_tells_caught_up_from_started(app: tuple[FastAPI, httpx.Client]) -> None:
    application, client = app
    node = _node(application)
    assert client.put("/v1/kv/n/k", json={"value": 1}).status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"

    async def append_unapplied() -> None:  # a record the engine cannot have applied yet: stop it first
        await node.engine.stop()
        await node.log.append(node.settings.topic, 0, [Message(b"x", b"k", (("v", b"1"),))])

    async def restart() -> None:
        await node.engine.catch_up()
        node.engine.start()

    loop = node.engine._tasks[0].get_loop()
    asyncio.run_coroutine_threadsafe(append_unapplied(), loop).result(CLIENT_TIMEOUT_S)
    behind = assert_problem(client.get("/ready"), 503, "not_ready")
    assert behind["lag"] == 1
    asyncio.run_coroutine_threadsafe(restart(), loop).result(CLIENT_TIMEOUT_S)
    assert client.get("/ready").status_code == 200


def test_a_snapshot_that_fails_to_load_for_any_reason_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = file_settings(tmp_path)

    async def run() -> tuple[dict[str, str], dict[str, str]]:
        node = await Node.start(settings)
        try:
            from commands import Caller, KvPut, stamp

            for index in range(5):
                await node.execute(stamp(KvPut(key=f"k{index}", value=index), Caller("t"), namespace="n"))
            assert (await node.snapshot()) is not None
            before = node.state.digests()
        finally:
            await node.stop()

        def unloadable(*_: Any, **__: Any) -> Any:
            raise AttributeError("Can't get attribute 'RecordsModel' on <module 'projections.records'>")

        monkeypatch.setattr(node_module, "load_snapshot", unloadable)
        restarted = await Node.start(settings)
        try:
            return before, restarted.state.digests()
        finally:
            await restarted.stop()

    with caplog.at_level(logging.WARNING, logger="agentlog.node"):
        before, after = asyncio.run(run())
    assert after == before  # rebuilt from the log instead
    assert any("skipping snapshot" in r.message and "AttributeError" in r.message for r in caplog.records)
