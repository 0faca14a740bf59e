"""The body every write answers once applied: outcome, result, position and consistency token."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

__all__ = ["Position", "WriteAccepted"]


class Position(BaseModel):
    """Where a command sits in the log."""

    partition: int
    offset: int


class WriteAccepted(BaseModel):
    """A write's answer: the command id, its outcome and result, its log position and time, and a token."""

    command_id: str
    outcome: Literal["applied", "rejected"]
    result: dict[str, Any]
    position: Position
    timestamp_ms: int
    token: str
