"""Vector collections, upserts, deletes and exact filtered search over real HTTP (uvicorn in a thread)."""

from __future__ import annotations

import base64
import struct
from typing import Any

import httpx
import pytest

from tests.query_api.http_node import HttpNode, assert_problem, assert_same_outcome

pytest_plugins = ("tests.query_api.http_node",)


def create(client: httpx.Client, name: str, dimension: int = 3, metric: str = "cosine", **extra: Any) -> str:
    """Create a collection; the token of the write."""
    response = client.put(f"/v1/collections/{name}", json={"dimension": dimension, "metric": metric, **extra})
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def upsert(client: httpx.Client, name: str, vector_id: str, embedding: Any, **extra: Any) -> httpx.Response:
    """PUT a vector."""
    return client.put(f"/v1/collections/{name}/vectors/{vector_id}", json={"embedding": embedding, **extra})


def search(
    client: httpx.Client, name: str, vector: list[float], token: str | None = None, **extra: Any
) -> httpx.Response:
    """POST a search (waiting for `token` first, when given)."""
    params = {"token": token} if token else None
    return client.post(f"/v1/collections/{name}/search", json={"vector": vector, **extra}, params=params)


def seed_docs(client: httpx.Client) -> str:
    """A cosine collection `docs` with five vectors; the token of the last write."""
    create(client, "docs")
    rows = {
        "a": ([1, 0, 0], {"lang": "en", "year": 2020, "tags": ["x"]}),
        "b": ([0.9, 0.1, 0], {"lang": "fr", "year": 2021, "tags": ["y"]}),
        "c": ([0, 1, 0], {"lang": "en", "year": 2022, "tags": ["x", "y"]}),
        "d": ([0, 0, 1], {"lang": "de", "year": 2023}),
        "e": ([0.7, 0.7, 0], {"lang": "en", "year": 2024}),
    }
    token = ""
    for vector_id, (embedding, metadata) in rows.items():
        response = upsert(client, "docs", vector_id, embedding, metadata=metadata)
        assert response.status_code == 200, response.text
        token = response.json()["token"]
    return token


# ------------------------------------------------------------------------------------------- collections


def test_create_list_and_get_collections(http_node: HttpNode) -> None:
    _, client = http_node
    created = client.put("/v1/collections/docs", json={"dimension": 3, "metric": "dot"})
    assert created.status_code == 200, created.text
    assert created.json()["result"] == {"created": True, "collection": "docs", "dimension": 3, "metric": "dot"}
    again = client.put("/v1/collections/docs", json={"dimension": 3, "metric": "dot"})
    assert again.json()["result"]["created"] is False
    token = create(client, "alpha", 8, "euclidean")

    listed = client.get("/v1/collections", params={"token": token}).json()["items"]
    assert [(c["name"], c["dimension"], c["metric"], c["count"]) for c in listed] == [
        ("alpha", 8, "euclidean", 0),
        ("docs", 3, "dot", 0),
    ]
    one = client.get("/v1/collections/docs")
    assert one.status_code == 200, one.text
    assert one.json()["name"] == "docs"
    assert one.json()["bytes_per_vector"] == 0.0


def test_collection_rejections(http_node: HttpNode) -> None:
    _, client = http_node
    create(client, "docs", 3)
    conflict = assert_problem(client.put("/v1/collections/docs", json={"dimension": 4}), 409, "already_exists")
    assert conflict["dimension"] == 3
    assert_problem(client.get("/v1/collections/nope"), 404, "not_found")
    for body in (
        {},
        {"dimension": 0},
        {"dimension": 3, "metric": "manhattan"},
        {"dimension": 3, "tenant": "x"},
        {"dimension": "3"},
    ):
        assert_problem(client.put("/v1/collections/c", json=body), 422, "invalid")
    assert_problem(client.put("/v1/collections/c", json={"dimension": 5000}), 422, "invalid")
    assert_problem(client.put("/v1/collections/bad%20name", json={"dimension": 3}), 422, "invalid")


def test_collections_live_in_namespaces(http_node: HttpNode) -> None:
    _, client = http_node
    token = create(client, "docs", 2, namespace="team-a")
    assert client.get("/v1/collections", params={"token": token}).json()["items"] == []
    listed = client.get("/v1/collections", params={"namespace": "team-a"}).json()["items"]
    assert [c["name"] for c in listed] == ["docs"]
    assert_problem(client.get("/v1/collections/docs"), 404, "not_found")
    assert upsert(client, "docs", "v", [1, 2], namespace="team-a").status_code == 200
    assert_problem(upsert(client, "docs", "v", [1, 2]), 404, "not_found")


