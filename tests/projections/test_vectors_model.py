"""The vectors read model: exact top-k against numpy brute force, filters, writes, determinism, digests."""

from __future__ import annotations

import contextlib
import itertools
import pickle
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from pydantic import ValidationError

from commands import Caller, CollectionCreate, Envelope, VectorDelete, VectorUpsert, stamp
from projections.model import ApplyContext
from projections.outcome import Rejected
from projections.vectors import (
    MAX_NORM,
    CollectionNotFoundError,
    FilterError,
    Hit,
    VectorQueryError,
    VectorsModel,
)

METRICS = ("cosine", "dot", "euclidean")
F32 = np.float32


# -- harness -----------------------------------------------------------------------------------------


@dataclass
class Node:
    """A model plus the log of every envelope offered to it (rejected ones included), for rebuilds."""

    model: VectorsModel = field(default_factory=VectorsModel)
    log: list[Envelope] = field(default_factory=list)

    def run(self, command: Any, *, tenant: str = "t1", namespace: str = "ns") -> dict[str, Any]:
        """Stamp `command`, log it and apply it (Rejected propagates, as the engine would record it)."""
        envelope = stamp(command, Caller(tenant=tenant), namespace=namespace, command_id=f"cmd-{len(self.log)}")
        self.log.append(envelope)
        offset = len(self.log) - 1
        return self.model.apply(ApplyContext(envelope, partition=0, offset=offset, log_time_ms=offset))

    def create(self, name: str, dimension: int, metric: str = "cosine", **where: str) -> dict[str, Any]:
        return self.run(CollectionCreate(name=name, dimension=dimension, metric=metric), **where)  # type: ignore[arg-type]

    def upsert(
        self, collection: str, vector_id: str, vector: Any, metadata: dict[str, Any] | None = None, **where: str
    ) -> dict[str, Any]:
        embedding = np.asarray(vector, dtype=F32).tobytes()
        command = VectorUpsert(collection=collection, id=vector_id, embedding=embedding, metadata=metadata)
        return self.run(command, **where)

    def delete(self, collection: str, vector_id: str, **where: str) -> dict[str, Any]:
        return self.run(VectorDelete(collection=collection, id=vector_id), **where)

    def load(
        self,
        collection: str,
        ids: Sequence[str],
        matrix: npt.NDArray[Any],
        metas: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        for index, vector_id in enumerate(ids):
            self.upsert(collection, vector_id, matrix[index], metas[index] if metas is not None else None)

    def rebuild(self) -> VectorsModel:
        """A fresh model fed the same log from offset 0."""
        return replay(self.log)


def replay(log: Iterable[Envelope]) -> VectorsModel:
    model = VectorsModel()
    for offset, envelope in enumerate(log):
        with contextlib.suppress(Rejected):
            model.apply(ApplyContext(envelope, partition=0, offset=offset, log_time_ms=offset))
    return model


def f32(values: Sequence[float]) -> bytes:
    """Float32 LE bytes of `values`, as an embedding travels."""
    return np.asarray(values, dtype=F32).tobytes()


def ids_for(count: int) -> list[str]:
    return [f"v{index:06d}" for index in range(count)]


def reference_scores(matrix: npt.NDArray[Any], query: npt.NDArray[Any], metric: str) -> npt.NDArray[np.float64]:
    """Brute-force scores in float64 (higher is better; -distance for euclidean)."""
    rows = matrix.astype(np.float64)
    wanted = np.asarray(query, dtype=F32).astype(np.float64)
    if metric == "cosine":
        result: npt.NDArray[np.float64] = (rows / np.linalg.norm(rows, axis=1)[:, None]) @ (
            wanted / np.linalg.norm(wanted)
        )
        return result
    if metric == "dot":
        return rows @ wanted
    distances: npt.NDArray[np.float64] = np.linalg.norm(rows - wanted, axis=1)
    return -distances


def reference_top(
    scores: npt.NDArray[np.float64], ids: Sequence[str], k: int, mask: npt.NDArray[np.bool_] | None = None
) -> list[tuple[str, float]]:
    """The k best (id, score) by (-score, id) among `mask`."""
    positions = range(len(ids)) if mask is None else np.flatnonzero(mask).tolist()
    ranked = sorted(positions, key=lambda position: (-scores[position], ids[position]))[:k]
    return [(ids[position], float(scores[position])) for position in ranked]


def assert_exact_top(
    hits: Sequence[Hit], expected: Sequence[tuple[str, float]], scores_by_id: dict[str, float], tolerance: float
) -> None:
    """`hits` is the reference top-k: same ids, or at a position where they differ an exact float tie."""
    assert len(hits) == len(expected)
    got_scores = [hit.score for hit in hits]
    assert got_scores == sorted(got_scores, reverse=True)
    for earlier, later in itertools.pairwise(hits):
        if earlier.score == later.score:
            assert earlier.id < later.id, "equal scores must be ordered by id"
    mismatches = 0
    for hit, (want_id, want_score) in zip(hits, expected, strict=True):
        assert hit.score == pytest.approx(scores_by_id[hit.id], abs=tolerance)
        if hit.id != want_id:
            mismatches += 1
            # float32 rounding may only swap vectors whose true scores are within rounding of each other
            assert scores_by_id[hit.id] == pytest.approx(want_score, abs=2 * tolerance)
    assert mismatches <= len(hits) // 4


@pytest.fixture(scope="module")
def digits() -> npt.NDArray[np.float32]:
    """scikit-learn's 8x8 digits: 1,797 integer-valued 64-d vectors (with exact duplicates)."""
    from sklearn.datasets import load_digits

    data: npt.NDArray[np.float32] = load_digits().data.astype(F32)
    return data


# -- collections and write validation ------------------------------------------------------------------


def test_create_is_idempotent_with_the_same_config() -> None:
    node = Node()
    assert node.create("docs", 8, "dot") == {"created": True, "collection": "docs", "dimension": 8, "metric": "dot"}
    assert node.create("docs", 8, "dot")["created"] is False
    [info] = node.model.collections("t1", "ns")
    assert (info.name, info.dimension, info.metric, info.count) == ("docs", 8, "dot", 0)


@pytest.mark.parametrize(("dimension", "metric"), [(9, "dot"), (8, "cosine"), (16, "euclidean")])
def test_create_with_another_config_is_rejected(dimension: int, metric: str) -> None:
    node = Node()
    node.create("docs", 8, "dot")
    before = node.model.digest()
    with pytest.raises(Rejected) as caught:
        node.create("docs", dimension, metric)
    assert caught.value.reason == "already_exists"
    assert caught.value.extra == {"dimension": 8, "metric": "dot"}
    assert node.model.digest() == before


def test_writes_to_a_missing_collection_are_not_found() -> None:
    node = Node()
    with pytest.raises(Rejected) as upsert:
        node.upsert("nope", "a", [1.0, 2.0])
    with pytest.raises(Rejected) as delete:
        node.delete("nope", "a")
    assert (upsert.value.reason, delete.value.reason) == ("not_found", "not_found")
    assert node.model.collections("t1", "ns") == []


def test_wrong_dimension_is_invalid() -> None:
    node = Node()
    node.create("docs", 4)
    with pytest.raises(Rejected) as caught:
        node.upsert("docs", "a", [1.0, 2.0, 3.0])
    assert caught.value.reason == "invalid"
    assert "dimension 3" in caught.value.detail
    assert caught.value.extra == {"dimension": 4}
    assert node.model.collection_info("t1", "ns", "docs").count == 0


def test_non_finite_values_are_refused_by_the_command_and_by_the_model() -> None:
    with pytest.raises(ValidationError, match="finite"):
        VectorUpsert(collection="docs", id="a", embedding=f32([1.0, float("nan")]))
    node = Node()
    node.create("docs", 2, "dot")
    forged = VectorUpsert.model_construct(
        collection="docs", id="a", embedding=np.array([1.0, np.inf], dtype=F32).tobytes(), metadata=None
    )
    with pytest.raises(Rejected) as caught:
        node.run(forged)
    assert caught.value.reason == "invalid"
    assert node.model.collection_info("t1", "ns", "docs").count == 0


def test_zero_vector_in_cosine_and_huge_norms_are_invalid() -> None:
    node = Node()
    node.create("cos", 3, "cosine")
    node.create("dot", 3, "dot")
    with pytest.raises(Rejected, match="too small for cosine") as zero:
        node.upsert("cos", "z", [0.0, 0.0, 0.0])
    with pytest.raises(Rejected, match="exceeds") as huge:
        node.upsert("dot", "h", [3e18, 0.0, 0.0])
    assert (zero.value.reason, huge.value.reason) == ("invalid", "invalid")
    node.upsert("dot", "zero-is-fine-for-dot", [0.0, 0.0, 0.0])
    node.upsert("dot", "big-but-allowed", [MAX_NORM / 2, 0.0, 0.0])
    hits = node.model.search("t1", "ns", "dot", [1e18, 0, 0], k=2)
    assert [hit.id for hit in hits] == ["big-but-allowed", "zero-is-fine-for-dot"]
    assert np.isfinite([hit.score for hit in hits]).all()


def test_rejected_commands_change_nothing() -> None:
    node = Node()
    node.create("docs", 3, "euclidean")
    node.upsert("docs", "a", [1, 2, 3], {"tag": "x"})
    node.model.search("t1", "ns", "docs", [1, 2, 3], filter={"tag": "x"})  # builds a filter column too
    before = (node.model.digest(), node.model.collection_info("t1", "ns", "docs"))
    attempts: list[Any] = [
        CollectionCreate(name="docs", dimension=4, metric="euclidean"),
        VectorUpsert(collection="docs", id="b", embedding=f32([1.0, 2.0])),
        VectorUpsert(collection="docs", id="a", embedding=f32([1.0, 2.0, 3.0, 4.0])),
        VectorUpsert(collection="docs", id="a", embedding=f32([2e18, 0.0, 0.0])),
        VectorUpsert(collection="missing", id="a", embedding=f32([1.0, 2.0, 3.0])),
        VectorDelete(collection="missing", id="a"),
    ]
    for command in attempts:
        with pytest.raises(Rejected):
            node.run(command)
    assert (node.model.digest(), node.model.collection_info("t1", "ns", "docs")) == before
    assert [hit.id for hit in node.model.search("t1", "ns", "docs", [1, 2, 3], filter={"tag": "x"})] == ["a"]
    assert node.rebuild().digest() == before[0]


# -- exact top-k ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
def test_top_k_equals_brute_force_on_digits(digits: npt.NDArray[np.float32], metric: str) -> None:
    node = Node()
    node.create("digits", 64, metric)
    keep = np.flatnonzero(np.linalg.norm(digits, axis=1) > 0)
    data = digits[keep]
    ids = ids_for(len(data))
    node.load("digits", ids, data)
    rng = np.random.default_rng(7)
    queries = [data[5], data[900], data[1500] + 0.5, rng.integers(0, 17, 64).astype(F32)]
    for query, k in itertools.product(queries, (1, 10, 100)):
        scores = reference_scores(data, query, metric)
        expected = reference_top(scores, ids, k)
        hits = node.model.search("t1", "ns", "digits", query, k=k)
        if metric == "cosine":
            assert_exact_top(hits, expected, dict(zip(ids, scores.tolist(), strict=True)), 1e-6)
        else:
            # integer data: float32 dot products and squared distances are exact, so ranks and ties are too
            assert [hit.id for hit in hits] == [vector_id for vector_id, _ in expected]
            assert [hit.score for hit in hits] == pytest.approx([score for _, score in expected], rel=1e-6)


@pytest.mark.parametrize("metric", METRICS)
def test_top_k_equals_brute_force_on_random_data(metric: str) -> None:
    rng = np.random.default_rng(11)
    data = rng.standard_normal((3000, 48)).astype(F32) * rng.uniform(0.5, 2.0, (3000, 1)).astype(F32)
    ids = ids_for(len(data))
    rng.shuffle(ids)  # slot order is not id order
    node = Node()
    node.create("rand", 48, metric)
    node.load("rand", ids, data)
    for trial in range(8):
        query = rng.standard_normal(48).astype(F32)
        scores = reference_scores(data, query, metric)
        for k in (1, 10, 257):
            expected = reference_top(scores, ids, k)
            hits = node.model.search("t1", "ns", "rand", query, k=k)
            tolerance = 1e-5 * float(np.abs(scores).max())
            assert_exact_top(hits, expected, dict(zip(ids, scores.tolist(), strict=True)), tolerance)
            if trial < 2:
                assert [hit.id for hit in hits] == [vector_id for vector_id, _ in expected]


def test_k_larger_than_the_collection_returns_everything_sorted() -> None:
    node = Node()
    node.create("small", 2, "dot")
    for index, vector in enumerate([[1, 0], [3, 0], [2, 0]]):
        node.upsert("small", f"v{index}", vector)
    hits = node.model.search("t1", "ns", "small", [1, 0], k=1000)
    assert [(hit.id, hit.score) for hit in hits] == [("v1", 3.0), ("v2", 2.0), ("v0", 1.0)]


@pytest.mark.parametrize("metric", METRICS)
def test_ties_are_broken_by_id(metric: str) -> None:
    node = Node()
    node.create("ties", 4, metric)
    tied = [0.5, -1.0, 2.0, 0.25]
    for vector_id in ["e", "b", "d", "a", "c"]:  # inserted out of id order
        node.upsert("ties", vector_id, tied)
    node.upsert("ties", "far", [-3.0, 1.0, -2.0, 0.0])
    hits = node.model.search("t1", "ns", "ties", tied, k=3)
    assert [hit.id for hit in hits] == ["a", "b", "c"]
    assert len({hit.score for hit in hits}) == 1
    everything = node.model.search("t1", "ns", "ties", tied, k=10)
    assert [hit.id for hit in everything] == ["a", "b", "c", "d", "e", "far"]


def test_scaled_vectors_tie_exactly_under_cosine() -> None:
    node = Node()
    node.create("cos", 3, "cosine")
    base = np.array([0.3, -0.7, 0.2], dtype=F32)
    for vector_id, scale in [("z", 1.0), ("m", 4.0), ("a", 0.25)]:  # powers of two scale exactly
        node.upsert("cos", vector_id, base * F32(scale))
    hits = node.model.search("t1", "ns", "cos", [1.0, 0.5, -0.5], k=3)
    assert [hit.id for hit in hits] == ["a", "m", "z"]
    assert len({hit.score for hit in hits}) == 1


# -- scores and min_score ------------------------------------------------------------------------------


def test_score_conventions() -> None:
    node = Node()
    for metric in METRICS:
        node.create(metric, 2, metric)
        node.upsert(metric, "x", [3.0, 4.0])
    assert node.model.search("t1", "ns", "cosine", [6.0, 8.0], k=1)[0].score == pytest.approx(1.0, abs=1e-6)
    assert node.model.search("t1", "ns", "cosine", [-4.0, 3.0], k=1)[0].score == pytest.approx(0.0, abs=1e-6)
    assert node.model.search("t1", "ns", "dot", [1.0, 2.0], k=1)[0].score == 11.0
    assert node.model.search("t1", "ns", "euclidean", [0.0, 0.0], k=1)[0].score == -5.0
    assert node.model.search("t1", "ns", "euclidean", [3.0, 4.0], k=1)[0].score == 0.0


@pytest.mark.parametrize("metric", METRICS)
def test_min_score_keeps_only_hits_at_or_above_it(metric: str) -> None:
    rng = np.random.default_rng(3)
    data = rng.standard_normal((500, 16)).astype(F32)
    ids = ids_for(500)
    node = Node()
    node.create("m", 16, metric)
    node.load("m", ids, data)
    query = rng.standard_normal(16).astype(F32)
    everything = node.model.search("t1", "ns", "m", query, k=500)
    for threshold in (everything[0].score, everything[7].score, everything[200].score, everything[0].score + 1):
        hits = node.model.search("t1", "ns", "m", query, k=50, min_score=threshold)
        expected = [hit for hit in everything if hit.score >= threshold][:50]
        assert hits == expected
    if metric == "euclidean":  # min_score = -radius keeps the vectors within that distance
        radius = -everything[30].score
        within = node.model.search("t1", "ns", "m", query, k=1000, min_score=-radius)
        distances = np.linalg.norm(data.astype(np.float64) - query, axis=1)
        assert {hit.id for hit in within} == {ids[i] for i in np.flatnonzero(distances <= radius + 1e-4)}


# -- filtered search -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def filtered_node() -> tuple[Node, npt.NDArray[np.float32], list[str], list[dict[str, Any]]]:
    """10,000 vectors with fields selecting 100%, 10%, 1% and 0.1% of them."""
    rng = np.random.default_rng(5)
    count = 10_000
    data = rng.standard_normal((count, 32)).astype(F32)
    ids = ids_for(count)
    metas = [
        {
            "all": "yes",
            "tenth": index % 10 == 0,
            "bucket": index % 100,
            "rare": "x" if index % 1000 == 7 else "y",
            "score": float(index) / 7,
        }
        for index in range(count)
    ]
    node = Node()
    node.create("f", 32, "cosine")
    node.load("f", ids, data, metas)
    return node, data, ids, metas


@pytest.mark.parametrize(
    ("spec", "selectivity"),
    [
        ({"all": "yes"}, 1.0),
        ({}, 1.0),
        ({"tenth": True}, 0.1),
        ({"bucket": 42}, 0.01),
        ({"bucket": {"$in": [3, 4]}, "score": {"$lt": 500.0}}, None),
        ({"rare": "x"}, 0.001),
        ({"rare": "nobody"}, 0.0),
        ({"bucket": {"$gte": 99}}, 0.01),
        ({"$or": [{"rare": "x"}, {"bucket": 1}]}, None),
        ({"bucket": {"$ne": 0}, "tenth": False}, 0.9),
    ],
)
def test_filtered_search_has_recall_one(
    filtered_node: tuple[Node, npt.NDArray[np.float32], list[str], list[dict[str, Any]]],
    spec: dict[str, Any],
    selectivity: float | None,
) -> None:
    node, data, ids, metas = filtered_node
    masks = {  # the reference selection of each case, spelled out in Python
        "{'all': 'yes'}": [True] * len(metas),
        "{}": [True] * len(metas),
        "{'tenth': True}": [m["tenth"] for m in metas],
        "{'bucket': 42}": [m["bucket"] == 42 for m in metas],
        "{'bucket': {'$in': [3, 4]}, 'score': {'$lt': 500.0}}": [
            m["bucket"] in (3, 4) and m["score"] < 500.0 for m in metas
        ],
        "{'rare': 'x'}": [m["rare"] == "x" for m in metas],
        "{'rare': 'nobody'}": [False] * len(metas),
        "{'bucket': {'$gte': 99}}": [m["bucket"] >= 99 for m in metas],
        "{'$or': [{'rare': 'x'}, {'bucket': 1}]}": [m["rare"] == "x" or m["bucket"] == 1 for m in metas],
        "{'bucket': {'$ne': 0}, 'tenth': False}": [m["bucket"] != 0 and not m["tenth"] for m in metas],
    }
    mask = np.array(masks[repr(spec)], dtype=np.bool_)
    if selectivity is not None:
        assert mask.mean() == pytest.approx(selectivity)
    rng = np.random.default_rng(len(repr(spec)))
    for _ in range(3):
        query = rng.standard_normal(32).astype(F32)
        scores = reference_scores(data, query, "cosine")
        expected = reference_top(scores, ids, 10, mask)
        hits = node.model.search("t1", "ns", "f", query, k=10, filter=spec)
        assert [hit.id for hit in hits] == [vector_id for vector_id, _ in expected]  # recall 1.0, same order
        assert all(mask[ids.index(hit.id)] for hit in hits)
        assert [hit.score for hit in hits] == pytest.approx([score for _, score in expected], abs=1e-6)


def _blas_threads(threads: int | None) -> contextlib.AbstractContextManager[object]:
    """Run with the default BLAS threads (None) or exactly `threads` (needs threadpoolctl)."""
    if threads is None:
        return contextlib.nullcontext()
    threadpoolctl = pytest.importorskip("threadpoolctl")
    limiter: contextlib.AbstractContextManager[object] = threadpoolctl.threadpool_limits(threads)
    return limiter


@pytest.mark.parametrize("threads", [None, 1, 3])
def test_filtered_scores_are_bit_identical_to_unfiltered(threads: int | None) -> None:
    rng = np.random.default_rng(1)
    node = Node()
    node.create("f", 48, "cosine")
    node.load("f", ids_for(997), rng.standard_normal((997, 48)), [{"b": i % 7, "r": i % 97 == 3} for i in range(997)])
    query = rng.standard_normal(48).astype(F32)
    with _blas_threads(threads):
        everything = {hit.id: hit.score for hit in node.model.search("t1", "ns", "f", query, k=1000)}
        assert len(everything) == 997
        for spec in ({"r": True}, {"b": 3}, {"b": {"$in": [1, 2, 5]}}, {"b": {"$ne": 5}}, {"r": False}):
            hits = node.model.search("t1", "ns", "f", query, k=1000, filter=spec)
            assert len(hits) > 5
            assert all(hit.score == everything[hit.id] for hit in hits)


@pytest.mark.parametrize(("metric", "threads"), [*((metric, None) for metric in METRICS), ("dot", 3)])
def test_a_vectors_score_does_not_depend_on_the_collection_size(metric: str, threads: int | None) -> None:
    rng = np.random.default_rng(2)
    node = Node()
    node.create("grow", 40, metric)
    query = rng.standard_normal(40).astype(F32)
    first_seen: dict[str, float] = {}
    with _blas_threads(threads):
        for batch in range(8):
            for index in range(37):  # an odd batch: row counts that are not multiples of any block size
                node.upsert("grow", f"b{batch}-{index:02d}", rng.standard_normal(40))
            for hit in node.model.search("t1", "ns", "grow", query, k=1000):
                assert first_seen.setdefault(hit.id, hit.score) == hit.score
    assert len(first_seen) == 8 * 37


# -- filter semantics: a differential test against the records query DSL ----------------------------------


@dataclass(frozen=True)
class _Doc:
    key: str
    metadata: dict[str, Any]
    value: Any = None
    version: int = 1


_POOL: list[Any] = [
    0,
    1,
    1.0,
    -2.5,
    2**60,
    2**60 + 1,
    2**63 - 1,
    "a",
    "ab",
    "b",
    "",
    True,
    False,
    None,
    [],
    ["a", "b"],
    [1, "a"],
    [[1]],
    {"x": 1},
    {"x": 1.0, "y": [2]},
]


#: Operands likely to hit, by the last segment of a path.
_OPERANDS: dict[str, list[Any]] = {
    "n": [0, 1, 2, 3.5, -1, 2**60, 2**60 + 1, 1e300, 1.5, 2**60 + 2],
    "s": ["a", "ab", "abc", "b", "", "B", "aa"],
    "b": [True, False],
    "z": [None],
    "tags": ["a", "b", "c", 1, 2, True, None, ["a"]],
    "x": [1, 2, "1", 1.0, 1.5],
    "0": [1, 2, 1.5],
    "deep": ["p", "q", "pp"],
    "list": [[1, {"deep": "p"}], [2, {"deep": "q"}]],
    "nested": [{"x": 1, "list": [1, {"deep": "p"}]}],
}


def _random_metadata(rng: random.Random) -> dict[str, Any]:
    fields: dict[str, Callable[[], Any]] = {
        "n": lambda: rng.choice([0, 1, 2, 3.5, -1, 2**60, 2**60 + 1, 2**60 + 3, 1e300]),
        "s": lambda: rng.choice(["a", "ab", "abc", "b", "", "B"]),
        "b": lambda: rng.choice([True, False]),
        "z": lambda: None,
        "tags": lambda: rng.sample(["a", "b", "c", 1, 2.0, True, None], rng.randint(0, 3)),
        "mixed": lambda: rng.choice(_POOL),
        "nested": lambda: {"x": rng.choice([1, 2, "1"]), "list": [rng.choice([1, 2]), {"deep": rng.choice("pq")}]},
    }
    return {name: make() for name, make in fields.items() if rng.random() < 0.8}


def _random_filter(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    paths = [
        *("n", "s", "b", "z", "tags", "mixed", "gone"),
        *("nested", "nested.x", "nested.list", "nested.list.0", "nested.list.1.deep"),
    ]
    roll = rng.random()
    if depth < 2 and roll < 0.15:
        return {rng.choice(["$and", "$or"]): [_random_filter(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    path = rng.choice(paths)
    relevant = _OPERANDS.get(path.split(".")[-1], [])
    operand = rng.choice([*relevant, *relevant, *_POOL, 2**60 + 2, 2.0**60, {"deep": "q"}])
    operator = rng.choice(["plain", "$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists", "$prefix"])
    if operator == "plain":
        return {path: operand} if not (isinstance(operand, dict) and operand) else {path: {"$eq": operand}}
    if operator in ("$in", "$nin"):
        return {path: {operator: rng.sample([*relevant, *_POOL], rng.randint(0, 4))}}
    if operator == "$exists":
        return {path: {"$exists": rng.random() < 0.5}}
    if operator == "$prefix":
        return {path: {"$prefix": rng.choice(["", "a", "ab", "B"])}}
    return {path: {operator: operand}}


def test_filters_match_the_records_query_dsl_through_writes_and_deletes() -> None:
    query_dsl = pytest.importorskip("projections.query_dsl")
    rng = random.Random(2024)
    node = Node()
    node.create("meta", 2, "dot")
    documents: dict[str, dict[str, Any]] = {}
    filters = [_random_filter(rng) for _ in range(250)]

    def check() -> None:
        for spec in filters:
            predicate = query_dsl.compile_filter(_prefixed(spec))
            expected = {key for key, meta in documents.items() if predicate(_Doc(key, meta))}
            hits = node.model.search("t1", "ns", "meta", [0.0, 0.0], k=1000, filter=spec)
            assert {hit.id for hit in hits} == expected, spec

    for index in range(300):
        documents[f"d{index:03d}"] = _random_metadata(rng)
        node.upsert("meta", f"d{index:03d}", [1.0, 0.0], documents[f"d{index:03d}"] or None)
    check()  # builds the columns from stored metadata
    for _ in range(300):  # then the columns are maintained write by write
        key = f"d{rng.randrange(400):03d}"
        if rng.random() < 0.4 and key in documents:
            node.delete("meta", key)
            del documents[key]
        else:
            documents[key] = _random_metadata(rng)
            node.upsert("meta", key, [1.0, 0.0], documents[key] or None)
    check()
    rebuilt = node.rebuild()
    for spec in filters[:50]:
        fresh = rebuilt.search("t1", "ns", "meta", [0.0, 0.0], k=1000, filter=spec)
        assert fresh == node.model.search("t1", "ns", "meta", [0.0, 0.0], k=1000, filter=spec)


def _prefixed(spec: Any) -> Any:
    """The records-DSL spelling of a vector filter: paths are under `metadata.`."""
    result: dict[str, Any] = {}
    for name, operand in spec.items():
        if name in ("$and", "$or"):
            result[name] = [_prefixed(part) for part in operand]
        else:
            result[f"metadata.{name}"] = operand
    return result


def test_big_integers_compare_exactly() -> None:
    node = Node()
    node.create("big", 1, "dot")
    values = {"lo": 2**60 - 1, "mid": 2**60, "hi": 2**60 + 1, "float": 2.0**60, "top": 2**64 - 1}
    for key, value in values.items():
        node.upsert("big", key, [1.0], {"n": value})

    def matching(spec: dict[str, Any]) -> set[str]:
        return {hit.id for hit in node.model.search("t1", "ns", "big", [1.0], k=10, filter=spec)}

    assert matching({"n": {"$gt": 2**60}}) == {"hi", "top"}
    assert matching({"n": {"$gte": 2**60 + 1}}) == {"hi", "top"}
    assert matching({"n": {"$lt": 2**60 + 1}}) == {"lo", "mid", "float"}
    assert matching({"n": {"$lte": 2**60 - 1}}) == {"lo"}
    assert matching({"n": 2**60}) == {"mid", "float"}  # 2**60 == 2.0**60 in JSON
    assert matching({"n": {"$gt": 2**64 - 2}}) == {"top"}


def test_array_values_match_by_element() -> None:
    node = Node()
    node.create("tags", 1, "dot")
    node.upsert("tags", "a", [1.0], {"tags": ["red", "blue"]})
    node.upsert("tags", "b", [1.0], {"tags": ["green"]})
    node.upsert("tags", "c", [1.0], {"tags": "red"})
    node.upsert("tags", "d", [1.0])

    def matching(spec: dict[str, Any]) -> list[str]:
        return [hit.id for hit in node.model.search("t1", "ns", "tags", [1.0], k=10, filter=spec)]

    assert matching({"tags": "red"}) == ["a", "c"]
    assert matching({"tags": {"$in": ["green", "blue"]}}) == ["a", "b"]
    assert matching({"tags": {"$ne": "red"}}) == ["b", "d"]
    assert matching({"tags": ["red", "blue"]}) == ["a"]
    assert matching({"tags": {"$exists": False}}) == ["d"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"a": {"$regex": "x"}}, "unknown operator '\\$regex'"),
        ({"$nor": []}, "only \\$and and \\$or"),
        ({"a": {"$in": "x"}}, "takes a list"),
        ({"a": {"$in": list(range(1001))}}, "at most 1000"),
        ({"a": {"$eq": 1, "b": 2}}, "mixes"),
        ({"": 1}, "non-empty string"),
        ({"a..b": 1}, "empty segment"),
        ({"a": {"$exists": 1}}, "true or false"),
        ({"a": {"$prefix": 1}}, "takes a string"),
        ({"a": {"$gt": float("nan")}}, "non-finite"),
        ({"a": {"$eq": (1, 2)}}, "not a JSON value"),
        ({"a": {"$eq": 2**70}}, "64-bit"),
        ({"$and": []}, "non-empty list"),
        ({"$or": {"a": 1}}, "non-empty list"),
        ([("a", 1)], "must be an object"),
    ],
)
def test_invalid_filters_raise_filter_error(spec: Any, message: str) -> None:
    node = Node()
    node.create("c", 2, "dot")
    with pytest.raises(FilterError, match=message) as caught:
        node.model.search("t1", "ns", "c", [1.0, 0.0], filter=spec)
    assert isinstance(caught.value, ValueError)


def test_filters_nested_too_deep_are_refused() -> None:
    node = Node()
    node.create("c", 2, "dot")
    spec: dict[str, Any] = {"a": 1}
    for _ in range(17):
        spec = {"$and": [spec]}
    with pytest.raises(FilterError, match="deeper than 16"):
        node.model.search("t1", "ns", "c", [1.0, 0.0], filter=spec)


# -- writes: replace, delete, reads ----------------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
def test_upsert_replaces_vector_and_metadata(metric: str) -> None:
    node = Node()
    node.create("c", 3, metric)
    assert node.upsert("c", "a", [1.0, 0.0, 0.0], {"v": 1})["created"] is True
    node.upsert("c", "b", [0.0, 1.0, 0.0], {"v": 1})
    replaced = node.upsert("c", "a", [0.1, 0.2, 3.0], {"v": 2})
    assert (replaced["created"], replaced["count"]) == (False, 2)
    stored = node.model.get_vector("t1", "ns", "c", "a")
    assert stored is not None
    assert stored.vector.tobytes() == np.array([0.1, 0.2, 3.0], dtype=F32).tobytes()  # bit-exact, any metric
    assert stored.metadata == {"v": 2}
    [hit] = node.model.search("t1", "ns", "c", [0.0, 0.0, 3.0], k=1, include_vectors=True)
    assert (hit.id, hit.metadata) == ("a", {"v": 2})
    assert hit.vector is not None
    assert hit.vector.tobytes() == stored.vector.tobytes()
    assert [h.id for h in node.model.search("t1", "ns", "c", [0.0, 0.0, 3.0], filter={"v": 1})] == ["b"]
    node.upsert("c", "a", [0.1, 0.2, 3.0])  # no metadata: the old metadata goes
    assert node.model.search("t1", "ns", "c", [0.0, 0.0, 3.0], k=1)[0].metadata == {}
    assert node.model.search("t1", "ns", "c", [0.0, 0.0, 3.0], filter={"v": {"$exists": True}})[0].id == "b"


def test_delete_then_search() -> None:
    rng = np.random.default_rng(9)
    data = rng.standard_normal((200, 8)).astype(F32)
    ids = ids_for(200)
    node = Node()
    node.create("c", 8, "dot")
    node.load("c", ids, data, [{"i": index} for index in range(200)])
    query = data[0]
    before = {hit.id: hit.score for hit in node.model.search("t1", "ns", "c", query, k=200)}
    node.model.search("t1", "ns", "c", query, filter={"i": {"$lt": 100}})  # a column to maintain
    deleted = set(ids[::3]) | {ids[-1]}
    for vector_id in sorted(deleted, reverse=True):
        assert node.delete("c", vector_id)["deleted"] is True
    assert node.delete("c", ids[0])["deleted"] is False  # deleting again: applied, nothing to do
    assert node.model.get_vector("t1", "ns", "c", ids[0]) is None
    after = node.model.search("t1", "ns", "c", query, k=200)
    survivors = [vector_id for vector_id in ids if vector_id not in deleted]
    assert sorted(hit.id for hit in after) == survivors
    for hit in after:
        assert hit.score == pytest.approx(before[hit.id], rel=1e-6)
    filtered = node.model.search("t1", "ns", "c", query, k=200, filter={"i": {"$lt": 100}})
    assert sorted(hit.id for hit in filtered) == [v for v in survivors if int(v[1:]) < 100]
    assert all(hit.metadata["i"] < 100 for hit in filtered)
    for vector_id in survivors:
        stored = node.model.get_vector("t1", "ns", "c", vector_id)
        assert stored is not None
        assert stored.vector.tobytes() == data[ids.index(vector_id)].tobytes()
        assert stored.metadata == {"i": ids.index(vector_id)}


def test_deleting_everything_shrinks_and_empties() -> None:
    node = Node()
    node.create("c", 4, "euclidean")
    for index in range(300):
        node.upsert("c", f"v{index}", [index, 0, 0, 0])
    assert node.model.collection_info("t1", "ns", "c").capacity == 512
    for index in range(300):
        node.delete("c", f"v{index}")
    info = node.model.collection_info("t1", "ns", "c")
    assert (info.count, info.capacity) == (0, 16)
    assert node.model.search("t1", "ns", "c", [1, 2, 3, 4], k=5) == []
    node.upsert("c", "again", [1, 2, 3, 4])
    assert [hit.id for hit in node.model.search("t1", "ns", "c", [1, 2, 3, 4], k=5)] == ["again"]


def test_collection_info_reports_memory() -> None:
    node = Node()
    node.create("c", 16, "cosine")
    node.create("a", 3, "dot")
    for index in range(100):
        node.upsert("c", f"id-{index}", np.arange(16) + index + 1, {"k": "v" * 10})
    info = node.model.collection_info("t1", "ns", "c")
    assert (info.count, info.dimension, info.metric, info.capacity) == (100, 16, "cosine", 128)
    assert info.matrix_bytes == 128 * 16 * 4
    assert info.bytes_used > info.matrix_bytes + 100 * (4 + 40)
    assert info.bytes_per_vector == info.bytes_used / 100
    assert [listed.name for listed in node.model.collections("t1", "ns")] == ["a", "c"]
    assert node.model.collection_info("t1", "ns", "a").bytes_per_vector == 0.0
    with pytest.raises(CollectionNotFoundError):
        node.model.collection_info("t1", "ns", "missing")


def test_accounted_bytes_match_what_the_allocator_holds() -> None:
    tracemalloc = pytest.importorskip("tracemalloc")
    rng = np.random.default_rng(8)
    data = rng.standard_normal((3000, 64)).astype(F32)
    caller = Caller(tenant="t1")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        model = VectorsModel()
        create = stamp(CollectionCreate(name="c", dimension=64, metric="cosine"), caller, namespace="ns")
        model.apply(ApplyContext(create, partition=0, offset=0, log_time_ms=0))
        for index in range(3000):  # envelopes die after apply, as in the engine: the model owns what it keeps
            command = VectorUpsert(collection="c", id=f"id-{index}", embedding=data[index].tobytes(), metadata={"t": 1})
            envelope = stamp(command, caller, namespace="ns", command_id=f"c{index}")
            model.apply(ApplyContext(envelope, partition=0, offset=index + 1, log_time_ms=index + 1))
        del command, envelope, create
        model.search("t1", "ns", "c", data[0], filter={"t": 3})  # a filter column counts too
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    accounted = model.collection_info("t1", "ns", "c").bytes_used
    assert accounted == pytest.approx(held, rel=0.1)


# -- search arguments ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"query": [1.0, 2.0]}, "dimension 2"),
        ({"query": [[1.0, 2.0, 3.0]]}, "flat list"),
        ({"query": ["a", "b", "c"]}, "flat list"),
        ({"query": [1.0, float("nan"), 0.0]}, "finite"),
        ({"query": [1e39, 0.0, 0.0]}, "finite"),
        ({"query": [0.0, 0.0, 0.0]}, "too small for cosine"),
        ({"query": [1.0, 0.0, 0.0], "k": 0}, "k must be"),
        ({"query": [1.0, 0.0, 0.0], "k": 1001}, "k must be"),
        ({"query": [1.0, 0.0, 0.0], "k": True}, "k must be"),
        ({"query": [1.0, 0.0, 0.0], "min_score": float("inf")}, "min_score"),
        ({"query": [1.0, 0.0, 0.0], "min_score": "0.5"}, "min_score"),
    ],
)
def test_bad_search_arguments_raise(arguments: dict[str, Any], message: str) -> None:
    node = Node()
    node.create("c", 3, "cosine")
    node.upsert("c", "a", [1.0, 2.0, 3.0])
    with pytest.raises(VectorQueryError, match=message):
        node.model.search("t1", "ns", "c", **arguments)


