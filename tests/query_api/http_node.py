"""A real node over real HTTP for tests: uvicorn serving `create_app` in a background thread.

Use the fixtures from a test module with `pytest_plugins = ("tests.query_api.http_node",)`, then
take `http_node` (a `(base_url, client)` pair); override `http_settings` in a module (or a class)
to run the node with other settings. Outside fixtures, `serve(settings)` is the context manager
that does the work, and `HttpNode.new_client()` opens extra clients (one per thread, say).

PYTEST_DONT_REWRITE: test modules import `assert_problem` from here before `pytest_plugins` is read,
too late for assertion rewriting, so the asserts here carry their own messages instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from query_api.http.app import create_app
from query_api.settings import Settings

__all__ = [
    "HttpNode",
    "assert_problem",
    "assert_same_outcome",
    "file_settings",
    "http_node",
    "http_settings",
    "memory_settings",
    "serve",
    "serve_app",
]

#: Fields of a write body that name where the record of *this* request sits: a retry is logged
#: again (and applied as a no-op), so these differ between a first try and its retry.
RETRY_POSITION_FIELDS = ("position", "timestamp_ms", "token")

#: How long the server may take to start (open the log, replay, bind).
STARTUP_TIMEOUT_S = 15.0
#: How long the server may take to stop (finish requests, stop the node, close the log).
SHUTDOWN_TIMEOUT_S = 15.0
#: Timeout of every request the test clients make.
CLIENT_TIMEOUT_S = 30.0


class HttpNode(NamedTuple):
    """A running node: its base URL and a client bound to it (closed by the fixture)."""

    base_url: str
    client: httpx.Client

    def new_client(self, **headers: str) -> httpx.Client:
        """Another client of this node, with extra default headers; the caller closes it."""
        return httpx.Client(base_url=self.base_url, timeout=CLIENT_TIMEOUT_S, headers=headers)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Check that `response` is a problem+json of `status` and `urn:agentlog:error:<code>`; return its body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:agentlog:error:{code}", body
    assert body["status"] == status, body
    return body


def _outcome_part(body: dict[str, Any]) -> dict[str, Any]:
    """`body` without the fields that locate the request's own log record."""
    stable = {key: value for key, value in body.items() if key not in RETRY_POSITION_FIELDS}
    if isinstance(stable.get("write"), dict):
        stable["write"] = _outcome_part(stable["write"])
    return stable


def assert_same_outcome(first: httpx.Response, retry: httpx.Response) -> None:
    """Check that a retry with the same command_id answered the first try's outcome (status, ids, result)."""
    assert retry.status_code == first.status_code, (first.text, retry.text)
    first_body, retry_body = first.json(), retry.json()
    assert _outcome_part(retry_body) == _outcome_part(first_body), (first_body, retry_body)
    first_write = first_body.get("write", first_body)
    retry_write = retry_body.get("write", retry_body)
    assert retry_write["command_id"] == first_write["command_id"], (first_write, retry_write)


def memory_settings(**overrides: object) -> Settings:
    """Settings of a throwaway node: in-memory log, no sweeper, no snapshots (plus `overrides`)."""
    values: dict[str, object] = {"log": "memory://", "sweep_interval_ms": 0, "snapshot_every": 0}
    values.update(overrides)
    return Settings.model_validate(values)


def file_settings(root: Path, **overrides: object) -> Settings:
    """Settings of a node on an embedded file log under `root` (fsync off: tests, not crash tests)."""
    return memory_settings(log=f"file://{root}", fsync="never", **overrides)


@contextmanager
def serve(settings: Settings, *, websockets: bool = False) -> Iterator[str]:
    """Run a node for `settings` on a free loopback port (WebSockets too if asked); yields its base URL."""
    with serve_app(create_app(settings), websockets=websockets) as base_url:
        yield base_url


@contextmanager
def serve_app(app: FastAPI, *, websockets: bool = False) -> Iterator[str]:
    """Serve `app` (from `create_app`) on a free loopback port; yields its base URL, stops it on exit."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="on",
        log_config=None,
        log_level="warning",
        access_log=False,
        ws="websockets-sansio" if websockets else "none",
        timeout_graceful_shutdown=int(SHUTDOWN_TIMEOUT_S),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="agentlog-http-node", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the HTTP node exited during startup (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP node did not start within {STARTUP_TIMEOUT_S} s")
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT_S)
        if thread.is_alive():
            server.force_exit = True
            thread.join(SHUTDOWN_TIMEOUT_S)


@pytest.fixture
def http_settings() -> Settings:
    """The settings `http_node` runs with; override this fixture to change them."""
    return memory_settings()


@pytest.fixture
def http_node(http_settings: Settings) -> Iterator[HttpNode]:
    """A node served over real HTTP for this test, and a client of it."""
    with serve(http_settings) as base_url, httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S) as client:
        yield HttpNode(base_url, client)
