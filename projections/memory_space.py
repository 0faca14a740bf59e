"""One namespace's memories and their indexes: records, history, BM25, the vector matrix, filter columns.

A memory's number is its slot everywhere: memories are never deleted (forget = invalidate), so the
records list, the vector matrix rows and the filter columns are indexed by the number (row 0 is
unused). The records and their history are the state; everything else is an index rebuilt from
them on restore, so a snapshot holds plain data only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from projections.lexical import LexicalIndex
from projections.memory_ivf import assign

__all__ = ["MAX_NORM", "MIN_NORM", "MemoryRecord", "MemorySpace", "SCOPE_FIELDS", "VALID_FOREVER"]

#: World time of a memory with no end of validity, in the filter column.
VALID_FOREVER: Final = np.iinfo(np.int64).max
#: The scope fields recall and search filter on by equality.
SCOPE_FIELDS: Final = ("user_id", "agent_id", "session_id", "run_id", "memory_type")
#: Smallest and largest L2 norm of a memory embedding.
MIN_NORM: Final = 1e-18
MAX_NORM: Final = 1e18
_MIN_CAPACITY: Final = 16
_F32: Final = np.float32


@dataclass(slots=True)
class MemoryRecord:
    """A memory as it stands: content, kind, scope, tags, confidence, embedding, world and recorded times."""

    id: int
    content: str
    memory_type: str
    user_id: str | None
    agent_id: str | None
    session_id: str | None
    run_id: str | None
    tags: list[str]
    metadata: dict[str, Any] | None
    confidence: float
    source: str
    embedding: bytes | None
    model_id: str | None
    valid_from: int
    valid_until: int | None
    created_at_ms: int
    updated_at_ms: int
    created_by: str | None
    version: int
    invalidated_at_ms: int | None = None
    merged_into: int | None = None

    @property
    def active(self) -> bool:
        """True until the memory is invalidated (forgotten or merged away)."""
        return self.invalidated_at_ms is None

    def valid_at(self, world_ms: int) -> bool:
        """True if the memory was true in the world at `world_ms`."""
        return self.valid_from <= world_ms and (self.valid_until is None or world_ms < self.valid_until)

    def data(self) -> dict[str, Any]:
        """The record as plain data (for snapshots and digests)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> MemoryRecord:
        """The record from `data()`."""
        return cls(**data)

    def vector(self) -> npt.NDArray[np.float32] | None:
        """The embedding as float32 (a view of the bytes), or None."""
        return None if self.embedding is None else np.frombuffer(self.embedding, dtype="<f4")


class _Codes:
    """One scope field over slots: an int32 code per slot (-1 for none) and the code of each value."""

    __slots__ = ("code_of", "codes")

    def __init__(self, capacity: int) -> None:
        self.codes = np.full(capacity, -1, dtype=np.int32)
        self.code_of: dict[str, int] = {}

    def set(self, slot: int, value: str | None) -> None:
        if value is None:
            self.codes[slot] = -1
            return
        code = self.code_of.setdefault(value, len(self.code_of))
        self.codes[slot] = code


def _grown(array: npt.NDArray[Any], capacity: int, fill: Any) -> npt.NDArray[Any]:
    shape = (capacity, *array.shape[1:])
    grown = np.full(shape, fill, dtype=array.dtype)
    grown[: len(array)] = array
    return grown


