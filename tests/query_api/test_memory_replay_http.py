"""A node restarted on its log replays memories without embedding anything, and serves them the same."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from agentlog.embedders import HashingEmbedder
from query_api.http.app import create_app
from query_api.node.memory_edge import EdgeEmbedder
from tests.query_api.http_node import CLIENT_TIMEOUT_S, STARTUP_TIMEOUT_S, file_settings


@contextmanager
def serve_app(app: FastAPI) -> Iterator[httpx.Client]:
    """Serve `app` on a free loopback port; a client of it."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_config=None, log_level="warning", ws="none")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            assert thread.is_alive(), "the node exited during startup"
            assert time.monotonic() < deadline, "the node did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=CLIENT_TIMEOUT_S) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(30)


def counting_embedder(app: FastAPI) -> HashingEmbedder:
    edge = app.state.embedder
    assert isinstance(edge, EdgeEmbedder)
    inner = edge.inner
    assert isinstance(inner, HashingEmbedder)
    return inner


TEXTS = ["Alice prefers tea", "Bob deploys on Fridays", "The office is in Oslo", "Alice prefers tea"]


def test_restart_replays_memories_with_zero_embedder_calls(tmp_path: Path) -> None:
    settings = file_settings(tmp_path / "data", snapshot_every=0)
    first = create_app(settings)
    with serve_app(first) as client:
        for text in TEXTS:
            assert client.post("/v1/memories", json={"content": text}).status_code == 200
        assert client.put("/v1/memories/2", json={"content": "Bob deploys on Mondays"}).status_code == 200
        assert client.delete("/v1/memories/3").status_code == 200
        embedder = counting_embedder(first)
        assert embedder.texts_embedded == 4  # three distinct texts, one new content; the repeat came from the cache
        query = {"query": "who prefers tea", "mode": "hybrid", "k": 5}
        before = client.post("/v1/search", json=query).json()
        digests = client.get("/v1/status").json()["digests"]
        vectors = [client.get(f"/v1/memories/{i}", params={"include_embedding": "true"}).json() for i in (1, 2, 3, 4)]

    second = create_app(settings)
    with serve_app(second) as client:
        replayed = counting_embedder(second)
        assert client.get("/v1/status").json()["digests"] == digests
        assert replayed.calls == 0
        again = [client.get(f"/v1/memories/{i}", params={"include_embedding": "true"}).json() for i in (1, 2, 3, 4)]
        assert again == vectors
        assert replayed.calls == 0
        assert client.post("/v1/search", json=query).json() == before
        assert replayed.calls == 1  # the query itself, embedded at the edge
