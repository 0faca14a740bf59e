"""A linearizability checker (Wing & Gong search with memoization, as Knossos and porcupine do).

A history is a list of operations with call and return times (a client's monotonic clock, shared by
all clients of one process). It is linearizable for a sequential model if some total order of the
operations respects real time (an operation that returned before another was called comes first)
and, applied in that order from the model's initial state, gives every operation its observed
output. Keys are independent (P-compositionality), so each key's sub-history is checked alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Operation", "VersionedRegister", "check", "check_by_key"]

#: States explored per key before the search gives up (a bound on a hard instance, not a verdict).
STATES_MAX = 2_000_000


@dataclass(frozen=True, slots=True)
class Operation:
    """One client operation: on `key`, called at `call_ns`, returned at `return_ns` with `output`."""

    key: str
    call_ns: int
    return_ns: int
    input: Any
    output: Any


#: step(state, input, output) -> the next state if `output` is what the model answers, else None.
Step = Callable[[Hashable, Any, Any], Hashable | None]


class VersionedRegister:
    """A state record: `("read",)` answers `(version, value)`; `("cas", expected, value)` answers ok or the version."""

    initial: Hashable = (0, None)

    @staticmethod
    def step(state: Hashable, input: Any, output: Any) -> Hashable | None:
        """The next state when `input` answering `output` is legal in `state`, else None."""
        version, value = state  # type: ignore[misc]
        if input[0] == "read":
            return state if output == (version, value) else None
        _, expected, new_value = input
        if version == expected:
            return (version + 1, new_value) if output == ("ok", version + 1) else None
        return state if output == ("conflict", version) else None


class SearchExhausted(Exception):
    """The search met `STATES_MAX` states without a verdict."""


def check(operations: Sequence[Operation], initial: Hashable, step: Step) -> bool:
    """True if the history of one key is linearizable for the model (`initial`, `step`)."""
    ops = sorted(operations, key=lambda op: (op.call_ns, op.return_ns))
    count = len(ops)
    full = (1 << count) - 1
    seen: set[tuple[int, Hashable]] = set()
    stack: list[tuple[int, Hashable]] = [(0, initial)]
    while stack:
        done, state = stack.pop()
        if done == full:
            return True
        if (done, state) in seen:
            continue
        seen.add((done, state))
        if len(seen) > STATES_MAX:
            raise SearchExhausted(f"more than {STATES_MAX} states for {count} operations")
        # Candidates: pending operations called before every pending operation's return.
        horizon = min(ops[i].return_ns for i in range(count) if not done >> i & 1)
        for i in range(count):
            if done >> i & 1:
                continue
            op = ops[i]
            if op.call_ns > horizon:
                break  # sorted by call time: no later one can be first either
            following = step(state, op.input, op.output)
            if following is not None:
                stack.append((done | 1 << i, following))
    return False


def check_by_key(operations: Sequence[Operation], initial: Hashable, step: Step) -> dict[str, bool]:
    """`check` per key: key -> linearizable."""
    by_key: dict[str, list[Operation]] = defaultdict(list)
    for op in operations:
        by_key[op.key].append(op)
    return {key: check(ops, initial, step) for key, ops in sorted(by_key.items())}
