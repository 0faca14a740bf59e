"""Memories over real HTTP: lifecycle with history, as_of and valid_at, isolation, branches, search, errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from projections import memory_search
from tests.agentlog.embedding_stub import embedding_stub
from tests.query_api.http_node import HttpNode, assert_problem, memory_settings, serve

pytest_plugins = ("tests.query_api.http_node",)


def add(client: httpx.Client, content: str, **extra: Any) -> dict[str, Any]:
    """POST a memory; the write body."""
    response = client.post("/v1/memories", json={"content": content, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def search(client: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    """POST /v1/search; the hits."""
    response = client.post("/v1/search", json=body)
    assert response.status_code == 200, response.text
    hits: list[dict[str, Any]] = response.json()["hits"]
    return hits


def test_add_update_forget_with_history(http_node: HttpNode) -> None:
    _, client = http_node
    written = add(client, "User prefers dark mode", user_id="ludde", tags=["ui"], reason="told us")
    assert written["outcome"] == "applied"
    assert written["result"] == {"id": 1, "version": 1, "created": True}
    memory = client.get("/v1/memories/1", params={"token": written["token"]}).json()
    assert memory["content"] == "User prefers dark mode"
    assert (memory["has_embedding"], memory["model_id"], memory["active"]) == (True, "hashing-v2-384", True)
    assert memory["valid_from"] == written["timestamp_ms"] == memory["created_at_ms"]
    with_vector = client.get("/v1/memories/1", params={"include_embedding": "true"}).json()
    assert len(with_vector["embedding"]) == 384

    changed = client.put("/v1/memories/1", json={"content": "User prefers light mode", "reason": "changed mind"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["result"] == {"id": 1, "version": 2, "changed": True, "changes": ["content", "embedding"]}
    assert (
        client.get("/v1/memories/1", params={"include_embedding": "true"}).json()["embedding"]
        != with_vector["embedding"]
    )

    forgot = client.delete("/v1/memories/1", params={"reason": "outdated"})
    assert forgot.status_code == 200, forgot.text
    assert forgot.json()["result"]["invalidated"] is True
    memory = client.get("/v1/memories/1").json()
    assert (memory["active"], memory["valid_until"], memory["version"]) == (False, forgot.json()["timestamp_ms"], 3)

    history = client.get("/v1/memories/1/history").json()
    assert history["id"] == 1
    assert [(h["operation"], h["old_content"], h["new_content"], h["reason"]) for h in history["items"]] == [
        ("add", None, "User prefers dark mode", "told us"),
        ("update", "User prefers dark mode", "User prefers light mode", "changed mind"),
        ("invalidate", "User prefers light mode", "User prefers light mode", "outdated"),
    ]
    assert client.get("/v1/memories").json() == {"items": [], "next": None}
    listed = client.get("/v1/memories", params={"include_invalidated": "true"}).json()["items"]
    assert [m["id"] for m in listed] == [1]


def test_as_of_before_a_forget_finds_the_memory_and_after_it_does_not(http_node: HttpNode) -> None:
    _, client = http_node
    added = add(client, "The deploy pipeline runs on Fridays")
    add(client, "Lunch is at noon")
    forgot = client.delete("/v1/memories/1").json()
    before, after = added["token"], forgot["token"]
    query = {"query": "when does the deploy pipeline run", "k": 5}

    def found(as_of: str | None, mode: str) -> list[int]:
        params = {"as_of": as_of} if as_of else None
        response = client.post("/v1/search", json={**query, "mode": mode}, params=params)
        assert response.status_code == 200, response.text
        return [hit["memory"]["id"] for hit in response.json()["hits"]]

    for mode in ("vector", "lexical", "hybrid"):
        assert found(before, mode)[:1] == [1], mode
        assert 1 not in found(after, mode), mode
        assert 1 not in found(None, mode), mode
    assert client.get("/v1/memories/1", params={"as_of": before}).json()["active"] is True
    assert client.get("/v1/memories/1", params={"as_of": after}).json()["active"] is False
    assert [m["id"] for m in client.get("/v1/memories", params={"as_of": before}).json()["items"]] == [1]
    history = client.get("/v1/memories/1/history", params={"as_of": before}).json()["items"]
    assert [h["operation"] for h in history] == ["add"]


def test_valid_at_filters_by_world_time(http_node: HttpNode) -> None:
    _, client = http_node
    add(client, "Alice lives in Oslo", valid_from=1_000, valid_until=2_000)
    add(client, "Alice lives in Bergen", valid_from=2_000)

    def lives(valid_at: int | None) -> list[str]:
        body: dict[str, Any] = {"query": "where does Alice live", "mode": "lexical"}
        if valid_at is not None:
            body["valid_at"] = valid_at
        return sorted(hit["memory"]["content"] for hit in search(client, **body))

    assert lives(1_500) == ["Alice lives in Oslo"]
    assert lives(2_500) == ["Alice lives in Bergen"]
    assert lives(500) == []
    assert lives(None) == ["Alice lives in Bergen", "Alice lives in Oslo"]
    recalled = client.get("/v1/memories", params={"valid_at": 1_999}).json()["items"]
    assert [m["id"] for m in recalled] == [1]


def test_tenants_and_scopes_are_isolated(http_node: HttpNode) -> None:
    _, client = http_node
    add(client, "acme's plan is to ship on Monday", user_id="u1", agent_id="planner", session_id="s1")
    add(client, "acme's other plan", user_id="u2", memory_type="procedural", tags=["plans"])
    with http_node.new_client(**{"X-Tenant": "globex"}) as globex:
        assert_problem(globex.get("/v1/memories/1"), 404, "not_found")
        assert search(globex, query="plan", mode="lexical") == []
        assert globex.get("/v1/memories").json()["items"] == []
        assert_problem(globex.put("/v1/memories/1", json={"confidence": 0.1}), 404, "not_found")
        assert add(globex, "globex's plan")["result"]["id"] == 1
    assert client.get("/v1/memories/1").json()["content"] == "acme's plan is to ship on Monday"
    assert client.get("/v1/memories/1").json()["confidence"] == 1.0

    def ids(**filters: Any) -> list[int]:
        return [hit["memory"]["id"] for hit in search(client, query="plan", mode="hybrid", **filters)]

    assert ids() == [2, 1] or ids() == [1, 2]
    assert ids(user_id="u1") == [1]
    assert ids(agent_id="planner", session_id="s1") == [1]
    assert ids(memory_type="procedural") == [2]
    assert ids(tags=["plans"]) == [2]
    assert ids(user_id="nobody") == []
    assert search(client, query="plan", namespace="elsewhere") == []
    recalled = client.get("/v1/memories", params={"user_id": "u2", "tags": "plans"}).json()["items"]
    assert [m["id"] for m in recalled] == [2]


def test_search_explains_each_leg(http_node: HttpNode) -> None:
    _, client = http_node
    for text in ("the cat sat on the mat", "dogs chase cats", "a report on quarterly revenue", "mat cleaning tips"):
        add(client, text)
    hits = search(client, query="cat on the mat", mode="hybrid", k=4)
    assert hits[0]["memory"]["id"] == 1
    top = hits[0]
    assert top["vector"]["rank"] == 1
    assert top["lexical"]["rank"] == 1
    assert top["score"] == pytest.approx(2 / 61)
    for hit in hits:
        legs = [leg["rank"] for leg in (hit["vector"], hit["lexical"]) if leg is not None]
        assert hit["score"] == pytest.approx(sum(1 / (60 + rank) for rank in legs))
    lexical = search(client, query="cat on the mat", mode="lexical")
    assert all(hit["vector"] is None and hit["lexical"]["score"] == hit["score"] for hit in lexical)
    assert search(client, query="cat on the mat", mode="lexical", min_score=lexical[0]["score"]) == lexical[:1]
    response = client.post("/v1/search", json={"query": "cat", "mode": "vector"})
    assert response.json()["query_model_id"] == "hashing-v2-384"


def test_client_vectors_and_model_mismatch(http_node: HttpNode) -> None:
    _, client = http_node
    add(client, "north", embedding=[0.0, 1.0, 0.0], model_id="my-model", namespace="geo")
    add(client, "east", embedding=[1.0, 0.0, 0.0], model_id="my-model", namespace="geo")
    hits = search(client, vector=[0.9, 0.1, 0.0], mode="vector", namespace="geo")
    assert [(h["memory"]["content"], round(h["score"], 4)) for h in hits] == [("east", 0.9939), ("north", 0.1104)]
    assert_problem(client.post("/v1/search", json={"query": "north", "namespace": "geo"}), 422, "model_mismatch")
    assert search(client, query="north", mode="lexical", namespace="geo")[0]["memory"]["content"] == "north"
    other = client.post(
        "/v1/memories", json={"content": "up", "embedding": [1, 0], "model_id": "x", "namespace": "geo"}
    )
    assert_problem(other, 422, "invalid")
    assert_problem(
        client.post("/v1/search", json={"vector": [1.0, 0.0], "namespace": "geo", "mode": "vector"}), 422, "invalid"
    )


def test_bad_requests_get_problems_and_leave_no_trace(http_node: HttpNode) -> None:
    _, client = http_node
    add(client, "one memory")
    before = client.get("/v1/status").json()
    assert_problem(client.post("/v1/memories", json={"content": "x", "embedding": [1.0]}), 422, "invalid")
    assert_problem(client.post("/v1/memories", json={"content": ""}), 422, "invalid")
    assert_problem(client.post("/v1/memories", json={"content": "x", "tenant": "other"}), 422, "invalid")
    assert_problem(client.post("/v1/memories", json={"content": "x", "memory_type": "dream"}), 422, "invalid")
    assert_problem(
        client.post("/v1/memories", json={"content": "x", "valid_from": 5, "valid_until": 5}), 422, "invalid"
    )
    assert_problem(client.post("/v1/memories", params={"as_of": "0:0"}, json={"content": "x"}), 400, "as_of_on_write")
    assert_problem(client.post("/v1/search", json={"query": "x", "k": 0}), 422, "invalid")
    assert_problem(client.post("/v1/search", json={"query": "x", "k": 1001}), 422, "invalid")
    assert_problem(client.post("/v1/search", json={"query": "x", "mode": "graph"}), 422, "invalid")
    assert_problem(client.post("/v1/search", json={"mode": "lexical"}), 400, "bad_query")
    assert_problem(client.get("/v1/memories/0"), 422, "invalid")
    assert_problem(client.get("/v1/memories/99"), 404, "not_found")
    assert_problem(client.get("/v1/memories/99/history"), 404, "not_found")
    assert client.get("/v1/status").json()["digests"] == before["digests"]
    assert client.get("/v1/status").json()["token"] == before["token"]
    refused = client.put("/v1/memories/99", json={"content": "y"})
    body = assert_problem(refused, 404, "not_found")
    assert body["write"]["outcome"] == "rejected"
    assert client.get("/v1/status").json()["digests"]["memories"] == before["digests"]["memories"]


def test_merge_and_retry(http_node: HttpNode) -> None:
    _, client = http_node
    add(client, "likes tea", tags=["drinks"])
    add(client, "drinks tea every day", tags=["habits"])
    merged = client.post("/v1/memories/1/merge", json={"ids": [2], "content": "drinks tea every day"})
    assert merged.status_code == 200, merged.text
    assert merged.json()["result"] == {"id": 1, "version": 2, "merged": [2]}
    assert client.get("/v1/memories/2").json()["merged_into"] == 1
    assert client.get("/v1/memories/1").json()["tags"] == ["drinks", "habits"]
    first = client.post("/v1/memories", json={"content": "once", "command_id": "c-1"})
    again = client.post("/v1/memories", json={"content": "once", "command_id": "c-1"})
    assert first.json()["result"] == again.json()["result"] == {"id": 3, "version": 1, "created": True}
    assert [m["id"] for m in client.get("/v1/memories").json()["items"]] == [1, 3]


def test_branches_keep_memories_apart(http_node: HttpNode) -> None:
    _, client = http_node
    add(client, "on main before the branch")
    made = client.post("/v1/branches", json={"name": "what-if"})
    assert made.status_code == 201, made.text
    on_branch = client.post("/v1/memories", params={"branch": "what-if"}, json={"content": "only on the branch"})
    assert on_branch.json()["result"]["id"] == 2
    add(client, "on main after the branch")
    branch_items = client.get("/v1/memories", params={"branch": "what-if"}).json()["items"]
    main_items = client.get("/v1/memories").json()["items"]
    assert [m["content"] for m in branch_items] == ["on main before the branch", "only on the branch"]
    assert [m["content"] for m in main_items] == ["on main before the branch", "on main after the branch"]


def test_the_node_embeds_through_an_openai_compatible_service() -> None:
    with embedding_stub(dim=24) as (stub_url, stub):
        settings = memory_settings(embedder=f"openai:{stub_url}#stub-model#24")
        with serve(settings) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
            add(client, "Alice prefers tea")
            add(client, "Bob prefers coffee")
            memory = client.get("/v1/memories/1", params={"include_embedding": "true"}).json()
            assert memory["model_id"] == "openai:stub-model"
            assert memory["embedding"] == stub.embedder.embed(["Alice prefers tea"])[0].tolist()
            hits = search(client, query="Alice prefers tea", mode="vector")
            assert hits[0]["memory"]["id"] == 1
            assert hits[0]["vector"]["score"] == pytest.approx(1.0, abs=1e-6)
            assert len(stub.requests) == 2  # the repeated query text came from the edge cache
            before = client.get("/v1/status").json()["token"]
            stub.fail_with = 503
            assert_problem(client.post("/v1/memories", json={"content": "new text"}), 502, "embedder_failed")
            assert client.get("/v1/status").json()["token"] == before
            no_embedder = memory_settings(embedder="none")
        with serve(no_embedder) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
            add(client, "text only")
            assert client.get("/v1/memories/1").json()["has_embedding"] is False
            assert_problem(client.post("/v1/search", json={"query": "text", "mode": "vector"}), 400, "bad_query")
            assert search(client, query="text", mode="lexical")[0]["memory"]["id"] == 1


def test_index_and_approximate_search(http_node: HttpNode, monkeypatch: pytest.MonkeyPatch) -> None:
    _, client = http_node
    monkeypatch.setattr(memory_search, "APPROXIMATE_MIN_ROWS", 10)
    assert_problem(client.post("/v1/memories/index", json={"lists": 4}), 404, "not_found")
    words = ["tea", "coffee", "rust", "python", "oslo", "bergen", "deploy", "friday"]
    for i in range(40):
        add(client, f"{words[i % 8]} {words[(i * 3) % 8]} note {i}")
    assert_problem(client.post("/v1/memories/index", json={"lists": 41}), 422, "invalid")
    indexed = client.post("/v1/memories/index", json={"lists": 4})
    assert indexed.status_code == 200, indexed.text
    assert indexed.json()["result"] == {"lists": 4, "model_id": "hashing-v2-384"}
    body = {"query": "tea coffee", "mode": "vector", "k": 5}
    approximate = client.post("/v1/search", json={**body, "nprobe": 1}).json()
    exact = client.post("/v1/search", json={**body, "exact": True}).json()
    assert approximate["probed_lists"] == 1
    assert exact["probed_lists"] is None
    exact_scores = {
        hit["memory"]["id"]: hit["score"]
        for hit in client.post("/v1/search", json={**body, "k": 100, "exact": True}).json()["hits"]
    }
    assert all(exact_scores[hit["memory"]["id"]] == hit["score"] for hit in approximate["hits"])
    everything = client.post("/v1/search", json={**body, "nprobe": 4}).json()
    assert everything["hits"] == exact["hits"]
    assert_problem(client.post("/v1/search", json={**body, "nprobe": 0}), 422, "invalid")
