"""Record concurrent histories of state CAS and reads over HTTP, for the linearizability checker."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence

import httpx

from tests.consistency.linearizability import Operation

#: State names the clients contend on (few, so operations overlap).
NAMES = ("r0", "r1", "r2")


def record_history(
    urls: Sequence[str], clients: int, operations_per_client: int, seed: int, consistency: str | None
) -> list[Operation]:
    """Each client (a thread) picks a node per operation and does reads and CAS writes; the history."""
    history: list[Operation] = []
    lock = threading.Lock()
    errors: list[str] = []

    def client(index: int) -> None:
        rng = random.Random(seed * 1_000 + index)
        sessions = [httpx.Client(base_url=url, timeout=60, headers={"X-Tenant": "lin"}) for url in urls]
        known: dict[str, int] = dict.fromkeys(NAMES, 0)
        try:
            for n in range(operations_per_client):
                http = rng.choice(sessions)
                name = rng.choice(NAMES)
                params = {"namespace": "lin"} | ({"consistency": consistency} if consistency else {})
                started = time.monotonic_ns()
                if rng.random() < 0.5:
                    response = http.get(f"/v1/state/{name}", params=params)
                    ended = time.monotonic_ns()
                    if response.status_code == 404:
                        output: tuple[object, ...] = (0, None)
                    elif response.status_code == 200:
                        body = response.json()
                        output = (body["version"], body["value"])
                        known[name] = body["version"]
                    else:
                        errors.append(f"read {response.status_code}: {response.text[:200]}")
                        return
                    operation = Operation(name, started, ended, ("read",), output)
                else:
                    expected = known[name] if rng.random() < 0.8 else rng.randrange(3)
                    value = f"c{index}-{n}"
                    body = {"namespace": "lin", "expected_version": expected, "value": value}
                    response = http.post(f"/v1/state/{name}/cas", json=body)
                    ended = time.monotonic_ns()
                    if response.status_code == 200:
                        output = ("ok", expected + 1)
                        known[name] = expected + 1
                    elif response.status_code == 409:
                        current = response.json()["current_version"]
                        output = ("conflict", current)
                        known[name] = current
                    else:
                        errors.append(f"cas {response.status_code}: {response.text[:200]}")
                        return
                    operation = Operation(name, started, ended, ("cas", expected, value), output)
                with lock:
                    history.append(operation)
        finally:
            for session in sessions:
                session.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    return history
