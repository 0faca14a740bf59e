"""The contract between the engine and each read model.

The engine reads a partition's records in order, decodes each into typed structs (`commands.wire`), and calls
`apply(context)` on the one model that owns the command's type. A model:

- changes its state only as a function of the context (the envelope, its position and its log time):
  no wall clock, no randomness, no iteration order that depends on how partitions interleave;
- raises `Rejected` *before* changing anything when a command cannot apply;
- gives its state to snapshots as a stream of pieces (`snapshot_state`) of plain msgpack data
  (None, bool, int, float, str, bytes, lists, str-keyed dicts) and numpy arrays, and takes it back
  from the same pieces (`restore_state`); tuples come back as lists. Each piece should stay small
  (a few thousand rows) so that encoding one never holds the interpreter for long;
- computes `digest()` over its state in a canonical, sorted order, so that two nodes at the same cut,
  or a rebuild from zero, give the same digest whatever order partitions were applied in.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from commands import CommandError, Envelope, encode
from commands.wire import WIRE_TYPES, LoggedEnvelope, decode_wire

__all__ = ["SNAPSHOT_PIECE_ROWS", "ApplyContext", "ReadModel", "chunked"]

#: Rows one snapshot piece holds at most (a piece is encoded in one call that holds the GIL).
SNAPSHOT_PIECE_ROWS = 2_000


@dataclass(frozen=True, slots=True)
class ApplyContext:
    """One command to apply, with where it sits in the log and when the log stamped it.

    Models see one shape: a pydantic `Envelope` given here (tests, tools) of a type the apply path
    mirrors is turned into its `commands.wire` structs, as the engine decodes them from records
    (one that does not encode and decode, never validated, stays as it is and is refused).
    """

    envelope: LoggedEnvelope
    partition: int
    offset: int
    log_time_ms: int

    def __post_init__(self) -> None:
        envelope = self.envelope
        if type(envelope) is Envelope and envelope.type in WIRE_TYPES:
            # A forged, unvalidated envelope that does not encode stays as it is: models refuse it.
            with contextlib.suppress(CommandError):
                object.__setattr__(self, "envelope", decode_wire(encode(envelope)))


class ReadModel(abc.ABC):
    """A deterministic fold of commands into queryable state."""

    #: Short name used in digests, status and snapshots, e.g. "records".
    name: ClassVar[str]
    #: The command `type` tags this model applies.
    command_types: ClassVar[frozenset[str]]

    @abc.abstractmethod
    def apply(self, context: ApplyContext) -> dict[str, Any]:
        """Apply one command; return its result (JSON-able) or raise `Rejected` having changed nothing."""

    @abc.abstractmethod
    def digest(self) -> str:
        """Hex SHA-256 of the state in canonical order; equal at equal cuts on any node."""

    def snapshot_state(self) -> Iterator[Any]:
        """The state as pieces of plain msgpack data and numpy arrays (see the module docstring)."""
        raise NotImplementedError(f"the {self.name} model has no snapshot form")

    def restore_state(self, pieces: Iterable[Any]) -> None:
        """Replace the (fresh) state with the one `snapshot_state` gave as `pieces`."""
        raise NotImplementedError(f"the {self.name} model has no snapshot form")


def chunked(rows: list[Any]) -> Iterator[list[Any]]:
    """`rows` in slices of at most `SNAPSHOT_PIECE_ROWS` (one empty slice for no rows)."""
    if not rows:
        yield rows
    for start in range(0, len(rows), SNAPSHOT_PIECE_ROWS):
        yield rows[start : start + SNAPSHOT_PIECE_ROWS]


def keyed_rows(table: Mapping[Any, Any]) -> list[list[Any]]:
    """A dict keyed by tuples of str as sorted `[key list, value]` rows (a snapshot piece)."""
    return [[list(key), value] for key, value in sorted(table.items())]


def from_keyed_rows(rows: Iterable[list[Any]]) -> dict[Any, Any]:
    """The dict `keyed_rows` gave rows of."""
    return {tuple(key): value for key, value in rows}
