"""Cuts (one offset per partition) and the consistency tokens that carry them to clients."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CutError", "format_token", "merge_token", "parse_token"]

#: Longest token a reader may send (a few hundred partitions of large offsets).
MAX_TOKEN_CHARS = 16_384


class CutError(ValueError):
    """A malformed token or cut."""


def format_token(positions: Iterable[tuple[int, int]]) -> str:
    """A token for 'applied past these positions': `p:next_offset` pairs, sorted, comma-separated."""
    highest: dict[int, int] = {}
    for partition, offset in positions:
        highest[partition] = max(highest.get(partition, 0), offset + 1)
    return ",".join(f"{p}:{o}" for p, o in sorted(highest.items()))


def parse_token(token: str, partitions: int) -> dict[int, int]:
    """The {partition: next_offset} a token requires; CutError when malformed or out of range."""
    if len(token) > MAX_TOKEN_CHARS:
        raise CutError(f"token longer than {MAX_TOKEN_CHARS} characters")
    required: dict[int, int] = {}
    for part in filter(None, token.split(",")):
        partition_text, _, offset_text = part.partition(":")
        if not (partition_text.isdigit() and offset_text.isdigit()):
            raise CutError(f"token part {part!r} is not partition:offset")
        partition, offset = int(partition_text), int(offset_text)
        if partition >= partitions:
            raise CutError(f"token names partition {partition}; the topic has {partitions}")
        required[partition] = max(required.get(partition, 0), offset)
    return required


def merge_token(first: str, second: str, partitions: int) -> str:
    """The token requiring both."""
    merged = parse_token(first, partitions)
    for partition, offset in parse_token(second, partitions).items():
        merged[partition] = max(merged.get(partition, 0), offset)
    return ",".join(f"{p}:{o}" for p, o in sorted(merged.items()))
