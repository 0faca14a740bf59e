"""Adapters for fastembed and sentence-transformers, usable only where the user installed them."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from agentlog.embedders.base import EmbedderError, check_output

__all__ = ["FastEmbedEmbedder", "SentenceTransformerEmbedder", "available"]


def available(module: str) -> bool:
    """True if `module` can be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


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
