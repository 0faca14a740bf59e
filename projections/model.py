"""The contract between the engine and each read model.

The engine reads a partition's records in order, decodes each into an `Envelope`, and calls
`apply(context)` on the one model that owns the command's type. A model:

- changes its state only as a function of the context (the envelope, its position and its log time):
  no wall clock, no randomness, no iteration order that depends on how partitions interleave;
- raises `Rejected` *before* changing anything when a command cannot apply;
- keeps its state picklable (plain Python containers and numpy arrays) for snapshots;
- computes `digest()` over its state in a canonical, sorted order, so that two nodes at the same cut,
  or a rebuild from zero, give the same digest whatever order partitions were applied in.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

from commands import Envelope

__all__ = ["ApplyContext", "ReadModel"]


@dataclass(frozen=True, slots=True)
class ApplyContext:
    """One command to apply, with where it sits in the log and when the log stamped it."""

    envelope: Envelope
    partition: int
    offset: int
    log_time_ms: int


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