# ------------------------------------------------------------------------------------------- vectors


def test_upsert_reads_back_bit_exact_and_delete(http_node: HttpNode) -> None:
    _, client = http_node
    create(client, "docs", 3)
    written = upsert(client, "docs", "notes/1", [0.1, 0.2, 0.3], metadata={"k": "v"})
    assert written.status_code == 200, written.text
    assert written.json()["result"] == {"collection": "docs", "id": "notes/1", "created": True, "count": 1}
    token = written.json()["token"]
    stored = client.get("/v1/collections/docs/vectors/notes/1", params={"token": token}).json()
    float32 = list(struct.unpack("<3f", struct.pack("<3f", 0.1, 0.2, 0.3)))
    assert stored == {"id": "notes/1", "embedding": float32, "metadata": {"k": "v"}}

    replaced = upsert(client, "docs", "notes/1", [1, 1, 1])
    assert replaced.json()["result"]["created"] is False
    assert client.get("/v1/collections/docs", params={"token": replaced.json()["token"]}).json()["count"] == 1

    # The base64 of float32 LE bytes is accepted too.
    packed = base64.b64encode(struct.pack("<3f", 1.5, -2.0, 0.25)).decode()
    token = upsert(client, "docs", "b64", packed).json()["token"]
    assert client.get("/v1/collections/docs/vectors/b64", params={"token": token}).json()["embedding"] == [
        1.5,
        -2.0,
        0.25,
    ]

    deleted = client.delete("/v1/collections/docs/vectors/notes/1")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["result"]["deleted"] is True
    token = deleted.json()["token"]
    assert_problem(client.get("/v1/collections/docs/vectors/notes/1", params={"token": token}), 404, "not_found")
    again = client.delete("/v1/collections/docs/vectors/notes/1")
    assert again.json()["result"]["deleted"] is False
    assert_problem(client.delete("/v1/collections/nope/vectors/x"), 404, "not_found")
    assert_problem(client.get("/v1/collections/nope/vectors/x"), 404, "not_found")


def test_bad_vectors_are_422(http_node: HttpNode) -> None:
    _, client = http_node
    create(client, "docs", 3)
    create(client, "unit", 2, "cosine")
    mismatch = assert_problem(upsert(client, "docs", "v", [1, 2]), 422, "invalid")
    assert mismatch["dimension"] == 3
    for embedding in ([], ["a", "b", "c"], [True, False, True], [[1], [2], [3]], "not base64!", [1e39, 0, 0], None):
        assert_problem(upsert(client, "docs", "v", embedding), 422, "invalid")
    assert_problem(upsert(client, "unit", "zero", [0, 0]), 422, "invalid")
    assert_problem(upsert(client, "docs", "v", [1, 2, 3], metadata=[1]), 422, "invalid")
    assert_problem(upsert(client, "docs", "v", [1, 2, 3], tenant="x"), 422, "invalid")
    assert_problem(upsert(client, "docs", "bad%01id", [1, 2, 3]), 422, "invalid")
    too_big = client.put("/v1/collections/docs/vectors/v", json={"embedding": [0.5] * 5000})
    assert_problem(too_big, 413, "too_large")
    assert client.get("/v1/collections/docs").json()["count"] == 0


def test_upsert_retry_with_same_command_id_applies_once(http_node: HttpNode) -> None:
    _, client = http_node
    create(client, "docs", 2)
    first = upsert(client, "docs", "v", [1, 0], command_id="vec-1")
    retry = upsert(client, "docs", "v", [1, 0], command_id="vec-1")
    assert first.status_code == 200, first.text
    assert_same_outcome(first, retry)
    assert retry.json()["result"]["created"] is True
    assert client.get("/v1/collections/docs", params={"token": retry.json()["token"]}).json()["count"] == 1


# ------------------------------------------------------------------------------------------- search


def test_search_ranks_by_score_with_ties_by_id(http_node: HttpNode) -> None:
    _, client = http_node
    token = seed_docs(client)
    response = search(client, "docs", [1, 0, 0], token, k=3)
    assert response.status_code == 200, response.text
    hits = response.json()["hits"]
    assert [hit["id"] for hit in hits] == ["a", "b", "e"]
    assert abs(hits[0]["score"] - 1.0) < 1e-6
    assert hits[0]["metadata"] == {"lang": "en", "year": 2020, "tags": ["x"]}
    assert "vector" not in hits[0]
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)

    everything = search(client, "docs", [1, 0, 0], k=1000).json()["hits"]
    assert len(everything) == 5
    assert [hit["id"] for hit in everything[-2:]] == ["c", "d"]  # both score 0: the smaller id first

    with_vectors = search(client, "docs", [0, 0, 2], k=1, include_vectors=True).json()["hits"]
    assert with_vectors[0]["id"] == "d"
    assert with_vectors[0]["vector"] == [0.0, 0.0, 1.0]
    assert [hit["id"] for hit in search(client, "docs", [1, 0, 0], min_score=0.8).json()["hits"]] == ["a", "b"]


