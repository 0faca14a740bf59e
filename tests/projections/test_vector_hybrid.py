"""Hybrid search on vector collections: alpha 0/1 equal the single legs, the fusion formula, rebuilds, tenants."""

from __future__ import annotations

import math
import pickle
import random
from collections import Counter
from typing import Any

import numpy as np
import pytest

from projections.lexical import BM25_B, BM25_K1, tokenize
from projections.vector_hybrid import HYBRID_DEPTH_MIN, HybridHit, hybrid_search
from projections.vectors import CollectionNotFoundError, FilterError, VectorQueryError, VectorsModel
from tests.projections.test_vectors_model import Node

WORDS = ["kafka", "log", "replay", "memory", "vector", "branch", "snapshot", "tenant", "agent", "search"]


def reference_bm25(texts: dict[str, str], query: str) -> dict[str, float]:
    """BM25 of every vector id from scratch (whole collection statistics), only those above 0."""
    documents = {vector_id: tokenize(text) for vector_id, text in texts.items()}
    count = len(documents)
    average = (sum(len(tokens) for tokens in documents.values()) / count) or 1.0
    result: dict[str, float] = {}
    for vector_id, tokens in documents.items():
        frequencies = Counter(tokens)
        score = 0.0
        for term in sorted(set(tokenize(query))):
            tf = frequencies.get(term, 0)
            if not tf:
                continue
            df = sum(1 for other in documents.values() if term in other)
            idf = math.log(1.0 + (count - df + 0.5) / (df + 0.5))
            score += idf * tf * (BM25_K1 + 1.0) / (tf + BM25_K1 * (1.0 - BM25_B + BM25_B * len(tokens) / average))
        if score > 0.0:
            result[vector_id] = score
    return result


def load_random(node: Node, rng: random.Random, count: int, *, dimension: int = 8, metric: str = "cosine") -> None:
    node.create("docs", dimension, metric)
    for index in range(count):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6)))
        vector = [rng.uniform(-1, 1) for _ in range(dimension)]
        node.upsert("docs", f"v{index:04d}", vector, {"text": text, "n": index % 3})


def texts_of(model: VectorsModel) -> dict[str, str]:
    stored = model.stored_collection("t1", "ns", "docs")
    return {vector_id: stored.metadata(slot).get("text", "") for slot, vector_id in enumerate(stored.ids)}


def run(model: VectorsModel, text: str, query: Any, **options: Any) -> list[HybridHit]:
    return hybrid_search(model, "t1", "ns", "docs", text, query, **options)


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
def test_alpha_one_is_the_vector_search(metric: str) -> None:
    node, rng = Node(), random.Random(1)
    load_random(node, rng, 300, metric=metric)
    query = [rng.uniform(-1, 1) for _ in range(8)]
    for where in (None, {"n": 1}):
        expected = node.model.search("t1", "ns", "docs", query, k=25, filter=where)
        hits = run(node.model, "kafka replay", query, alpha=1.0, k=25, filter=where)
        assert [hit.id for hit in hits] == [hit.id for hit in expected]
        assert [hit.vector_score for hit in hits] == [hit.score for hit in expected]
        assert [hit.vector_rank for hit in hits] == list(range(1, 26))


def test_alpha_zero_is_bm25_over_the_text_field() -> None:
    node, rng = Node(), random.Random(2)
    load_random(node, rng, 200)
    reference = reference_bm25(texts_of(node.model), "kafka memory memory")
    expected = sorted(reference, key=lambda vector_id: (-reference[vector_id], vector_id))[:30]
    hits = run(node.model, "kafka memory memory", [1.0] * 8, alpha=0.0, k=30)
    assert [hit.id for hit in hits] == expected
    for hit in hits:
        assert hit.lexical_score == pytest.approx(reference[hit.id], rel=1e-12)
    assert [hit.lexical_rank for hit in hits] == list(range(1, 31))
    assert all(hit.vector_rank is None for hit in hits)


