"""`agentlog.memory.Memory` against a real node over HTTP, and in embedded mode."""

from __future__ import annotations

from agentlog import AgentlogClient, connect
from agentlog.embedders import HashingEmbedder
from agentlog.memory import Memory
from tests.query_api.http_node import HttpNode

pytest_plugins = ("tests.query_api.http_node",)


def exercise(memory: Memory) -> None:
    first = memory.add("User prefers Rust over Python for new projects", tags=["preferences"])
    second = memory.add("User prefers Italian food", tags=["preferences", "food"])
    memory.add("The deploy pipeline uses a CI runner", user_id="someone-else")
    assert (first, second) == (1, 2)
    hits = memory.search("does the user prefer Python or Rust")
    assert [hit.memory.id for hit in hits][:1] == [1]
    assert hits[0].lexical is not None
    assert hits[0].vector is not None
    assert {hit.memory.id for hit in hits} <= {1, 2}  # the default scope keeps the other user's memory out
    assert [m.id for m in memory.recall(tags=["preferences", "food"])] == [2]
    assert memory.update(2, content="User prefers Japanese food", reason="moved on") == 2
    item = memory.get(2)
    assert item is not None
    assert item.content == "User prefers Japanese food"
    assert memory.forget(1, reason="outdated") is True
    assert memory.forget(1) is False
    assert [m.id for m in memory.recall()] == [2]
    assert [m.id for m in memory.recall(include_invalidated=True)] == [1, 2]
    assert [(h.operation, h.reason) for h in memory.history(1)] == [("add", None), ("invalidate", "outdated")]
    assert [h.operation for h in memory.history(2)] == ["add", "update"]
    assert memory.get(99) is None
    assert [hit.memory.id for hit in memory.search("Rust", mode="lexical")] == []
    assert [hit.memory.id for hit in memory.search("Rust", mode="lexical", include_invalidated=True)] == [1]
    assert memory.index(lists=2) == 2
    assert [hit.memory.id for hit in memory.search("Japanese food", mode="vector", exact=True, k=1)] == [2]
    assert [hit.memory.id for hit in memory.search("Japanese food", mode="vector", nprobe=1, k=1)] == [2]


def test_memory_over_http(http_node: HttpNode) -> None:
    with AgentlogClient(http_node.base_url, tenant="acme", agent_id="planner") as client:
        exercise(Memory(client, user_id="ludde"))
        history = Memory(client).history(1)
        assert {h.changed_by for h in history} == {"planner"}


def test_memory_embedding_at_the_client(http_node: HttpNode) -> None:
    embedder = HashingEmbedder(64)
    with AgentlogClient(http_node.base_url, tenant="acme") as client:
        memory = Memory(client, namespace="mine", embedder=embedder)
        memory.add("vectors made here")
        assert embedder.calls == 1
        item = memory.get(1)
        assert item is not None
        assert item.data["model_id"] == "hashing-v2-64"
        assert [hit.memory.id for hit in memory.search("vectors made here", mode="vector")] == [1]
        assert embedder.calls == 2


def test_memory_embedded() -> None:
    with connect("embedded://:memory:", tenant="acme") as client:
        exercise(Memory(client, user_id="ludde"))
