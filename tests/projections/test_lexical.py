"""The BM25 index: scores match the formula, and any add/remove sequence ranks exactly as a rebuild."""

from __future__ import annotations

import math
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.lexical import BM25_B, BM25_K1, LexicalIndex, tokenize

WORDS = ("alpha", "beta", "gamma", "delta", "rust", "python", "deploy", "the", "a", "x")


def reference_scores(documents: dict[int, str], query: str) -> dict[int, float]:
    """BM25 computed term by term from scratch, in plain Python floats."""
    tokens = {doc: tokenize(text) for doc, text in documents.items()}
    count = len(tokens)
    average = sum(len(t) for t in tokens.values()) / count
    result = {}
    for doc, words in tokens.items():
        counts = Counter(words)
        score = 0.0
        for term in sorted(set(tokenize(query))):
            df = sum(1 for other in tokens.values() if term in other)
            if not counts[term]:
                continue
            idf = math.log(1 + (count - df + 0.5) / (df + 0.5))
            tf = counts[term]
            score += idf * tf * (BM25_K1 + 1) / (tf + BM25_K1 * (1 - BM25_B + BM25_B * len(words) / average))
        if score > 0:
            result[doc] = score
    return result


def test_tokens_are_lowercased_word_runs() -> None:
    assert tokenize("User prefers Rust, not C++! café") == ["user", "prefers", "rust", "not", "c", "café"]


def test_scores_match_the_formula() -> None:
    documents = {1: "rust is fast", 2: "python is easy and python is popular", 3: "deploy with rust and python", 4: ""}
    index = LexicalIndex()
    for doc, text in documents.items():
        index.add(doc, text)
    for query in ("rust", "python rust", "is", "missing", "Python, PYTHON"):
        expected = reference_scores(documents, query)
        found = dict(index.search(query, 10))
        assert found.keys() == expected.keys()
        for doc, score in expected.items():
            assert math.isclose(found[doc], score, rel_tol=1e-12), (query, doc)
    assert [doc for doc, _ in index.search("python", 10)] == [2, 3]


def test_ties_rank_by_document_number() -> None:
    index = LexicalIndex()
    for doc in (5, 2, 9):
        index.add(doc, "same words here")
    assert [doc for doc, _ in index.search("words", 10)] == [2, 5, 9]


operations = st.lists(
    st.tuples(st.integers(1, 12), st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join)), max_size=60
)


@settings(max_examples=150, deadline=None)
@given(operations, st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join), min_size=1))
def test_incremental_index_equals_a_rebuild(steps: list[tuple[int, str]], queries: list[str]) -> None:
    """Each step adds a document, or removes it when present (a re-add later gives new text)."""
    index = LexicalIndex()
    live: dict[int, str] = {}
    for doc, text in steps:
        if doc in live:
            index.remove(doc, live.pop(doc))
        else:
            index.add(doc, text)
            live[doc] = text
    forward, backward = LexicalIndex(), LexicalIndex()
    for doc in sorted(live):
        forward.add(doc, live[doc])
    for doc in sorted(live, reverse=True):
        backward.add(doc, live[doc])
    assert index.statistics() == forward.statistics() == backward.statistics()
    for query in queries:
        assert (index.scores(query, 13) == forward.scores(query, 13)).all()
        assert index.search(query, 5) == forward.search(query, 5) == backward.search(query, 5)