def test_search_of_a_missing_collection_raises() -> None:
    with pytest.raises(CollectionNotFoundError):
        VectorsModel().search("t1", "ns", "nope", [1.0])
    with pytest.raises(CollectionNotFoundError):
        VectorsModel().get_vector("t1", "ns", "nope", "a")


# -- tenants ---------------------------------------------------------------------------------------------


def test_tenants_and_namespaces_are_isolated() -> None:
    node = Node()
    node.create("c", 2, "dot", tenant="t1")
    node.create("c", 3, "cosine", tenant="t2")  # same name, another tenant: its own config
    node.create("c", 2, "dot", tenant="t1", namespace="other")
    node.upsert("c", "mine", [1.0, 0.0], {"owner": "t1"}, tenant="t1")
    node.upsert("c", "theirs", [1.0, 0.0, 0.0], {"owner": "t2"}, tenant="t2")
    node.upsert("c", "elsewhere", [1.0, 0.0], tenant="t1", namespace="other")
    assert [hit.id for hit in node.model.search("t1", "ns", "c", [1.0, 0.0], k=10)] == ["mine"]
    assert [hit.id for hit in node.model.search("t2", "ns", "c", [1.0, 0.0, 0.0], k=10)] == ["theirs"]
    assert node.model.search("t1", "ns", "c", [1.0, 0.0], filter={"owner": "t2"}) == []
    assert node.model.get_vector("t1", "ns", "c", "theirs") is None
    with pytest.raises(CollectionNotFoundError):
        node.model.search("t3", "ns", "c", [1.0, 0.0])
    with pytest.raises(Rejected) as caught:
        node.upsert("c", "x", [1.0, 0.0], tenant="t3")
    assert caught.value.reason == "not_found"
    assert [info.count for info in node.model.collections("t1", "ns")] == [1]
    assert [info.dimension for info in node.model.collections("t2", "ns")] == [3]