class MemorySpace:
    """The memories of one (tenant, namespace), their history and the indexes search reads."""

    def __init__(self) -> None:
        self.records: list[MemoryRecord] = []
        self.history: list[list[dict[str, Any]]] = []
        self.lexical = LexicalIndex()
        #: The embedding model of the namespace, fixed by its first embedding, and its dimension.
        self.model_id: str | None = None
        self.dimension = 0
        capacity = _MIN_CAPACITY
        self.matrix: npt.NDArray[np.float32] = np.zeros((capacity, 0), dtype=_F32)
        self.inverse_norms = np.zeros(capacity, dtype=_F32)
        self.has_vector = np.zeros(capacity, dtype=np.bool_)
        self.active = np.zeros(capacity, dtype=np.bool_)
        self.valid_from = np.zeros(capacity, dtype=np.int64)
        self.valid_until = np.full(capacity, VALID_FOREVER, dtype=np.int64)
        self.scopes = {name: _Codes(capacity) for name in SCOPE_FIELDS}
        self.tags: dict[str, set[int]] = {}
        #: The IVF index (state): float16 LE centroids from `memory.index`, or None.
        self.index_centroids: bytes | None = None
        #: Its cache: the centroids as float32 and each slot's list (-1: none); built on first use.
        self.centroids: npt.NDArray[np.float32] | None = None
        self.lists = np.full(capacity, -1, dtype=np.int32)
        self.lists_ready = False

    @property
    def count(self) -> int:
        """How many memories the namespace has had (the highest number)."""
        return len(self.records)

    def get(self, memory_id: int) -> MemoryRecord | None:
        """Memory `memory_id`, or None."""
        return self.records[memory_id - 1] if 1 <= memory_id <= len(self.records) else None

    # -- writes (called once every check passed) --

    def _ensure(self, slot: int) -> None:
        capacity = len(self.active)
        if slot < capacity:
            return
        capacity = max(2 * capacity, slot + 1)
        self.matrix = _grown(self.matrix, capacity, 0.0)
        self.inverse_norms = _grown(self.inverse_norms, capacity, 0.0)
        self.has_vector = _grown(self.has_vector, capacity, False)
        self.active = _grown(self.active, capacity, False)
        self.valid_from = _grown(self.valid_from, capacity, 0)
        self.valid_until = _grown(self.valid_until, capacity, VALID_FOREVER)
        for codes in self.scopes.values():
            codes.codes = _grown(codes.codes, capacity, -1)
        self.lists = _grown(self.lists, capacity, -1)

    def insert(self, record: MemoryRecord, entry: dict[str, Any]) -> None:
        """Add a new record (its id must be `count + 1`) with its first history entry."""
        if record.id != len(self.records) + 1:
            raise ValueError(f"memory {record.id} is not the next number {len(self.records) + 1}")
        self.records.append(record)
        self.history.append([entry])
        self._ensure(record.id)
        self.lexical.add(record.id, record.content)
        self.index(record, None)

    def index(self, record: MemoryRecord, previous: MemoryRecord | None) -> None:
        """Bring every index of `record`'s slot up to date (previous: the record before this change)."""
        slot = record.id
        if previous is not None and previous.content != record.content:
            self.lexical.remove(slot, previous.content)
            self.lexical.add(slot, record.content)
        vector = record.vector()
        if vector is not None and (previous is None or previous.embedding != record.embedding):
            self._put_vector(slot, vector, record.model_id)
        self.has_vector[slot] = vector is not None
        self.active[slot] = record.active
        self.valid_from[slot] = record.valid_from
        self.valid_until[slot] = VALID_FOREVER if record.valid_until is None else record.valid_until
        for name, codes in self.scopes.items():
            codes.set(slot, getattr(record, name))
        for tag in previous.tags if previous is not None else ():
            if tag not in record.tags:
                self.tags[tag].discard(slot)
                if not self.tags[tag]:
                    del self.tags[tag]
        for tag in record.tags:
            self.tags.setdefault(tag, set()).add(slot)

    def _put_vector(self, slot: int, vector: npt.NDArray[np.float32], model_id: str | None) -> None:
        if self.model_id is None:
            self.model_id, self.dimension = model_id, len(vector)
            self.matrix = np.zeros((len(self.active), self.dimension), dtype=_F32)
        self.matrix[slot] = vector
        self.inverse_norms[slot] = 1.0 / math.sqrt(sum_of_squares(vector))
        if self.lists_ready and self.centroids is not None:
            self.lists[slot] = assign(self.matrix[slot : slot + 1], self.centroids)[0]

    def set_index(self, centroids: bytes) -> None:
        """Adopt new IVF centroids (float16 LE, rows of the namespace's dimension); the assignment is redone lazily."""
        self.index_centroids = centroids
        self.centroids = np.frombuffer(centroids, dtype="<f2").astype(np.float32).reshape(-1, self.dimension)
        self.lists[:] = -1
        self.lists_ready = False

    def ensure_lists(self) -> None:
        """Assign every vector to its list, if not done since the centroids were set."""
        if self.lists_ready or self.centroids is None:
            return
        size = self.count + 1
        rows = np.flatnonzero(self.has_vector[:size])
        for start in range(0, len(rows), 65_536):
            part = rows[start : start + 65_536]
            self.lists[part] = assign(self.matrix[part], self.centroids)
        self.lists_ready = True

    def append_history(self, memory_id: int, entry: dict[str, Any]) -> None:
        """Record one more change of memory `memory_id`."""
        self.history[memory_id - 1].append(entry)

    def replace(self, record: MemoryRecord) -> None:
        """Put a changed record in place and update its indexes."""
        previous = self.records[record.id - 1]
        self.records[record.id - 1] = record
        self.index(record, previous)

    # -- plain data --

    def snapshot_state(self) -> dict[str, Any]:
        """The state as plain data: records and history (indexes are rebuilt on restore)."""
        return {
            "records": [record.data() for record in self.records],
            "history": [list(h) for h in self.history],
            "index_centroids": self.index_centroids,
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> MemorySpace:
        """A space from `snapshot_state()`, its indexes rebuilt."""
        space = cls()
        for data, history in zip(state["records"], state["history"], strict=True):
            record = MemoryRecord.from_data(data)
            space.records.append(record)
            space.history.append(list(history))
            space._ensure(record.id)
            space.lexical.add(record.id, record.content)
            space.index(record, None)
        if state.get("index_centroids") is not None:
            space.set_index(state["index_centroids"])
        return space


def sum_of_squares(vector: npt.NDArray[np.float32]) -> float:
    """|x|² in float64 (the squares of float32 values are exact there)."""
    wide = vector.astype(np.float64)
    return float(np.dot(wide, wide))
