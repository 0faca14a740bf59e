"""Cuts (one offset per partition) and the consistency tokens that carry them to clients."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = [
    "TOKEN_PATTERN",
    "CutError",
    "cut_pattern",
    "format_token",
    "merge_token",
    "parse_token",
    "partition_pattern",
    "token_pattern",
]

#: Longest token a reader may send (a few hundred partitions of large offsets).
MAX_TOKEN_CHARS = 16_384
_PARTITION: Final = r"(?:0|[1-9]\d{0,3})"
_OFFSET: Final = r"(?:0|[1-9]\d{0,17})"


def cut_pattern(partition: str = _PARTITION) -> str:
    """The regex (unanchored) of `partition:offset` pairs, comma-separated, in decimal without leading zeros."""
    pair = rf"{partition}:{_OFFSET}"
    return rf"{pair}(?:,{pair})*"


def partition_pattern(partitions: int) -> str:
    """The regex (unanchored) of the partition numbers of a topic of `partitions` partitions."""
    return "(?:" + "|".join(str(partition) for partition in reversed(range(partitions))) + ")"


def token_pattern(partitions: int | None = None) -> str:
    """What a token looks like (empty: no requirement); with `partitions`, only partitions the topic has."""
    partition = _PARTITION if partitions is None else partition_pattern(partitions)
    return rf"^(?:{cut_pattern(partition)})?$"


#: What any token looks like, whatever the topic (`parse_token` checks the partition count too).
TOKEN_PATTERN: Final = token_pattern()
_TOKEN: Final = re.compile(TOKEN_PATTERN)


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
    if not _TOKEN.fullmatch(token):
        raise CutError(f"token {token[:80]!r} is not partition:offset pairs separated by commas")
    required: dict[int, int] = {}
    for part in filter(None, token.split(",")):
        partition_text, _, offset_text = part.partition(":")
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
