"""The embedder interface and its error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["Embedder", "EmbedderError", "check_output"]


class EmbedderError(RuntimeError):
    """An embedder could not embed (unreachable service, bad answer, library missing)."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into float32 vectors of a fixed dimension; `model_id` names the model exactly."""

    @property
    def model_id(self) -> str:
        """The model's id, recorded beside every vector it made."""
        ...

    @property
    def dim(self) -> int:
        """The dimension of the vectors."""
        ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One row per text, float32, shape (len(texts), dim)."""
        ...


def check_output(vectors: npt.ArrayLike, count: int, dim: int, who: str) -> npt.NDArray[np.float32]:
    """`vectors` as a C-contiguous float32 (count, dim) array of finite values; EmbedderError if not."""
    array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if array.shape != (count, dim):
        raise EmbedderError(f"{who} returned shape {array.shape}, expected {(count, dim)}")
    if not bool(np.isfinite(array).all()):
        raise EmbedderError(f"{who} returned non-finite values")
    return array
