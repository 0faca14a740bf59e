"""The checker itself: it accepts linearizable histories and refuses stale reads and lost updates."""

from __future__ import annotations

from tests.consistency.linearizability import Operation, VersionedRegister, check

R = VersionedRegister


def op(call: int, ret: int, input: tuple[object, ...], output: tuple[object, ...]) -> Operation:
    return Operation("k", call, ret, input, output)


def test_sequential_history_is_linearizable() -> None:
    history = [
        op(0, 1, ("cas", 0, "a"), ("ok", 1)),
        op(2, 3, ("read",), (1, "a")),
        op(4, 5, ("cas", 0, "b"), ("conflict", 1)),
        op(6, 7, ("read",), (1, "a")),
    ]
    assert check(history, R.initial, R.step)


def test_concurrent_read_may_see_either_side_of_an_overlapping_write() -> None:
    write = op(0, 10, ("cas", 0, "a"), ("ok", 1))
    assert check([write, op(1, 2, ("read",), (0, None))], R.initial, R.step)
    assert check([write, op(1, 2, ("read",), (1, "a"))], R.initial, R.step)


def test_a_stale_read_after_the_write_returned_is_refused() -> None:
    history = [op(0, 1, ("cas", 0, "a"), ("ok", 1)), op(2, 3, ("read",), (0, None))]
    assert not check(history, R.initial, R.step)


def test_two_successful_cas_from_the_same_version_are_refused() -> None:
    history = [op(0, 5, ("cas", 0, "a"), ("ok", 1)), op(1, 6, ("cas", 0, "b"), ("ok", 1))]
    assert not check(history, R.initial, R.step)


def test_reads_going_back_in_time_are_refused() -> None:
    history = [
        op(0, 100, ("cas", 0, "a"), ("ok", 1)),
        op(1, 2, ("read",), (1, "a")),
        op(3, 4, ("read",), (0, None)),
    ]
    assert not check(history, R.initial, R.step)
