"""Vector commands: create a collection, upsert and delete vectors.

Embeddings travel as float32 little-endian bytes. In Python a `VectorUpsert.embedding` is `bytes`;
it accepts bytes (float32 LE), a 1-D numpy array or a list of numbers (rounded once to float32), or
a base64 string of the bytes. In JSON (the record encoding and `model_dump(mode="json")`) it is the
standard base64 (RFC 4648, padded) of the bytes, so embeddings survive encode/decode bit-exactly
and are never recomputed on replay. Values must be finite.
"""

from __future__ import annotations

import binascii
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field, FieldSerializationInfo, PlainValidator, field_serializer
from pydantic_core import PydanticCustomError

from commands import limits
from commands.errors import CommandError
from commands.fields import Id, Key, Metadata, ScopedCommand, at_most

__all__ = [
    "METRICS",
    "CollectionCreate",
    "Embedding",
    "Metric",
    "VectorDelete",
    "VectorUpsert",
    "embedding_bytes",
    "embedding_from_base64",
    "embedding_to_base64",
]

#: How a collection compares vectors.
Metric = Literal["cosine", "dot", "euclidean"]
#: Every `Metric`, sorted.
METRICS: tuple[str, ...] = ("cosine", "dot", "euclidean")

_F32 = np.dtype("<f4")


def embedding_from_base64(text: str) -> bytes:
    """Decode the base64 form of an embedding (strict RFC 4648, padded) to its float32 LE bytes."""
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise CommandError("invalid", "embedding string is not strict base64") from None


def embedding_to_base64(data: bytes) -> str:
    """The base64 form of float32 LE embedding bytes, as written in JSON."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def embedding_bytes(value: Any) -> bytes:
    """Float32 LE bytes from bytes, base64 text, a 1-D numeric numpy array or a list of numbers; checked.

    Raises CommandError `invalid` (not numbers, not finite, empty, ragged bytes) or `too_large`.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
    elif isinstance(value, str):
        data = embedding_from_base64(value)
    elif isinstance(value, list | np.ndarray):
        array = np.asarray(value)
        if array.ndim != 1 or array.dtype.kind not in "iuf":
            raise CommandError("invalid", "embedding must be a flat list of numbers")
        with np.errstate(over="ignore", invalid="ignore"):
            array32 = array.astype(_F32)
        data = array32.tobytes()
    else:
        raise CommandError("invalid", "embedding must be a list of numbers, float32 bytes or base64 text")
    if len(data) % 4:
        raise CommandError("invalid", "embedding bytes must be a whole number of float32 values")
    dimension = len(data) // 4
    if dimension == 0:
        raise CommandError("invalid", "embedding must not be empty")
    if dimension > limits.MAX_VECTOR_DIMENSION:
        raise CommandError("too_large", f"embedding dimension {dimension} exceeds {limits.MAX_VECTOR_DIMENSION}")
    if not bool(np.isfinite(np.frombuffer(data, dtype=_F32)).all()):
        raise CommandError("invalid", "embedding values must be finite float32 numbers")
    return data


def _validate_embedding(value: Any) -> bytes:
    try:
        return embedding_bytes(value)
    except CommandError as exc:
        raise PydanticCustomError(exc.code, exc.detail) from None


#: Float32 LE embedding bytes (accepts the inputs `embedding_bytes` does).
Embedding = Annotated[bytes, PlainValidator(_validate_embedding, json_schema_input_type=list[float] | str)]


class CollectionCreate(ScopedCommand):
    """`collection.create`: a vector collection of fixed `dimension` (≤ 4,096) and `metric` in the namespace."""

    type: Literal["collection.create"] = "collection.create"
    name: Id
    dimension: Annotated[int, Field(ge=1), at_most(limits.MAX_VECTOR_DIMENSION, "dimension")]
    metric: Metric = "cosine"


class VectorUpsert(ScopedCommand):
    """`vector.upsert`: put vector `id` of `collection` with its embedding and metadata."""

    type: Literal["vector.upsert"] = "vector.upsert"
    collection: Id
    id: Key
    embedding: Embedding
    metadata: Metadata | None = None

    @field_serializer("embedding")
    def _embedding_json(self, value: bytes, info: FieldSerializationInfo) -> bytes | str:
        return embedding_to_base64(value) if info.mode_is_json() else value

    @property
    def dimension(self) -> int:
        """The number of float32 values in the embedding."""
        return len(self.embedding) // 4

    def vector(self) -> npt.NDArray[np.float32]:
        """The embedding as a read-only float32 numpy array (a view of the bytes, no copy)."""
        return np.frombuffer(self.embedding, dtype=_F32)


class VectorDelete(ScopedCommand):
    """`vector.delete`: remove vector `id` from `collection`."""

    type: Literal["vector.delete"] = "vector.delete"
    collection: Id
    id: Key
