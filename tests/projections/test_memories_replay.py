"""Memories replay: live = rebuild from zero = snapshot + tail, and replay never calls an embedder (invariant 10)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from agentlog.embedders import CachedEmbedder, HashingEmbedder, OpenAIEmbedder
from commands import (
    Caller,
    CommandProducer,
    Envelope,
    MemoryAdd,
    MemoryIndex,
    MemoryInvalidate,
    MemoryMerge,
    MemoryUpdate,
    embedding_bytes,
    stamp,
)
from eventlog.memory import MemoryLog
from projections import memory_search
from projections.catalog import new_state
from projections.engine import Engine
from projections.memories import MemoriesModel, MemoryFilter
from projections.memory_search import search, search_with_plan
from projections.snapshot import list_snapshots, load_snapshot, write_snapshot
from query_api.node.memory_index import sample_vectors, train_centroids

pytestmark = pytest.mark.anyio

PARTITIONS = 4
TENANTS = ("acme", "globex")
NAMESPACES = ("default", "notes", "team:ops")
WORDS = ("tea", "coffee", "deploy", "friday", "rust", "python", "oslo", "bergen", "alice", "bob", "likes", "runs")


def memory_workload(count: int, seed: int, embedder: HashingEmbedder) -> list[Envelope]:
    """Adds (embedded at the edge, before append), updates, forgets and merges; some bound to be rejected."""
    rng = random.Random(seed)
    envelopes: list[Envelope] = []
    added: dict[tuple[str, str], int] = {}
    for index in range(count):
        caller = Caller(tenant=rng.choice(TENANTS), agent_id=f"agent-{rng.randrange(3)}")
        namespace = rng.choice(NAMESPACES)
        known = added.get((caller.tenant, namespace), 0)
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 8)))
        roll = rng.random()
        if roll < 0.55 or known == 0:
            vector = embedding_bytes(embedder.embed([text])[0])
            command: MemoryAdd | MemoryUpdate | MemoryInvalidate | MemoryMerge = MemoryAdd(
                content=text,
                embedding=vector,
                model_id=embedder.model_id,
                user_id=rng.choice(["u1", "u2", None]),
                tags=rng.sample(["a", "b", "c"], rng.randrange(3)),
                metadata={"n": index},
            )
            added[(caller.tenant, namespace)] = known + 1
        elif roll < 0.75:
            vector = embedding_bytes(embedder.embed([text])[0])
            target = rng.randrange(1, known + 2)  # sometimes one that does not exist
            command = MemoryUpdate(id=target, content=text, embedding=vector, model_id=embedder.model_id)
        elif roll < 0.9:
            command = MemoryInvalidate(id=rng.randrange(1, known + 1), reason="outdated")
        else:
            source, target = rng.randrange(1, known + 1), rng.randrange(1, known + 1)
            if source == target:
                continue
            command = MemoryMerge(ids=[source], into=target)
        envelopes.append(stamp(command, caller, namespace=namespace))
    return envelopes


async def feed(log: MemoryLog, envelopes: list[Envelope]) -> None:
    producer = CommandProducer(log, "main")
    for start in range(0, len(envelopes), 100):
        await producer.submit_many(envelopes[start : start + 100])


async def rebuilt(log: MemoryLog, cut: list[int] | None = None) -> Engine:
    engine = Engine(log, "main", new_state(PARTITIONS))
    await engine.catch_up(dict(enumerate(cut)) if cut is not None else None)
    return engine


def searches(model: MemoriesModel, embedder: HashingEmbedder) -> list[list[tuple[int, float]]]:
    """Results of a few searches of every space, for comparing two states."""
    results = []
    query = embedder.embed(["alice likes tea on friday"])[0]
    for tenant in TENANTS:
        for namespace in NAMESPACES:
            space = model.space(tenant, namespace)
            for mode in ("vector", "lexical", "hybrid"):
                hits = search(space, MemoryFilter(), mode=mode, text="alice likes tea", vector=query, k=20)  # type: ignore[arg-type]
                results.append([(hit.memory.id, hit.score) for hit in hits])
            approximate = search(space, MemoryFilter(), mode="vector", vector=query, k=20, nprobe=2)
            results.append([(hit.memory.id, hit.score) for hit in approximate])
    return results


def refuse(*_: object, **__: object) -> np.ndarray:
    """Stands in for every embedder's `embed` during replay: any call fails the test."""
    raise AssertionError("an embedder was called during replay")


async def test_live_rebuild_and_snapshot_tail_agree_with_memories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory_search, "APPROXIMATE_MIN_ROWS", 10)  # searches of "notes" use the index
    embedder = HashingEmbedder(64)
    first, second = memory_workload(1_500, 1, embedder), memory_workload(1_500, 2, embedder)
    # the halves are generated independently: the second's updates and forgets may name memories that do
    # not exist (yet), which the model rejects deterministically
    log = MemoryLog()
    await log.create_topic("main", PARTITIONS)
    live = Engine(log, "main", new_state(PARTITIONS))
    live.start()
    await feed(log, first)
    middle = await log.end_offsets("main")
    assert await live.wait_for(dict(enumerate(middle)), 120)
    # an IVF index trained at the edge from the live state, then adds assigned to it as they apply
    model = live.state.model("memories")
    assert isinstance(model, MemoriesModel)
    space = model.space("acme", "notes")
    assert space is not None
    centroids = train_centroids(sample_vectors(space, 1_000), 8).astype("<f2").tobytes()
    index = MemoryIndex(lists=8, centroids=centroids, model_id=embedder.model_id)
    await feed(log, [stamp(index, Caller(tenant="acme"), namespace="notes")])
    middle = await log.end_offsets("main")
    assert await live.wait_for(dict(enumerate(middle)), 120)
    snapshot = write_snapshot(tmp_path, "main", live.state)
    await feed(log, second)
    end = await log.end_offsets("main")
    assert await live.wait_for(dict(enumerate(end)), 120)
    await live.stop()
    live_model = live.state.model("memories")
    assert isinstance(live_model, MemoriesModel)
    expected_searches = searches(live_model, embedder)
    assert sum(len(r) for r in expected_searches) > 0
    notes = live_model.space("acme", "notes")
    query = embedder.embed(["tea"])[0]
    assert search_with_plan(notes, MemoryFilter(), mode="vector", vector=query, nprobe=2)[1] == 2
    outcomes = {o.status for part in live.state.outcomes for o in part.values()}
    assert outcomes == {"applied", "rejected"}

    calls_before = embedder.calls
    with monkeypatch.context() as patched:
        for cls in (HashingEmbedder, CachedEmbedder, OpenAIEmbedder):
            patched.setattr(cls, "embed", refuse)
        from_zero = await rebuilt(log)
        assert from_zero.state.digests() == live.state.digests()
        at_middle = await rebuilt(log, middle)
        assert at_middle.state.digests()["memories"] == snapshot.digests["memories"]
        [info] = list_snapshots(tmp_path, "main")
        restored = Engine(log, "main", load_snapshot(info, verify_digests=True))
        await restored.catch_up()
        assert restored.state.digests() == live.state.digests()
    assert embedder.calls == calls_before
    for state in (from_zero.state, restored.state):
        model = state.model("memories")
        assert isinstance(model, MemoriesModel)
        assert searches(model, embedder) == expected_searches