# -- determinism: rebuild, pickle, digest -----------------------------------------------------------------


def _history(node: Node, seed: int) -> None:
    """A mixed history over three metrics: creates, upserts, replacements, deletes and rejections."""
    rng = np.random.default_rng(seed)
    for metric in METRICS:
        node.create(f"c-{metric}", 24, metric)
    for step in range(900):
        metric = METRICS[step % 3]
        vector_id = f"id-{int(rng.integers(0, 250)):03d}"
        roll = rng.random()
        try:
            if roll < 0.2:
                node.delete(f"c-{metric}", vector_id)
            elif roll < 0.22:
                node.upsert(f"c-{metric}", vector_id, rng.standard_normal(23))  # wrong dimension: rejected
            else:
                node.upsert(f"c-{metric}", vector_id, rng.standard_normal(24), {"g": int(rng.integers(0, 5))})
        except Rejected:
            pass


def _answers(model: VectorsModel) -> list[list[tuple[str, float]]]:
    rng = np.random.default_rng(99)
    answers = []
    for metric, spec in itertools.product(METRICS, (None, {"g": 2}, {"g": {"$in": [0, 4]}})):
        for _ in range(3):
            query = rng.standard_normal(24).astype(F32)
            hits = model.search("t1", "ns", f"c-{metric}", query, k=20, filter=spec)
            answers.append([(hit.id, hit.score) for hit in hits])
    return answers