def test_search_filters_are_exact(http_node: HttpNode) -> None:
    _, client = http_node
    seed_docs(client)

    def ids(filter_: dict[str, Any], **extra: Any) -> list[str]:
        response = search(client, "docs", [1, 0, 0], k=10, filter=filter_, **extra)
        assert response.status_code == 200, response.text
        return [hit["id"] for hit in response.json()["hits"]]

    assert ids({"lang": "en"}) == ["a", "e", "c"]
    assert ids({"year": {"$gte": 2022}}) == ["e", "c", "d"]
    assert ids({"lang": {"$in": ["fr", "de"]}}) == ["b", "d"]
    assert ids({"tags": "y"}) == ["b", "c"]
    assert ids({"tags": {"$exists": False}}) == ["e", "d"]
    assert ids({"$or": [{"lang": "fr"}, {"year": 2023}]}) == ["b", "d"]
    assert ids({"lang": "en", "year": {"$lt": 2022}}) == ["a"]
    assert ids({"lang": "xx"}) == []


def test_bad_searches(http_node: HttpNode) -> None:
    _, client = http_node
    seed_docs(client)
    bad_filters: list[dict[str, Any]] = [{"$nor": []}, {"lang": {"$regex": "e"}}, {"year": {"$in": 3}}, {"": 1}]
    for bad_filter in bad_filters:
        assert_problem(search(client, "docs", [1, 0, 0], filter=bad_filter), 400, "bad_filter")
    mismatch = assert_problem(search(client, "docs", [1, 0]), 422, "invalid")
    assert mismatch["dimension"] == 3
    assert_problem(search(client, "docs", [0, 0, 0]), 400, "bad_query")  # a zero vector has no direction
    bad_bodies: list[dict[str, Any]] = [
        {"vector": [1, 0, 0], "k": 0},
        {"vector": [1, 0, 0], "k": 1001},
        {"vector": []},
        {"vector": ["1", 0, 0]},
        {"vector": [1, 0, 0], "min_score": "high"},
        {"vector": [1, 0, 0], "extra": True},
        {"k": 3},
    ]
    for body in bad_bodies:
        assert_problem(client.post("/v1/collections/docs/search", json=body), 422, "invalid")
    assert_problem(search(client, "nope", [1, 0, 0]), 404, "not_found")


def test_vectors_are_tenant_isolated(http_node: HttpNode) -> None:
    with http_node.new_client(**{"X-Tenant": "acme"}) as acme, http_node.new_client(**{"X-Tenant": "globex"}) as globex:
        create(acme, "docs", 2)
        token = upsert(acme, "docs", "secret", [1, 0], metadata={"owner": "acme"}).json()["token"]
        assert globex.get("/v1/collections", params={"token": token}).json()["items"] == []
        assert_problem(globex.get("/v1/collections/docs"), 404, "not_found")
        assert_problem(search(globex, "docs", [1, 0]), 404, "not_found")
        assert_problem(upsert(globex, "docs", "intrude", [1, 0]), 404, "not_found")
        create(globex, "docs", 2)
        token = upsert(globex, "docs", "mine", [1, 0]).json()["token"]
        hits = search(globex, "docs", [1, 0], token)
        assert [hit["id"] for hit in hits.json()["hits"]] == ["mine"]
        assert [hit["id"] for hit in search(acme, "docs", [1, 0]).json()["hits"]] == ["secret"]


# ------------------------------------------------------------------------------------------- hybrid search


def hybrid(client: httpx.Client, name: str, text: str, vector: list[float], **extra: Any) -> httpx.Response:
    """POST a hybrid search."""
    return client.post(f"/v1/collections/{name}/hybrid-search", json={"text_query": text, "vector": vector, **extra})


