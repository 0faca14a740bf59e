"""Memory commands (DESIGN §9): add, update, invalidate (forget) and merge memories in a namespace.

Memories are numbered per `(tenant, namespace)` from 1 in apply order, so a command names an
existing memory by that number. Everything non-deterministic happened before append: an embedding
travels in the command (float32 LE bytes, base64 in JSON, as in `commands.vectors`) with the id of
the model that made it; replay never embeds. World time (`valid_from`, `valid_until`) is in epoch
milliseconds; a missing `valid_from` means "from the log time of the add".
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, FieldSerializationInfo, PlainValidator, field_serializer, model_validator
from pydantic_core import PydanticCustomError

from commands import limits
from commands.errors import CommandError
from commands.fields import Id, Metadata, ScopedCommand
from commands.vectors import Embedding, embedding_from_base64, embedding_to_base64

__all__ = [
    "MAX_CONTENT_CHARS",
    "MAX_INDEX_LISTS",
    "MAX_MERGE_SOURCES",
    "MAX_REASON_CHARS",
    "MAX_TAGS",
    "MEMORY_TYPES",
    "MemoryAdd",
    "MemoryId",
    "MemoryIndex",
    "MemoryInvalidate",
    "MemoryMerge",
    "MemoryType",
    "MemoryUpdate",
    "Tag",
]

#: Longest memory content, in characters.
MAX_CONTENT_CHARS = 32_768
#: Longest reason of a change, in characters.
MAX_REASON_CHARS = 1_024
#: Most tags on one memory.
MAX_TAGS = 64
#: Most memories one merge folds into its target.
MAX_MERGE_SOURCES = 100
#: Most lists (centroids) of a namespace's vector index (the command must also fit in 1 MiB).
MAX_INDEX_LISTS = 4_096

#: What kind of memory it is.
MemoryType = Literal["fact", "episodic", "procedural", "semantic"]
#: Every `MemoryType`, sorted.
MEMORY_TYPES: tuple[str, ...] = ("episodic", "fact", "procedural", "semantic")

#: A memory's number in its namespace (from 1).
MemoryId = Annotated[int, Field(ge=1, le=limits.MAX_INT)]
#: A tag: a short id-like word.
Tag = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@/-]+$")]
_Content = Annotated[str, Field(min_length=1, max_length=MAX_CONTENT_CHARS)]
_Reason = Annotated[str, Field(max_length=MAX_REASON_CHARS)]
_Millis = Annotated[int, Field(ge=0, le=limits.MAX_INT)]
_Confidence = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
_Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]
_ModelId = Annotated[str, Field(min_length=1, max_length=256)]


class _EmbeddingField(ScopedCommand):
    """A command that may carry an embedding and the id of the model that made it."""

    embedding: Embedding | None = None
    model_id: _ModelId | None = None

    @field_serializer("embedding")
    def _embedding_json(self, value: bytes | None, info: FieldSerializationInfo) -> bytes | str | None:
        if value is None:
            return None
        return embedding_to_base64(value) if info.mode_is_json() else value

    @model_validator(mode="after")
    def _model_named(self) -> _EmbeddingField:
        if (self.embedding is None) != (self.model_id is None):
            raise ValueError("embedding and model_id go together: give both or neither")
        return self


class MemoryAdd(_EmbeddingField):
    """`memory.add`: remember `content` in the namespace, with its scope, kind, tags and validity window."""

    type: Literal["memory.add"] = "memory.add"
    content: _Content
    memory_type: MemoryType = "fact"
    user_id: Id | None = None
    agent_id: Id | None = None
    session_id: Id | None = None
    run_id: Id | None = None
    tags: _Tags = Field(default_factory=list)
    metadata: Metadata | None = None
    confidence: _Confidence = 1.0
    source: Annotated[str, Field(min_length=1, max_length=128)] = "manual"
    valid_from: _Millis | None = None
    valid_until: _Millis | None = None
    reason: _Reason | None = None

    @model_validator(mode="after")
    def _window(self) -> MemoryAdd:
        if self.valid_from is not None and self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class MemoryUpdate(_EmbeddingField):
    """`memory.update`: change fields of memory `id`; a new `content` needs a new embedding if it had one."""

    type: Literal["memory.update"] = "memory.update"
    id: MemoryId
    content: _Content | None = None
    memory_type: MemoryType | None = None
    tags: _Tags | None = None
    metadata: Metadata | None = None
    confidence: _Confidence | None = None
    valid_from: _Millis | None = None
    valid_until: _Millis | None = None
    reason: _Reason | None = None


class MemoryInvalidate(ScopedCommand):
    """`memory.invalidate` (forget): memory `id` stops being true at `valid_until` (default: log time)."""

    type: Literal["memory.invalidate"] = "memory.invalidate"
    id: MemoryId
    reason: _Reason | None = None
    valid_until: _Millis | None = None


class MemoryMerge(_EmbeddingField):
    """`memory.merge`: fold memories `ids` into memory `into` (maybe with new content); sources are invalidated."""

    type: Literal["memory.merge"] = "memory.merge"
    ids: Annotated[list[MemoryId], Field(min_length=1, max_length=MAX_MERGE_SOURCES)]
    into: MemoryId
    content: _Content | None = None
    reason: _Reason | None = None

    @model_validator(mode="after")
    def _distinct(self) -> MemoryMerge:
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("ids must be distinct")
        if self.into in self.ids:
            raise ValueError("a memory cannot be merged into itself")
        return self


def _float16_bytes(value: object) -> bytes:
    try:
        data = embedding_from_base64(value) if isinstance(value, str) else value
    except CommandError as exc:
        raise PydanticCustomError(exc.code, exc.detail) from None
    if not isinstance(data, bytes) or not data or len(data) % 2:
        raise PydanticCustomError("invalid", "centroids must be float16 LE bytes (or their base64)")
    return data


class MemoryIndex(ScopedCommand):
    """`memory.index`: an IVF partition of the namespace's vectors, trained at the edge.

    `centroids` holds `lists` rows of the namespace's dimension as float16 LE (base64 in JSON); from
    then on vector searches over many memories visit the lists nearest the query, scored exactly.
    """

    type: Literal["memory.index"] = "memory.index"
    lists: Annotated[int, Field(ge=1, le=MAX_INDEX_LISTS)]
    centroids: Annotated[bytes, PlainValidator(_float16_bytes, json_schema_input_type=str)]
    model_id: _ModelId

    @field_serializer("centroids")
    def _centroids_json(self, value: bytes, info: FieldSerializationInfo) -> bytes | str:
        return embedding_to_base64(value) if info.mode_is_json() else value
