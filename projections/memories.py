"""The memories read model (DESIGN §9): bi-temporal memories per (tenant, namespace), with full history.

- `memory.add` numbers the memory (from 1 per namespace, in apply order); `valid_from` defaults to
  the log time. `memory.update` changes content, kind, tags, metadata, confidence or the validity
  window; a new content of a memory that has an embedding needs a new embedding. `memory.invalidate`
  (forget) sets `valid_until` (default: log time) and marks it invalidated, never deleting it.
  `memory.merge` folds sources into a target: the target takes the union of tags (and new content
  if given); each source is invalidated with `merged_into`.
- Every change appends a history entry: operation, version, old and new content, reason, who
  (`changed_by`: the writer's agent or tool id), when (log time), the command id and changed fields.
- A namespace has one embedding model: its first embedding fixes `model_id` and dimension; an
  embedding of another model or dimension is `invalid`.
- BM25 statistics cover every memory of the namespace, forgotten ones included (a forget changes no
  other memory's score; `valid_at` searches find forgotten memories by their words too).
- Reads: `get`, `history`, `recall` (by scope, tags, kind, validity) here; search in
  `projections.memory_search`. `as_of` (recorded time) is the engine's scratch state; `valid_at`
  (world time) is a filter.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import numpy as np

from commands import CommandError, MemoryAdd, MemoryIndex, MemoryInvalidate, MemoryMerge, MemoryUpdate, canonical_json
from commands.vectors import embedding_to_base64
from projections.memory_space import MAX_NORM, MIN_NORM, MemoryRecord, MemorySpace, sum_of_squares
from projections.model import ApplyContext, ReadModel
from projections.outcome import Rejected

__all__ = ["MemoriesModel", "MemoryFilter", "memory_data"]

_Space = tuple[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class MemoryFilter:
    """What recall and search keep: scope equalities, all of `tags`, and a validity condition.

    `valid_at` (world time, ms) keeps memories true then, invalidated or not; without it only
    active (not invalidated) memories are kept, unless `include_invalidated`.
    """

    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    run_id: str | None = None
    memory_type: str | None = None
    tags: tuple[str, ...] = ()
    valid_at: int | None = None
    include_invalidated: bool = False

    def keeps(self, record: MemoryRecord) -> bool:
        """True if `record` passes this filter."""
        for name in ("user_id", "agent_id", "session_id", "run_id", "memory_type"):
            wanted = getattr(self, name)
            if wanted is not None and getattr(record, name) != wanted:
                return False
        if any(tag not in record.tags for tag in self.tags):
            return False
        if self.valid_at is not None:
            return record.valid_at(self.valid_at)
        return self.include_invalidated or record.active


def memory_data(record: MemoryRecord) -> dict[str, Any]:
    """A record as canonical JSON data (the embedding as base64)."""
    data = record.data()
    if record.embedding is not None:
        data["embedding"] = embedding_to_base64(record.embedding)
    return data


def _writer(context: ApplyContext) -> str | None:
    return context.envelope.agent_id or context.envelope.tool_id


def _entry(
    context: ApplyContext, operation: str, record: MemoryRecord, old: str | None, **extra: Any
) -> dict[str, Any]:
    entry = {
        "operation": operation,
        "version": record.version,
        "old_content": old,
        "new_content": record.content,
        "reason": extra.pop("reason", None),
        "changed_by": _writer(context),
        "at_ms": context.log_time_ms,
        "command_id": context.envelope.command_id,
    }
    entry.update(extra)
    return entry


#: The layout of the memories model's snapshot pieces.
MEMORIES_STATE_VERSION = 1


class MemoriesModel(ReadModel):
    """Memories per (tenant, namespace): add, update, invalidate, merge; get, history, recall."""

    name: ClassVar[str] = "memories"
    command_types: ClassVar[frozenset[str]] = frozenset(
        ("memory.add", "memory.index", "memory.invalidate", "memory.merge", "memory.update")
    )

    def __init__(self) -> None:
        self._spaces: dict[_Space, MemorySpace] = {}

    # -- snapshots: plain data only --

    def snapshot_state(self) -> Iterator[Any]:
        """A version piece, then one piece per space (tenant, namespace, plain data), spaces sorted."""
        yield {"version": MEMORIES_STATE_VERSION}
        for tenant, namespace in sorted(self._spaces):
            yield [tenant, namespace, self._spaces[(tenant, namespace)].snapshot_state()]

    def restore_state(self, pieces: Iterable[Any]) -> None:
        """Replace the (fresh) state with `snapshot_state` pieces; the indexes are rebuilt."""
        parts = iter(pieces)
        head = next(parts, None)
        if not isinstance(head, dict) or head.get("version") != MEMORIES_STATE_VERSION:
            raise ValueError(f"unknown memories state {head!r}")
        self._spaces.clear()
        for tenant, namespace, space in parts:
            self._spaces[(tenant, namespace)] = MemorySpace.restore(space)

    def __getstate__(self) -> dict[str, Any]:
        return {"pieces": list(self.snapshot_state())}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._spaces = {}
        self.restore_state(state["pieces"])

    # -- writes --

    def apply(self, context: ApplyContext) -> dict[str, Any]:
        """Apply a memory command; Rejected changes nothing."""
        envelope = context.envelope
        command = envelope.command
        if envelope.namespace is None:
            raise Rejected("invalid", f"{envelope.type} needs a namespace")
        key = (envelope.tenant, envelope.namespace)
        if isinstance(command, MemoryAdd):
            return self._add(key, command, context)
        space = self._spaces.get(key)
        if isinstance(command, MemoryUpdate):
            return self._update(self._target(space, command.id, key), command, context)
        if isinstance(command, MemoryInvalidate):
            return self._invalidate(self._target(space, command.id, key), command, context)
        if isinstance(command, MemoryMerge):
            return self._merge(self._target(space, command.into, key), command, context)
        if isinstance(command, MemoryIndex):
            return self._index(space, command, key)
        raise Rejected("invalid", f"the memories model does not apply {envelope.type}")

    @staticmethod
    def _target(space: MemorySpace | None, memory_id: int, key: _Space) -> tuple[MemorySpace, MemoryRecord]:
        record = space.get(memory_id) if space is not None else None
        if space is None or record is None:
            raise Rejected("not_found", f"no memory {memory_id} in namespace {key[1]!r}")
        return space, record

    @staticmethod
    def _check_embedding(space: MemorySpace | None, embedding: bytes | None, model_id: str | None) -> None:
        if embedding is None:
            return
        vector = np.frombuffer(embedding, dtype="<f4")
        if (
            space is not None
            and space.model_id is not None
            and (model_id != space.model_id or len(vector) != space.dimension)
        ):
            raise Rejected(
                "invalid",
                f"embedding of model {model_id!r} (dimension {len(vector)}); the namespace uses"
                f" {space.model_id!r} (dimension {space.dimension})",
                model_id=space.model_id,
                dimension=space.dimension,
            )
        norm = math.sqrt(sum_of_squares(vector))
        if not MIN_NORM <= norm <= MAX_NORM:
            raise Rejected("invalid", f"embedding norm {norm:.3g} is outside [{MIN_NORM:g}, {MAX_NORM:g}]")

    @staticmethod
    def _metadata(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
        if metadata is None:
            return None
        try:
            canonical_json(metadata)
        except CommandError as exc:
            raise Rejected("invalid", f"metadata: {exc.detail}") from None
        return metadata

    def _add(self, key: _Space, command: MemoryAdd, context: ApplyContext) -> dict[str, Any]:
        space = self._spaces.get(key)
        self._check_embedding(space, command.embedding, command.model_id)
        valid_from = context.log_time_ms if command.valid_from is None else command.valid_from
        if command.valid_until is not None and command.valid_until <= valid_from:
            raise Rejected("invalid", "valid_until must be after valid_from")
        metadata = self._metadata(command.metadata)
        if space is None:
            space = self._spaces[key] = MemorySpace()
        record = MemoryRecord(
            id=space.count + 1,
            content=command.content,
            memory_type=command.memory_type,
            user_id=command.user_id,
            agent_id=command.agent_id,
            session_id=command.session_id,
            run_id=command.run_id,
            tags=sorted(set(command.tags)),
            metadata=metadata,
            confidence=command.confidence,
            source=command.source,
            embedding=command.embedding,
            model_id=command.model_id,
            valid_from=valid_from,
            valid_until=command.valid_until,
            created_at_ms=context.log_time_ms,
            updated_at_ms=context.log_time_ms,
            created_by=_writer(context),
            version=1,
        )
        space.insert(record, _entry(context, "add", record, None, reason=command.reason, changes=["content"]))
        return {"id": record.id, "version": 1, "created": True}

    def _update(
        self, target: tuple[MemorySpace, MemoryRecord], command: MemoryUpdate, context: ApplyContext
    ) -> dict[str, Any]:
        space, record = target
        if not record.active:
            raise Rejected("precondition_failed", f"memory {record.id} is invalidated; add a new one instead")
        changes: dict[str, Any] = {}
        if command.content is not None and command.content != record.content:
            changes["content"] = command.content
            if record.embedding is not None and command.embedding is None:
                raise Rejected("invalid", "new content of a memory with an embedding needs a new embedding")
        if command.embedding is not None:
            self._check_embedding(space, command.embedding, command.model_id)
            if command.embedding != record.embedding:
                changes["embedding"] = command.embedding
            if command.model_id != record.model_id:
                changes["model_id"] = command.model_id
        if command.memory_type is not None and command.memory_type != record.memory_type:
            changes["memory_type"] = command.memory_type
        if command.tags is not None and sorted(set(command.tags)) != record.tags:
            changes["tags"] = sorted(set(command.tags))
        if command.metadata is not None and command.metadata != record.metadata:
            changes["metadata"] = self._metadata(command.metadata)
        if command.confidence is not None and command.confidence != record.confidence:
            changes["confidence"] = command.confidence
        if command.valid_from is not None and command.valid_from != record.valid_from:
            changes["valid_from"] = command.valid_from
        if command.valid_until is not None and command.valid_until != record.valid_until:
            changes["valid_until"] = command.valid_until
        valid_from = changes.get("valid_from", record.valid_from)
        valid_until = changes.get("valid_until", record.valid_until)
        if valid_until is not None and valid_until <= valid_from:
            raise Rejected("invalid", "valid_until must be after valid_from")
        if not changes:
            return {"id": record.id, "version": record.version, "changed": False}
        updated = dataclasses.replace(record, **changes, version=record.version + 1, updated_at_ms=context.log_time_ms)
        space.replace(updated)
        fields = sorted(changes)
        space.append_history(
            record.id, _entry(context, "update", updated, record.content, reason=command.reason, changes=fields)
        )
        return {"id": record.id, "version": updated.version, "changed": True, "changes": fields}

    def _invalidate(
        self, target: tuple[MemorySpace, MemoryRecord], command: MemoryInvalidate, context: ApplyContext
    ) -> dict[str, Any]:
        space, record = target
        if not record.active:
            return {"id": record.id, "version": record.version, "invalidated": False}
        until = context.log_time_ms if command.valid_until is None else command.valid_until
        if record.valid_until is not None:
            until = min(until, record.valid_until)
        if until < record.valid_from:
            raise Rejected("invalid", f"valid_until {until} is before valid_from {record.valid_from}")
        updated = dataclasses.replace(
            record,
            valid_until=until,
            invalidated_at_ms=context.log_time_ms,
            version=record.version + 1,
            updated_at_ms=context.log_time_ms,
        )
        space.replace(updated)
        space.append_history(
            record.id,
            _entry(context, "invalidate", updated, record.content, reason=command.reason, changes=["valid_until"]),
        )
        return {"id": record.id, "version": updated.version, "invalidated": True, "valid_until": until}

    def _merge(
        self, target: tuple[MemorySpace, MemoryRecord], command: MemoryMerge, context: ApplyContext
    ) -> dict[str, Any]:
        space, record = target
        if not record.active:
            raise Rejected("precondition_failed", f"memory {record.id} is invalidated")
        sources = []
        for source_id in command.ids:
            source = space.get(source_id)
            if source is None:
                raise Rejected("not_found", f"no memory {source_id} to merge")
            if not source.active:
                raise Rejected("precondition_failed", f"memory {source_id} is invalidated")
            sources.append(source)
        changes: dict[str, Any] = {}
        if command.content is not None and command.content != record.content:
            changes["content"] = command.content
            if record.embedding is not None and command.embedding is None:
                raise Rejected("invalid", "new content of a memory with an embedding needs a new embedding")
        if command.embedding is not None:
            self._check_embedding(space, command.embedding, command.model_id)
            if command.embedding != record.embedding:
                changes["embedding"] = command.embedding
            if command.model_id != record.model_id:
                changes["model_id"] = command.model_id
        tags = sorted(set(record.tags).union(*(source.tags for source in sources)))
        if tags != record.tags:
            changes["tags"] = tags
        at = context.log_time_ms
        merged = dataclasses.replace(record, **changes, version=record.version + 1, updated_at_ms=at)
        space.replace(merged)
        reason = command.reason
        space.append_history(
            record.id,
            _entry(
                context, "merge", merged, record.content, reason=reason, changes=sorted(changes), merged=command.ids
            ),
        )
        for source in sources:
            until = at if source.valid_until is None else min(at, source.valid_until)
            gone = dataclasses.replace(
                source,
                valid_until=max(until, source.valid_from),
                invalidated_at_ms=at,
                merged_into=record.id,
                version=source.version + 1,
                updated_at_ms=at,
            )
            space.replace(gone)
            space.append_history(
                source.id, _entry(context, "merge", gone, source.content, reason=reason, merged_into=record.id)
            )
        return {"id": record.id, "version": merged.version, "merged": list(command.ids)}

    @staticmethod
    def _index(space: MemorySpace | None, command: MemoryIndex, key: _Space) -> dict[str, Any]:
        if space is None or space.model_id is None:
            raise Rejected("not_found", f"namespace {key[1]!r} has no memory vectors to index")
        if command.model_id != space.model_id:
            raise Rejected("invalid", f"index of model {command.model_id!r}; the namespace uses {space.model_id!r}")
        if len(command.centroids) != command.lists * space.dimension * 2:
            raise Rejected(
                "invalid",
                f"{command.lists} centroids of dimension {space.dimension} take"
                f" {command.lists * space.dimension * 2} bytes of float16, not {len(command.centroids)}",
            )
        if not bool(np.isfinite(np.frombuffer(command.centroids, dtype="<f2")).all()):
            raise Rejected("invalid", "centroid values must be finite")
        space.set_index(command.centroids)
        return {"lists": command.lists, "model_id": command.model_id}

    # -- reads --

    def space(self, tenant: str, namespace: str) -> MemorySpace | None:
        """The memories of a tenant's namespace, or None if it has none."""
        return self._spaces.get((tenant, namespace))

    def get(self, tenant: str, namespace: str, memory_id: int) -> MemoryRecord | None:
        """Memory `memory_id` as it stands, or None."""
        space = self._spaces.get((tenant, namespace))
        return space.get(memory_id) if space is not None else None

    def history(self, tenant: str, namespace: str, memory_id: int) -> list[dict[str, Any]] | None:
        """Every change of memory `memory_id`, oldest first (fresh dicts), or None if absent."""
        space = self._spaces.get((tenant, namespace))
        if space is None or space.get(memory_id) is None:
            return None
        return [dict(entry) for entry in space.history[memory_id - 1]]

    def recall(
        self, tenant: str, namespace: str, where: MemoryFilter, limit: int, after: int = 0
    ) -> list[MemoryRecord]:
        """Up to `limit` memories passing `where`, by number, numbered above `after` (a cursor)."""
        space = self._spaces.get((tenant, namespace))
        if space is None:
            return []
        found: list[MemoryRecord] = []
        for record in space.records[after:]:
            if where.keeps(record):
                found.append(record)
                if len(found) >= limit:
                    break
        return found

    def namespaces(self, tenant: str) -> list[str]:
        """The tenant's namespaces holding memories, sorted."""
        return sorted(namespace for owner, namespace in self._spaces if owner == tenant)

    # -- digest --

    def digest(self) -> str:
        """Hex SHA-256 over spaces sorted by (tenant, namespace), memories by number, with their history."""
        hasher = hashlib.sha256(b"agentlog.memories/1\n")
        for key in sorted(self._spaces):
            space = self._spaces[key]
            hasher.update(canonical_json([*key, space.count]) + b"\n")
            if space.index_centroids is not None:
                hasher.update(b"index\x00" + hashlib.sha256(space.index_centroids).digest())
            for record, history in zip(space.records, space.history, strict=True):
                hasher.update(canonical_json(memory_data(record)) + b"\n")
                hasher.update(canonical_json(history) + b"\n")
        return hasher.hexdigest()
