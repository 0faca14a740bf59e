"""The IVF index: assignment and probing are exact argmaxes (ties to the lower list), and search stays exact-scored."""

from __future__ import annotations

import math

import numpy as np
import pytest

from commands import MemoryAdd, MemoryIndex
from projections import memory_search
from projections.memories import MemoriesModel, MemoryFilter
from projections.memory_ivf import assign, probe
from projections.memory_search import search, search_with_plan
from query_api.node.memory_index import sample_vectors, train_centroids
from tests.projections.memory_support import Applier


def exact(x: np.ndarray, c: np.ndarray) -> float:
    return math.fsum((x.astype(np.float64) * c.astype(np.float64)).tolist())


def clustered(count: int, dimension: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dimension))
    rows = centres[rng.integers(0, clusters, count)] + 0.3 * rng.standard_normal((count, dimension))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_assignment_is_the_exact_argmax_with_ties_to_the_lower_list() -> None:
    rows = clustered(600, 24, 8, 1)
    centroids = clustered(12, 24, 4, 2)
    centroids[7] = centroids[3]  # an exact tie: list 3 must win
    centroids[9] = centroids[5] + np.float32(1e-7)  # a near-tie float32 cannot be trusted to decide
    lists = assign(rows, centroids)
    for i, row in enumerate(rows):
        scores = [(-exact(row, c), j) for j, c in enumerate(centroids)]
        assert lists[i] == min(scores)[1]
    assert 7 not in set(lists.tolist())
    one_by_one = np.concatenate([assign(rows[i : i + 1], centroids) for i in range(len(rows))])
    assert (one_by_one == lists).all()


def test_probe_picks_the_exact_best_lists() -> None:
    centroids = clustered(64, 16, 64, 3)
    centroids[40] = centroids[10]
    rng = np.random.default_rng(4)
    for _ in range(50):
        query = rng.standard_normal(16).astype(np.float32)
        chosen = probe(centroids, query, 8)
        ranked = sorted((-exact(c, query), j) for j, c in enumerate(centroids))
        assert chosen.tolist() == sorted(j for _, j in ranked[:8])
    assert probe(centroids, query, 100).tolist() == list(range(64))


def build(count: int, seed: int = 5) -> tuple[Applier, np.ndarray]:
    vectors = clustered(count, 32, 40, seed)
    apply = Applier()
    for i, vector in enumerate(vectors):
        apply(MemoryAdd(content=f"memory {i}", embedding=vector.tolist(), model_id="m", user_id=f"u{i % 4}"))
    return apply, vectors


def index(apply: Applier, lists: int) -> None:
    space = apply.model.space("acme", "default")
    assert space is not None
    centroids = train_centroids(sample_vectors(space, 5_000), lists)
    apply(MemoryIndex(lists=lists, centroids=centroids.astype("<f2").tobytes(), model_id="m"))


def test_approximate_search_scores_exactly_and_recalls_most(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_search, "APPROXIMATE_MIN_ROWS", 500)
    apply, _ = build(3_000)
    space = apply.model.space("acme", "default")
    before = apply.model.digest()
    index(apply, 48)
    assert apply.model.digest() != before
    apply(MemoryAdd(content="late", embedding=clustered(1, 32, 1, 9)[0].tolist(), model_id="m"))  # assigned on add
    rng = np.random.default_rng(6)
    found = total = 0
    for _ in range(40):
        query = clustered(1, 32, 40, int(rng.integers(1000)))[0]
        exact_hits = search(space, MemoryFilter(), mode="vector", vector=query, k=10, exact=True)
        hits, probed = search_with_plan(space, MemoryFilter(), mode="vector", vector=query, k=10, nprobe=8)
        assert probed == 8
        exact_scores = {
            h.memory.id: h.score for h in search(space, MemoryFilter(), mode="vector", vector=query, k=1000, exact=True)
        }
        assert all(exact_scores[h.memory.id] == h.score for h in hits if h.memory.id in exact_scores)
        found += len({h.memory.id for h in hits} & {h.memory.id for h in exact_hits})
        total += 10
        filtered, _ = search_with_plan(space, MemoryFilter(user_id="u1"), mode="vector", vector=query, k=5)
        assert all(h.memory.user_id == "u1" for h in filtered)
    assert found / total >= 0.9
    _, probed = search_with_plan(space, MemoryFilter(user_id="u1"), mode="vector", vector=query, k=5, exact=True)
    assert probed is None

    restored = MemoriesModel()
    restored.restore_state(apply.model.snapshot_state())
    assert restored.digest() == apply.model.digest()
    again = restored.space("acme", "default")
    assert [
        (h.memory.id, h.score)
        for h in search(again, MemoryFilter(), mode="hybrid", text="memory 7", vector=query, k=10)
    ] == [
        (h.memory.id, h.score)
        for h in search(space, MemoryFilter(), mode="hybrid", text="memory 7", vector=query, k=10)
    ]


def test_index_commands_are_checked() -> None:
    apply, _ = build(50)
    good = train_centroids(sample_vectors(apply.model.space("acme", "default"), 50), 4)  # type: ignore[arg-type]
    data = good.astype("<f2").tobytes()
    assert apply.rejected(MemoryIndex(lists=4, centroids=data, model_id="other")).reason == "invalid"
    assert apply.rejected(MemoryIndex(lists=5, centroids=data, model_id="m")).reason == "invalid"
    assert apply.rejected(MemoryIndex(lists=4, centroids=data, model_id="m"), namespace="empty").reason == "not_found"
    infinite = np.full(4 * 32, np.inf, dtype="<f2").tobytes()
    assert apply.rejected(MemoryIndex(lists=4, centroids=infinite, model_id="m")).reason == "invalid"
    assert apply(MemoryIndex(lists=4, centroids=data, model_id="m")) == {"lists": 4, "model_id": "m"}
