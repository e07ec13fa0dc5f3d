"""The linearizability checker itself: it must accept what a register allows
and reject stale reads, lost writes and double successes."""

import math

from linearizability import ABSENT, Op, check, check_key


def test_sequential_history_is_linearizable():
    ops = [
        Op("k", "put", 0, 1, value="a", result="ok"),
        Op("k", "get", 2, 3, result="a"),
        Op("k", "delete", 4, 5, result="ok"),
        Op("k", "get", 6, 7, result=ABSENT),
    ]
    assert check_key(ops)


def test_a_stale_read_after_an_acknowledged_write_is_caught():
    ops = [
        Op("k", "put", 0, 1, value="a", result="ok"),
        Op("k", "put", 2, 3, value="b", result="ok"),
        Op("k", "get", 4, 5, result="a"),
    ]
    assert not check_key(ops)


def test_overlapping_operations_may_take_either_order():
    ops = [
        Op("k", "put", 0, 10, value="a", result="ok"),
        Op("k", "get", 1, 2, result="a"),
        Op("k", "get", 3, 4, result=ABSENT),
    ]
    # The read of "a" happened, so a later read of nothing is not allowed.
    assert not check_key(ops)
    ops = [
        Op("k", "put", 0, 10, value="a", result="ok"),
        Op("k", "get", 1, 2, result=ABSENT),
        Op("k", "get", 3, 4, result="a"),
    ]
    assert check_key(ops)


def test_two_successful_creates_are_not_linearizable():
    ops = [
        Op("k", "create", 0, 5, value="a", result="ok"),
        Op("k", "create", 1, 6, value="b", result="ok"),
    ]
    assert not check_key(ops)
    ops[1].result = "failed"
    assert check_key(ops)


def test_compare_and_set_needs_the_expected_value():
    ops = [
        Op("k", "put", 0, 1, value="a", result="ok"),
        Op("k", "cas", 2, 3, expect="a", value="b", result="ok"),
        Op("k", "cas", 4, 5, expect="a", value="c", result="ok"),
    ]
    assert not check_key(ops)
    ops[2].result = "failed"
    assert check_key(ops)


def test_an_unknown_write_may_or_may_not_have_happened():
    unknown = Op("k", "put", 1, math.inf, value="b")
    assert check_key([Op("k", "put", 0, 1, value="a", result="ok"), unknown, Op("k", "get", 5, 6, result="b")])
    assert check_key([Op("k", "put", 0, 1, value="a", result="ok"), unknown, Op("k", "get", 5, 6, result="a")])
    # But it cannot explain a value nobody wrote.
    assert not check_key([Op("k", "put", 0, 1, value="a", result="ok"), unknown, Op("k", "get", 5, 6, result="z")])


def test_keys_are_checked_independently():
    history = [
        Op("x", "put", 0, 1, value="a", result="ok"),
        Op("y", "get", 2, 3, result="a"),
    ]
    assert check(history) == ["y"]
