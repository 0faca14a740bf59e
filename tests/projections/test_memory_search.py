"""Memory search: exact cosine scan, BM25, reciprocal rank fusion, filters, per-leg explanations."""

from __future__ import annotations

import numpy as np
import pytest

from commands import MemoryAdd, MemoryInvalidate
from projections.memories import MemoryFilter
from projections.memory_search import HYBRID_DEPTH_MIN, RRF_K, MemoryQueryError, filter_mask, search
from tests.projections.memory_support import Applier

DIM = 16


def seeded(count: int, seed: int = 3) -> tuple[Applier, np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, DIM)).astype(np.float32)
    words = ("tea", "coffee", "rust", "python", "oslo", "bergen")
    apply = Applier()
    for i, vector in enumerate(vectors):
        content = " ".join(words[j] for j in rng.integers(0, len(words), 3))
        apply(
            MemoryAdd(
                content=content,
                embedding=vector.tolist(),
                model_id="m",
                user_id=f"u{i % 3}",
                session_id=f"s{i % 10}",
                tags=["even"] if i % 2 == 0 else [],
            )
        )
    return apply, vectors


def test_vector_search_is_exact_cosine_with_ties_by_id() -> None:
    apply, vectors = seeded(300)
    space = apply.model.space("acme", "default")
    query = np.random.default_rng(9).standard_normal(DIM).astype(np.float32)
    hits = search(space, MemoryFilter(), mode="vector", vector=query, k=10)
    wide = vectors.astype(np.float64)
    cosine = wide @ query.astype(np.float64) / np.linalg.norm(wide, axis=1) / np.linalg.norm(query)
    expected = sorted(range(300), key=lambda i: (-cosine[i], i))[:10]
    assert [hit.memory.id for hit in hits] == [i + 1 for i in expected]
    for rank, hit in enumerate(hits, 1):
        assert hit.score == pytest.approx(cosine[hit.memory.id - 1], abs=1e-5)
        assert (hit.vector_rank, hit.vector_score, hit.lexical_rank, hit.lexical_score) == (rank, hit.score, None, None)
    twin = Applier()
    for _ in range(3):
        twin(MemoryAdd(content="same", embedding=[1.0, 1.0], model_id="m"))
    assert [
        h.memory.id
        for h in search(twin.model.space("acme", "default"), MemoryFilter(), mode="vector", vector=[1, 1], k=3)
    ] == [1, 2, 3]


def test_filtered_scores_are_bit_identical_to_unfiltered() -> None:
    apply, _ = seeded(400)
    space = apply.model.space("acme", "default")
    query = np.random.default_rng(5).standard_normal(DIM)
    unfiltered = {h.memory.id: h.score for h in search(space, MemoryFilter(), mode="vector", vector=query, k=400)}
    for where in (
        MemoryFilter(user_id="u1"),
        MemoryFilter(session_id="s3"),
        MemoryFilter(user_id="u2", tags=("even",)),
    ):
        filtered = search(space, where, mode="vector", vector=query, k=50)  # a third, a tenth, a sixth of the rows
        assert filtered
        assert all(where.keeps(h.memory) for h in filtered)
        assert all(unfiltered[h.memory.id] == h.score for h in filtered)
        expected = [
            i for i in sorted(unfiltered, key=lambda i: (-unfiltered[i], i)) if where.keeps(space.records[i - 1])
        ]
        assert [h.memory.id for h in filtered] == expected[:50]


def test_the_mask_and_the_record_filter_agree() -> None:
    apply, _ = seeded(200)
    apply(MemoryInvalidate(id=5))
    apply(MemoryInvalidate(id=8, valid_until=1_200))
    space = apply.model.space("acme", "default")
    assert space is not None
    wheres = [
        MemoryFilter(),
        MemoryFilter(include_invalidated=True),
        MemoryFilter(valid_at=1_150),
        MemoryFilter(valid_at=1_300, user_id="u2"),
        MemoryFilter(session_id="s5", tags=("even",)),
        MemoryFilter(user_id="nobody"),
        MemoryFilter(tags=("missing",)),
        MemoryFilter(memory_type="fact", agent_id="a"),
    ]
    for where in wheres:
        mask = filter_mask(space, where)
        assert mask.tolist() == [False] + [where.keeps(record) for record in space.records], where