def test_hybrid_search_fuses_bm25_and_vector_by_alpha(http_node: HttpNode) -> None:
    _, client = http_node
    create(client, "notes", 2)
    rows = {
        "near": ([1, 0], {"text": "lunch at noon", "kind": "a"}),
        "words": ([0, 1], {"text": "the kafka replay log", "kind": "b"}),
        "both": ([0.8, 0.6], {"text": "replay", "kind": "a"}),
        "other": ([0.6, 0.8], {"body": {"text": "kafka"}, "kind": "b"}),
    }
    token = ""
    for vector_id, (embedding, metadata) in rows.items():
        token = upsert(client, "notes", vector_id, embedding, metadata=metadata).json()["token"]
    vector_leg = search(client, "notes", [1, 0], token, k=4).json()["hits"]
    only_vector = hybrid(client, "notes", "replay", [1, 0], alpha=1, k=4)
    assert only_vector.status_code == 200, only_vector.text
    body = only_vector.json()
    assert (body["alpha"], body["text_field"]) == (1.0, "text")
    assert [hit["id"] for hit in body["hits"]] == [hit["id"] for hit in vector_leg]
    assert [hit["vector_score"] for hit in body["hits"]] == [hit["score"] for hit in vector_leg]
    only_text = hybrid(client, "notes", "replay", [1, 0], alpha=0).json()["hits"]
    assert [(hit["id"], hit["lexical_rank"], hit["vector_rank"]) for hit in only_text] == [
        ("both", 1, None),
        ("words", 2, None),
    ]
    assert only_text[0]["lexical_score"] > only_text[1]["lexical_score"] > 0
    fused = hybrid(client, "notes", "replay", [1, 0], alpha=0.7, k=2).json()["hits"]
    assert [hit["id"] for hit in fused] == ["both", "near"]
    assert fused[0]["score"] == pytest.approx(0.7 * (0.8 - 0.0) / (1.0 - 0.0) + 0.3)
    assert fused[1]["score"] == pytest.approx(0.7)
    assert fused[0]["metadata"] == {"text": "replay", "kind": "a"}
    assert "vector" not in fused[0] or fused[0]["vector"] is None
    nested = hybrid(client, "notes", "kafka", [1, 0], alpha=0, text_field="body.text").json()["hits"]
    assert [hit["id"] for hit in nested] == ["other"]
    filtered = hybrid(client, "notes", "kafka replay", [1, 0], filter={"kind": "b"}, include_vectors=True)
    assert [hit["id"] for hit in filtered.json()["hits"]] == ["other", "words"]
    assert filtered.json()["hits"][1]["vector"] == [0.0, 1.0]


def test_bad_hybrid_searches(http_node: HttpNode) -> None:
    _, client = http_node
    token = create(client, "notes", 2)
    upsert(client, "notes", "a", [1, 0], metadata={"text": "x"})
    params = {"token": token}
    assert_problem(
        client.post("/v1/collections/absent/hybrid-search", json={"text_query": "x", "vector": [1, 0]}, params=params),
        404,
        "not_found",
    )
    assert_problem(hybrid(client, "notes", "x", [1, 0, 0]), 422, "invalid")
    for extra in ({"alpha": 1.5}, {"alpha": -0.1}, {"alpha": "0.5"}, {"text_field": "a..b"}, {"k": 0}, {"tenant": "x"}):
        assert hybrid(client, "notes", "x", [1, 0], **extra).status_code == 422, extra
    assert hybrid(client, "notes", "", [1, 0]).status_code == 422
    assert_problem(hybrid(client, "notes", "x", [1, 0], filter={"$bogus": 1}), 400, "bad_filter")
    assert_problem(hybrid(client, "notes", "x", [0, 0]), 400, "bad_query")


def test_hybrid_search_is_tenant_isolated(http_node: HttpNode) -> None:
    with http_node.new_client(**{"X-Tenant": "acme"}) as acme, http_node.new_client(**{"X-Tenant": "globex"}) as globex:
        create(acme, "docs", 2)
        token = upsert(acme, "docs", "secret", [1, 0], metadata={"text": "shared words"}).json()["token"]
        assert_problem(hybrid(globex, "docs", "shared", [1, 0]), 404, "not_found")
        create(globex, "docs", 2)
        token = upsert(globex, "docs", "mine", [1, 0], metadata={"text": "shared words"}).json()["token"]
        for alpha in (0, 0.5, 1):
            theirs = globex.post(
                "/v1/collections/docs/hybrid-search",
                json={"text_query": "shared", "vector": [1, 0], "alpha": alpha},
                params={"token": token},
            )
            assert [hit["id"] for hit in theirs.json()["hits"]] == ["mine"]
            assert [hit["id"] for hit in hybrid(acme, "docs", "shared", [1, 0], alpha=alpha).json()["hits"]] == [
                "secret"
            ]
