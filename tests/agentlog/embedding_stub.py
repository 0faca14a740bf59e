"""A tiny OpenAI-compatible `/v1/embeddings` server on loopback, for tests (vectors from the hashing embedder)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agentlog.embedders import HashingEmbedder


class StubState:
    """What the stub answers and what it saw."""

    def __init__(self, dim: int) -> None:
        self.embedder = HashingEmbedder(dim)
        self.requests: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        self.body_override: bytes | None = None


@contextmanager
def embedding_stub(dim: int = 32) -> Iterator[tuple[str, StubState]]:
    """Serve the stub on a free port; yields (base URL ending in /v1, state)."""
    state = StubState(dim)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            request = json.loads(self.rfile.read(length))
            state.requests.append({"path": self.path, "body": request, "auth": self.headers.get("authorization")})
            if self.path != "/v1/embeddings":
                self._answer(404, b'{"error": "not found"}')
            elif state.fail_with is not None:
                self._answer(state.fail_with, b'{"error": "boom"}')
            elif state.body_override is not None:
                self._answer(200, state.body_override)
            else:
                vectors = state.embedder.embed(request["input"])
                data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]
                data.reverse()  # indexes, not order, say which vector is which
                self._answer(200, json.dumps({"object": "list", "model": request["model"], "data": data}).encode())

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