def test_lexical_search_uses_the_index_and_the_filter() -> None:
    apply, _ = seeded(120)
    space = apply.model.space("acme", "default")
    assert space is not None
    hits = search(space, MemoryFilter(user_id="u2"), mode="lexical", text="rust oslo", k=20)
    expected = [(d, s) for d, s in space.lexical.search("rust oslo", 200) if space.records[d - 1].user_id == "u2"]
    assert [(h.memory.id, h.score) for h in hits] == expected[:20]
    assert all(h.lexical_rank == rank for rank, h in enumerate(hits, 1))


def test_hybrid_is_reciprocal_rank_fusion_of_the_legs() -> None:
    apply, _ = seeded(500)
    space = apply.model.space("acme", "default")
    query = np.random.default_rng(8).standard_normal(DIM)
    depth = HYBRID_DEPTH_MIN
    vector_leg = search(space, MemoryFilter(), mode="vector", vector=query, k=depth)
    lexical_leg = search(space, MemoryFilter(), mode="lexical", text="tea python", k=depth)
    fused: dict[int, float] = {}
    for leg in (vector_leg, lexical_leg):
        for rank, hit in enumerate(leg, 1):
            fused[hit.memory.id] = fused.get(hit.memory.id, 0.0) + 1.0 / (RRF_K + rank)
    expected = sorted(fused, key=lambda i: (-fused[i], i))[:10]
    hits = search(space, MemoryFilter(), mode="hybrid", text="tea python", vector=query, k=10)
    assert [h.memory.id for h in hits] == expected
    assert [h.score for h in hits] == [fused[i] for i in expected]
    vector_rank = {h.memory.id: r for r, h in enumerate(vector_leg, 1)}
    for hit in hits:
        assert hit.vector_rank == vector_rank.get(hit.memory.id)
    best = hits[0].score
    assert [
        h.memory.id
        for h in search(space, MemoryFilter(), mode="hybrid", text="tea python", vector=query, k=10, min_score=best)
    ] == [hits[0].memory.id]


def test_forgotten_memories_leave_search_unless_valid_at_says_otherwise() -> None:
    apply = Applier()
    apply(MemoryAdd(content="deploys on friday", embedding=[1.0, 0.0], model_id="m"))
    apply(MemoryAdd(content="deploys on monday", embedding=[0.0, 1.0], model_id="m"))
    apply(MemoryInvalidate(id=1))
    space = apply.model.space("acme", "default")
    assert [h.memory.id for h in search(space, MemoryFilter(), mode="lexical", text="friday")] == []
    assert [h.memory.id for h in search(space, MemoryFilter(valid_at=1005), mode="lexical", text="friday")] == [1]
    assert [h.memory.id for h in search(space, MemoryFilter(), mode="hybrid", text="deploys", vector=[1, 0])] == [2]


def test_bad_searches_are_refused() -> None:
    apply, _ = seeded(5)
    space = apply.model.space("acme", "default")
    with pytest.raises(MemoryQueryError, match="k must"):
        search(space, MemoryFilter(), mode="lexical", text="tea", k=1001)
    with pytest.raises(MemoryQueryError, match="needs a query vector"):
        search(space, MemoryFilter(), mode="hybrid", text="tea")
    with pytest.raises(MemoryQueryError, match="needs query text"):
        search(space, MemoryFilter(), mode="lexical", vector=[1.0])
    with pytest.raises(MemoryQueryError, match="dimension"):
        search(space, MemoryFilter(), mode="vector", vector=[1.0, 2.0])
    with pytest.raises(MemoryQueryError, match="norm"):
        search(space, MemoryFilter(), mode="vector", vector=[0.0] * DIM)
    assert search(None, MemoryFilter(), mode="lexical", text="tea") == []