def test_rebuild_and_pickle_give_equal_digests_and_bit_identical_scores() -> None:
    node = Node()
    _history(node, seed=1)
    digest, answers = node.model.digest(), _answers(node.model)
    rebuilt = node.rebuild()
    restored = pickle.loads(pickle.dumps(node.model, protocol=pickle.HIGHEST_PROTOCOL))
    for other in (rebuilt, restored):
        assert other.digest() == digest
        assert _answers(other) == answers  # exact float equality, ids and order
    for metric in METRICS:
        live = node.model.collection_info("t1", "ns", f"c-{metric}")
        assert rebuilt.collection_info("t1", "ns", f"c-{metric}").count == live.count
        assert restored.collection_info("t1", "ns", f"c-{metric}").capacity == live.capacity
    node.upsert("c-dot", "new-one", np.ones(24))
    assert node.model.digest() != digest
    restored_after = pickle.loads(pickle.dumps(node.model))
    assert restored_after.digest() == node.model.digest() == node.rebuild().digest()


def test_digest_depends_on_content_not_on_history() -> None:
    first, second = Node(), Node()
    for node in (first, second):
        node.create("c", 2, "dot")
    first.upsert("c", "a", [1.0, 2.0], {"x": 1, "y": 2})
    first.upsert("c", "b", [3.0, 4.0])
    second.upsert("c", "b", [3.0, 4.0])
    second.upsert("c", "gone", [5.0, 6.0])
    second.upsert("c", "a", [9.0, 9.0])
    second.upsert("c", "a", [1.0, 2.0], {"y": 2, "x": 1})
    second.delete("c", "gone")
    assert first.model.digest() == second.model.digest()
    second.upsert("c", "a", [1.0, 2.0], {"x": 1})
    assert first.model.digest() != second.model.digest()
    assert VectorsModel().digest() == VectorsModel().digest()