def expected_fusion(node: Node, text: str, query: Any, alpha: float, depth: int) -> dict[str, float]:
    """The fused scores from the legs' own rankings: min-max over each leg's `depth` best, alpha-weighted."""
    vector_leg = node.model.search("t1", "ns", "docs", query, k=depth)
    lexical = reference_bm25(texts_of(node.model), text)
    lexical_leg = sorted(lexical, key=lambda vector_id: (-lexical[vector_id], vector_id))[:depth]
    v_low, v_high = vector_leg[-1].score, vector_leg[0].score
    l_low, l_high = lexical[lexical_leg[-1]], lexical[lexical_leg[0]]
    expected: dict[str, float] = {}
    for hit in vector_leg:
        expected[hit.id] = alpha * (hit.score - v_low) / (v_high - v_low)
    for vector_id in lexical_leg:
        normalized = (lexical[vector_id] - l_low) / (l_high - l_low)
        expected[vector_id] = expected.get(vector_id, 0.0) + (1 - alpha) * normalized
    return expected


@pytest.mark.parametrize("alpha", [0.7, 0.25])
def test_fused_score_is_alpha_weighted_min_max_of_the_legs(alpha: float) -> None:
    node, rng = Node(), random.Random(3)
    load_random(node, rng, 150)
    query = [rng.uniform(-1, 1) for _ in range(8)]
    text = "snapshot tenant"
    lexical = reference_bm25(texts_of(node.model), text)
    expected = expected_fusion(node, text, query, alpha, 1000)
    hits = run(node.model, text, query, alpha=alpha, k=1000)
    assert len(expected) == 150
    assert {hit.id for hit in hits} == set(expected)
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.id], abs=1e-9)
        assert hit.vector_rank is not None
        assert (hit.lexical_rank is not None) == (hit.id in lexical)
        assert hit.lexical_score == pytest.approx(lexical.get(hit.id, 0.0), rel=1e-12)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    # k = 10: each leg ranks only its HYBRID_DEPTH_MIN best, and the scaling uses those.
    shallow = expected_fusion(node, text, query, alpha, HYBRID_DEPTH_MIN)
    top = run(node.model, text, query, alpha=alpha, k=10)
    assert len(top) == 10
    for hit in top:
        assert hit.score == pytest.approx(shallow[hit.id], abs=1e-9)
    assert min(hit.score for hit in top) >= sorted(shallow.values(), reverse=True)[9] - 1e-9
    floor = hits[5].score
    assert [hit.id for hit in run(node.model, text, query, alpha=alpha, k=1000, min_score=floor)] == [
        hit.id for hit in hits if hit.score >= floor
    ]


def test_live_equals_rebuild_and_snapshot_after_updates_and_deletes() -> None:
    node, rng = Node(), random.Random(4)
    load_random(node, rng, 120)
    query = [rng.uniform(-1, 1) for _ in range(8)]
    run(node.model, "agent log", query)  # builds the cached text index before the writes below
    for step in range(200):
        vector_id = f"v{rng.randrange(160):04d}"
        if rng.random() < 0.3:
            node.delete("docs", vector_id)
        else:
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6)))
            node.upsert("docs", vector_id, [rng.uniform(-1, 1) for _ in range(8)], {"text": text, "n": step % 3})
        if step % 50 == 0:
            run(node.model, "agent log", query)
    rebuilt = node.rebuild()
    restored = VectorsModel()
    restored.restore_state(pickle.loads(pickle.dumps(list(node.model.snapshot_state()))))
    assert rebuilt.digest() == restored.digest() == node.model.digest()
    for alpha in (0.0, 0.3, 0.5, 1.0):
        for text in ("agent log", "kafka", "branch snapshot search"):
            live = run(node.model, text, query, alpha=alpha, k=50, filter={"n": {"$ne": 2}})
            assert live, (alpha, text)
            assert live == run(rebuilt, text, query, alpha=alpha, k=50, filter={"n": {"$ne": 2}})
            assert live == run(restored, text, query, alpha=alpha, k=50, filter={"n": {"$ne": 2}})
    reference = reference_bm25(texts_of(node.model), "kafka")
    assert [hit.id for hit in run(node.model, "kafka", query, alpha=0.0, k=1000)] == sorted(
        reference, key=lambda vector_id: (-reference[vector_id], vector_id)
    )


