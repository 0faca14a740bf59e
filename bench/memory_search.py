"""Memory add throughput and search latency, beside the local stack an agent-memory library would use.

agentlog: durable `memory.add` through a node (embedded file log, `fsync=always`), 16 in-process
clients, vectors precomputed (dim 384); then vector, lexical and hybrid search (k = 10) over N
memories of synthetic text. The peers, in the same run on the same data:

- add: SQLite in WAL mode with `synchronous=FULL`, a row (content + float32 blob) and an FTS5 row
  per memory, one transaction per add and per batch of 100;
- search: SQLite FTS5 (`ORDER BY bm25(t) LIMIT 100`) for the lexical leg, a numpy exact scan
  (`X @ q`, argpartition) or faiss `IndexFlatIP` for the vector leg, and the same reciprocal rank
  fusion for hybrid; qdrant-client in local mode for the vector leg where it is installed.

mem0's library itself is not run: its `add` calls an LLM to extract facts and its search an
embedding provider; run offline it reduces to exactly this local stack (a vector store, SQLite).

    python bench/memory_search.py --sizes 10000,100000 --queries 200
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

# One thread everywhere (one query at a time, as an agent asks): set before numpy and faiss load.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
for path in (str(BENCH), str(REPO)):
    if path not in sys.path:
        sys.path.insert(0, path)

import _common  # noqa: E402

from commands import (  # noqa: E402
    Caller,
    MemoryAdd,
    MemoryIndex,
    embedding_bytes,
    stamp,
)
from projections.memories import MemoriesModel, MemoryFilter  # noqa: E402
from projections.memory_search import APPROXIMATE_MIN_ROWS, HYBRID_DEPTH_MIN, RRF_K, search  # noqa: E402
from query_api.node.memory_index import default_lists, sample_vectors, train_centroids  # noqa: E402

#: Lists an approximate query visits.
NPROBE = 16
#: Lines reporting the approximate leg's recall, printed after the tables.
RECALLS: list[str] = []
from projections.model import ApplyContext  # noqa: E402

DIM = 384
K = 10
VOCABULARY = 5_000
CALLER = Caller(tenant="bench", agent_id="bench")


# ----------------------------------------------------------------------------------- data


CLUSTERS = 1_000


def clustered(count: int, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Unit vectors around 1,000 centres (noise of half a centre's norm), as embeddings of topics are."""
    centres = np.random.default_rng(0).standard_normal((CLUSTERS, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, CLUSTERS, count)]
    vectors += 0.5 * rng.standard_normal((count, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def dataset(count: int, seed: int) -> tuple[list[str], npt.NDArray[np.float32]]:
    """`count` texts of 6-20 Zipf-distributed words and clustered unit float32 vectors."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(VOCABULARY)]
    weights = 1.0 / np.arange(1, VOCABULARY + 1)
    weights /= weights.sum()
    lengths = rng.integers(6, 21, count)
    drawn = rng.choice(VOCABULARY, size=int(lengths.sum()), p=weights)
    texts, start = [], 0
    for length in lengths.tolist():
        texts.append(" ".join(words[i] for i in drawn[start : start + length]))
        start += length
    return texts, clustered(count, rng)


def queries(count: int, seed: int) -> tuple[list[str], npt.NDArray[np.float32]]:
    """Query texts of 3-5 words (from the middle of the vocabulary) and query vectors."""
    rng = np.random.default_rng(seed)
    texts = [" ".join(f"w{i}" for i in rng.integers(5, 2_000, rng.integers(3, 6))) for _ in range(count)]
    return texts, clustered(count, rng)


def timed(function: Callable[[], Any], rounds: int) -> list[float]:
    """Milliseconds of each of `rounds` calls."""
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        out.append((time.perf_counter() - started) * 1000)
    return out


def summary(latencies: list[float]) -> dict[str, float]:
    """p50/p95/p99 in ms."""
    return {f"p{q}": _common.percentile(latencies, q) for q in (50, 95, 99)}


# ----------------------------------------------------------------------------------- add


async def agentlog_add(
    root: Path, texts: list[str], vectors: npt.NDArray[np.float32], clients: int, batch: int
) -> float:
    """Durable adds/s through a node's execute path (batch 1) or its producer + apply wait (batch > 1)."""
    from query_api.node.node import Node
    from query_api.settings import Settings

    settings = Settings(log=f"file://{root}", fsync="always", snapshot_every=0, sweep_interval_ms=0, processors="off")
    node = await Node.start(settings)
    try:
        envelopes = [
            stamp(MemoryAdd(content=t, embedding=embedding_bytes(v), model_id="bench"), CALLER, namespace=f"ns{i % 16}")
            for i, (t, v) in enumerate(zip(texts, vectors, strict=True))
        ]
        chunks = [envelopes[i::clients] for i in range(clients)]
        started = time.perf_counter()

        async def client(mine: list[Any]) -> None:
            if batch == 1:
                for envelope in mine:
                    result = await node.execute(envelope)
                    if result.outcome.status != "applied":
                        raise RuntimeError(result.outcome)
                return
            for start in range(0, len(mine), batch):
                submitted = await node.producer.submit_many(mine[start : start + batch])
                last = submitted[-1]
                await node.engine.wait_for({last.partition: last.offset + 1}, 30)

        await asyncio.gather(*(client(chunk) for chunk in chunks))
        elapsed = time.perf_counter() - started
        model = node.state.model("memories")
        assert isinstance(model, MemoriesModel)
        stored = sum(space.count for space in model._spaces.values())
        if stored != len(texts):
            raise RuntimeError(f"{stored} memories stored of {len(texts)}")
        return len(texts) / elapsed
    finally:
        await node.stop()


def sqlite_add(root: Path, texts: list[str], vectors: npt.NDArray[np.float32], batch: int) -> float:
    """Durable adds/s into SQLite (WAL, synchronous=FULL): a row with the vector blob plus an FTS5 row."""
    connection = sqlite3.connect(root / "memories.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, content TEXT, vector BLOB)")
    connection.execute("CREATE VIRTUAL TABLE t USING fts5(content)")
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        connection.execute("BEGIN")
        for i in range(start, min(start + batch, len(texts))):
            connection.execute("INSERT INTO m VALUES (?, ?, ?)", (i + 1, texts[i], vectors[i].tobytes()))
            connection.execute("INSERT INTO t (rowid, content) VALUES (?, ?)", (i + 1, texts[i]))
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return len(texts) / elapsed


# ----------------------------------------------------------------------------------- search


def agentlog_model(texts: list[str], vectors: npt.NDArray[np.float32]) -> MemoriesModel:
    """The memories model with every memory applied (as the engine would, without the log around it)."""
    model = MemoriesModel()
    for offset, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
        command = MemoryAdd(content=text, embedding=embedding_bytes(vector), model_id="bench")
        model.apply(ApplyContext(stamp(command, CALLER, namespace="bench"), 0, offset, 1_000 + offset))
    return model


def rrf(*legs: list[int]) -> list[int]:
    """Reciprocal rank fusion of ranked id lists, ties by id (as agentlog's)."""
    fused: dict[int, float] = {}
    for leg in legs:
        for rank, item in enumerate(leg, 1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(fused, key=lambda item: (-fused[item], item))[:K]


class PeerStack:
    """SQLite FTS5 + a numpy (or faiss) exact scan + RRF in Python."""

    def __init__(self, texts: list[str], vectors: npt.NDArray[np.float32]) -> None:
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE VIRTUAL TABLE t USING fts5(content)")
        self.db.executemany("INSERT INTO t (rowid, content) VALUES (?, ?)", ((i + 1, t) for i, t in enumerate(texts)))
        self.matrix = np.ascontiguousarray(vectors)
        self.faiss: Any = None
        try:
            import faiss

            faiss.omp_set_num_threads(1)
            self.faiss = faiss.IndexFlatIP(DIM)
            self.faiss.add(self.matrix)
        except ImportError:
            pass

    def lexical(self, text: str, depth: int) -> list[int]:
        match = " OR ".join('"' + word.replace('"', '""') + '"' for word in text.split())
        rows = self.db.execute(
            "SELECT rowid FROM t WHERE t MATCH ? ORDER BY bm25(t), rowid LIMIT ?", (match, depth)
        ).fetchall()
        return [row[0] for row in rows]

    def vector_numpy(self, query: npt.NDArray[np.float32], depth: int) -> list[int]:
        scores = self.matrix @ (query / np.linalg.norm(query))
        top = np.argpartition(-scores, depth)[:depth]
        return [int(i) + 1 for i in top[np.argsort(-scores[top], kind="stable")]]

    def vector_faiss(self, query: npt.NDArray[np.float32], depth: int) -> list[int]:
        unit = (query / np.linalg.norm(query)).reshape(1, -1).astype(np.float32)
        _, ids = self.faiss.search(unit, depth)
        return [int(i) + 1 for i in ids[0]]

    def hybrid(self, text: str, query: npt.NDArray[np.float32], vector: Callable[..., list[int]]) -> list[int]:
        return rrf(vector(query, HYBRID_DEPTH_MIN), self.lexical(text, HYBRID_DEPTH_MIN))


def qdrant_vector(vectors: npt.NDArray[np.float32]) -> Callable[[npt.NDArray[np.float32]], Any] | None:
    """A qdrant-client local-mode (in-memory) collection's search, or None when qdrant-client is absent."""
    try:
        from qdrant_client import QdrantClient, models
    except ImportError:
        return None
    warnings.filterwarnings("ignore", message="Local mode is not recommended", category=UserWarning)
    client = QdrantClient(location=":memory:")
    client.create_collection("m", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
    for start in range(0, len(vectors), 1_000):
        block = vectors[start : start + 1_000]
        client.upsert("m", models.Batch(ids=list(range(start + 1, start + 1 + len(block))), vectors=block.tolist()))

    def query(vector: npt.NDArray[np.float32]) -> Any:
        return client.query_points("m", query=vector.tolist(), limit=K)

    return query


def search_rows(size: int, query_count: int, seed: int) -> list[dict[str, object]]:
    """p50/p95/p99 of each mode for agentlog and the peers at `size` memories."""
    texts, vectors = dataset(size, seed)
    query_texts, query_vectors = queries(query_count, seed + 1)
    built = time.perf_counter()
    model = agentlog_model(texts, vectors)
    build_s = time.perf_counter() - built
    space = model.space("bench", "bench")
    peer = PeerStack(texts, vectors)
    qdrant = qdrant_vector(vectors) if size <= 100_000 else None
    where = MemoryFilter()
    rows: list[dict[str, object]] = []

    def cycle(function: Callable[[int], Any]) -> list[float]:
        for i in range(min(20, query_count)):  # warm-up
            function(i)
        return [timed(lambda i=i: function(i), 1)[0] for i in range(query_count)]

    def agentlog(mode: str, exact: bool = True) -> Callable[[int], Any]:
        def run(i: int) -> Any:
            return search(
                space,
                where,
                mode=mode,
                text=query_texts[i],
                vector=query_vectors[i],
                k=K,
                exact=exact,
                nprobe=NPROBE,  # type: ignore[arg-type]
            )

        return run

    cases: list[tuple[str, str, Callable[[int], Any]]] = [
        ("vector", "agentlog", agentlog("vector")),
        ("vector", "numpy X@q", lambda i: peer.vector_numpy(query_vectors[i], K)),
        ("lexical", "agentlog", agentlog("lexical")),
        ("lexical", "SQLite FTS5", lambda i: peer.lexical(query_texts[i], K)),
        ("hybrid", "agentlog", agentlog("hybrid")),
        ("hybrid", "FTS5 + numpy + RRF", lambda i: peer.hybrid(query_texts[i], query_vectors[i], peer.vector_numpy)),
    ]
    if peer.faiss is not None:
        cases.insert(2, ("vector", "faiss IndexFlatIP", lambda i: peer.vector_faiss(query_vectors[i], K)))
        cases.append(
            ("hybrid", "FTS5 + faiss + RRF", lambda i: peer.hybrid(query_texts[i], query_vectors[i], peer.vector_faiss))
        )
    if qdrant is not None:
        cases.insert(3, ("vector", "qdrant-client local", lambda i: qdrant(query_vectors[i])))
    if size > APPROXIMATE_MIN_ROWS:
        trained = time.perf_counter()
        lists = default_lists(size)
        centroids = train_centroids(sample_vectors(space, 100_000), lists)
        command = MemoryIndex(lists=lists, centroids=centroids.astype("<f2").tobytes(), model_id="bench")
        model.apply(ApplyContext(stamp(command, CALLER, namespace="bench"), 0, size, 1_000 + size))
        space.ensure_lists()
        print(f"IVF of {lists} lists trained and assigned in {time.perf_counter() - trained:.1f} s", file=sys.stderr)
        ivf = f"agentlog IVF {NPROBE}/{lists} lists"
        cases.insert(1, ("vector", ivf, agentlog("vector", exact=False)))
        cases.append(("hybrid", ivf, agentlog("hybrid", exact=False)))
        recall = approximate_recall(space, query_vectors)
        print(f"recall@{K} of the IVF vector leg vs exact at {size:,}: {recall:.3f}", file=sys.stderr)
        RECALLS.append(f"recall@{K} of {ivf} vs exact at {size:,} memories: {recall:.3f}")
    baseline: dict[str, float] = {}
    for mode, system, function in cases:
        stats = summary(cycle(function))
        if system == "agentlog":
            baseline[mode] = stats["p95"]
        ours = system == "agentlog" or system.startswith("agentlog IVF")
        rows.append(
            {
                "memories": size,
                "mode": mode,
                "system": system,
                "p50 ms": stats["p50"],
                "p95 ms": stats["p95"],
                "p99 ms": stats["p99"],
                "peer p95 / agentlog p95": "" if ours else stats["p95"] / baseline[mode],
            }
        )
    check_agreement(space, peer, query_texts, query_vectors)
    print(f"built {size:,} memories in {build_s:.1f} s", file=sys.stderr)
    return rows


def approximate_recall(space: Any, vectors: npt.NDArray[np.float32]) -> float:
    """The mean fraction of the exact top k that the approximate vector leg finds."""
    found = 0
    for vector in vectors:
        exact = {hit.memory.id for hit in search(space, MemoryFilter(), mode="vector", vector=vector, k=K, exact=True)}
        approximate = search(space, MemoryFilter(), mode="vector", vector=vector, k=K, nprobe=NPROBE)
        found += len(exact & {hit.memory.id for hit in approximate})
    return found / (K * len(vectors))


def check_agreement(space: Any, peer: PeerStack, texts: list[str], vectors: npt.NDArray[np.float32]) -> None:
    """The vector legs agree with numpy on the top 10 (same data, exact search), or the run stops."""
    for i in range(min(20, len(texts))):
        ours = [
            hit.memory.id for hit in search(space, MemoryFilter(), mode="vector", vector=vectors[i], k=K, exact=True)
        ]
        theirs = peer.vector_numpy(vectors[i], K)
        if len(set(ours) & set(theirs)) < K - 1:  # float32 rounding may swap a near-tie at the 10th place
            raise RuntimeError(f"vector results differ from the numpy scan: {ours} vs {theirs}")


# ----------------------------------------------------------------------------------- main


def main() -> None:
    """Run the benchmark and print machine, versions and tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="Comma-separated memory counts for search.")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--adds", type=int, default=20_000, help="Memories added in the throughput run (0: none).")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.sizes.split(",")]

    with tempfile.TemporaryDirectory(prefix="agentlog-bench-", dir=os.environ.get("AGENTLOG_BENCH_DIR")) as tmp:
        root = Path(tmp)
        versions = {
            "Python": sys.version.split()[0],
            "numpy": np.__version__,
            "SQLite": sqlite3.sqlite_version,
            "faiss-cpu": _common.package_version("faiss-cpu"),
            "qdrant-client": _common.package_version("qdrant-client"),
            "pydantic": _common.package_version("pydantic"),
        }
        machine = _common.machine_info(root) | {"threads": "1 (OMP/OPENBLAS/MKL_NUM_THREADS=1, faiss 1)"}
        _common.print_facts({"Machine": machine, "Versions": versions})
        words = f"synthetic texts of 6-20 Zipf words over {VOCABULARY:,}"
        print(f"**Dataset**: {words}; unit float32 vectors around {CLUSTERS:,} centres, dim {DIM}")
        print()

        texts, vectors = dataset(arguments.adds, arguments.seed)
        add_rows: list[dict[str, object]] = []
        for batch in (1, 100) if arguments.adds else ():
            ours = asyncio.run(agentlog_add(root / f"log-{batch}", texts, vectors, arguments.clients, batch))
            (root / f"sqlite-{batch}").mkdir()
            theirs = sqlite_add(root / f"sqlite-{batch}", texts, vectors, batch)
            add_rows.append(
                {
                    "batch": batch,
                    "agentlog clients": arguments.clients,
                    "agentlog adds/s": ours,
                    "SQLite WAL+FTS5 adds/s (one writer)": theirs,
                    "ratio": ours / theirs,
                }
            )
        if add_rows:
            print("Durable adds (fsync on every acknowledged write), vectors precomputed:")
            print()
            print(_common.markdown_table(add_rows, list(add_rows[0])))
            print()

        rows = []
        for size in sizes:
            rows.extend(search_rows(size, arguments.queries, arguments.seed + size))
        print(f"Search, k = {K}, one query at a time, {arguments.queries} queries per case (latency in ms):")
        print()
        print(_common.markdown_table(rows, list(rows[0])))
        hybrid = [row for row in rows if row["mode"] == "hybrid" and str(row["system"]).startswith("agentlog")]
        for row in hybrid:
            target = 10.0 if row["memories"] == 100_000 else (30.0 if row["memories"] == 1_000_000 else math.nan)
            if not math.isnan(target):
                met = "met" if float(str(row["p95 ms"])) <= target else "not met"
                where = f"{row['system']} hybrid p95 at {row['memories']:,}"
                print(f"\n{where}: {row['p95 ms']:.2f} ms (target ≤ {target:g} ms: {met})")
        for line in RECALLS:
            print(f"\n{line}")
        print(f"\nmedian of agentlog hybrid p50s: {statistics.median(float(str(r['p50 ms'])) for r in hybrid):.2f} ms")


if __name__ == "__main__":
    main()