def test_search_reads_do_not_change_the_digest() -> None:
    node = Node()
    _history(node, seed=2)
    digest = node.model.digest()
    _answers(node.model)
    node.model.search("t1", "ns", "c-cosine", np.ones(24), filter={"new.path": {"$exists": True}})
    assert node.model.digest() == digest
    assert pickle.loads(pickle.dumps(node.model)).digest() == digest


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def test_equal_logs_on_two_partitions_in_any_interleaving_give_equal_digests() -> None:
    left, right = Node(), Node()
    left.create("c", 4, "cosine", namespace="n1")
    left.create("c", 4, "cosine", namespace="n2")
    rng = np.random.default_rng(4)
    for index in range(60):
        left.upsert("c", f"v{index}", rng.standard_normal(4), {"i": index}, namespace=f"n{index % 2 + 1}")
    by_namespace = {
        "n1": [e for e in left.log if e.namespace == "n1"],
        "n2": [e for e in left.log if e.namespace == "n2"],
    }
    interleaved: list[Envelope] = []
    for one, two in itertools.zip_longest(_chunks(by_namespace["n2"], 7), _chunks(by_namespace["n1"], 3)):
        interleaved += [*(one or ()), *(two or ())]
    right.log = interleaved
    assert right.rebuild().digest() == left.model.digest()