def test_tenants_and_namespaces_are_isolated() -> None:
    node = Node()
    node.create("docs", 2)
    node.upsert("docs", "mine", [1, 0], {"text": "shared words here"})
    node.create("docs", 2, tenant="t2")
    node.upsert("docs", "theirs", [1, 0], {"text": "shared words here"}, tenant="t2")
    node.create("docs", 2, namespace="other")
    node.upsert("docs", "elsewhere", [1, 0], {"text": "shared words"}, namespace="other")
    for alpha in (0.0, 0.5, 1.0):
        assert [hit.id for hit in run(node.model, "shared", [1, 0], alpha=alpha)] == ["mine"]
        theirs = hybrid_search(node.model, "t2", "ns", "docs", "shared", [1, 0], alpha=alpha)
        assert [hit.id for hit in theirs] == ["theirs"]
    with pytest.raises(CollectionNotFoundError):
        hybrid_search(node.model, "t3", "ns", "docs", "shared", [1, 0])


def test_text_field_paths_and_non_string_values() -> None:
    node = Node()
    node.create("docs", 2)
    node.upsert("docs", "a", [1, 0], {"body": {"title": "replay the log"}, "text": "nothing"})
    node.upsert("docs", "b", [0, 1], {"body": {"title": 42}, "text": "replay"})
    node.upsert("docs", "c", [1, 1])
    nested = run(node.model, "replay", [1, 0], alpha=0.0, text_field="body.title")
    assert [hit.id for hit in nested] == ["a"]
    plain = run(node.model, "replay", [1, 0], alpha=0.0)
    assert [hit.id for hit in plain] == ["b"]
    assert run(node.model, "absent", [1, 0], alpha=0.0) == []
    both = run(node.model, "replay", [1, 0], alpha=0.5, k=3)
    # a: vector 1.0 → 0.5; b: vector 0 but the only text match → 0.5 (the tie goes to the higher vector score);
    # c: cosine 0.707 scaled by the vector leg's range (0 to 1) → 0.354.
    assert [hit.id for hit in both] == ["a", "b", "c"]
    assert [hit.score for hit in both] == pytest.approx([0.5, 0.5, 0.5 * math.sqrt(0.5)], abs=1e-6)
    by_id = {hit.id: hit for hit in both}
    assert by_id["c"].lexical_score == 0.0
    assert by_id["c"].lexical_rank is None
    assert by_id["b"].lexical_rank == 1
    assert by_id["a"].lexical_rank is None


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"alpha": 1.5}, VectorQueryError),
        ({"alpha": -0.1}, VectorQueryError),
        ({"alpha": True}, VectorQueryError),
        ({"k": 0}, VectorQueryError),
        ({"min_score": float("nan")}, VectorQueryError),
        ({"text_field": "a..b"}, FilterError),
        ({"filter": {"$bogus": 1}}, FilterError),
    ],
)
def test_bad_requests_raise(options: dict[str, Any], error: type[Exception]) -> None:
    node = Node()
    node.create("docs", 2)
    node.upsert("docs", "a", [1, 0], {"text": "x"})
    before = node.model.digest()
    with pytest.raises(error):
        run(node.model, "x", [1, 0], **options)
    with pytest.raises(VectorQueryError):
        run(node.model, "", [1, 0])
    with pytest.raises(VectorQueryError):
        run(node.model, "x", [1, 0, 0])
    assert node.model.digest() == before


def test_include_vectors_returns_the_stored_rows() -> None:
    node = Node()
    node.create("docs", 2, "dot")
    node.upsert("docs", "a", [0.25, 0.5], {"text": "x"})
    (hit,) = run(node.model, "x", [1, 0], include_vectors=True)
    assert hit.vector is not None
    assert hit.vector.tolist() == [0.25, 0.5]
    assert np.float32(hit.vector_score) == np.float32(0.25)
