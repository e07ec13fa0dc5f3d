"""A linearizability checker for histories of S3 operations on single keys.

Each key is an independent register (absent, or holding a value). A history
is a list of operations with real-time start and end; the checker searches
for an order of them that respects real time (an operation that ended before
another began comes first) and that a register explains (Wing & Gong's
search with Lowe's memoisation of visited states).

An operation whose outcome the client never learned (a timeout, a 5xx, a
broken connection) may have taken effect at any time after it began, or
never: it gets an infinite end and need not be placed at all.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

ABSENT = None


@dataclass
class Op:
    key: str
    kind: str  # "put" | "create" | "cas" | "delete" | "get"
    start: float
    end: float = math.inf  # math.inf: outcome unknown
    value: str | None = None  # what a put/create/cas writes
    expect: str | None = None  # what a cas expects (If-Match)
    result: object = None  # get: the value read (ABSENT for 404); writes: "ok" | "failed"

    @property
    def known(self) -> bool:
        return self.end != math.inf


def step(state, op: Op):
    """(allowed, next state) of applying `op` to register `state`."""
    if op.kind == "get":
        return (not op.known or op.result == state), state
    if op.kind == "put":
        return True, op.value
    if op.kind == "delete":
        return True, ABSENT
    if op.kind == "create":
        if not op.known:
            return True, (op.value if state is ABSENT else state)
        if op.result == "ok":
            return state is ABSENT, op.value
        return state is not ABSENT, state
    if op.kind == "cas":
        if not op.known:
            return True, (op.value if state == op.expect else state)
        if op.result == "ok":
            return state == op.expect, op.value
        return state != op.expect, state
    raise ValueError(op.kind)


def check_key(ops: list[Op], initial=ABSENT) -> bool:
    """Whether the operations on one key are linearizable."""
    # Unknown reads constrain nothing.
    ops = [op for op in ops if op.known or op.kind != "get"]
    ops.sort(key=lambda op: op.start)
    n = len(ops)
    known_mask = 0
    for i, op in enumerate(ops):
        if op.known:
            known_mask |= 1 << i
    seen: set[tuple[int, object]] = set()
    # Iterative depth-first search over (placed set, register state).
    stack = [(0, initial)]
    while stack:
        placed, state = stack.pop()
        if placed & known_mask == known_mask:
            return True
        if (placed, state) in seen:
            continue
        seen.add((placed, state))
        # Candidates: unplaced operations that began before every unplaced
        # known operation ended.
        horizon = min((ops[i].end for i in range(n) if not placed >> i & 1 and ops[i].known), default=math.inf)
        for i in range(n):
            if placed >> i & 1:
                continue
            op = ops[i]
            if op.start > horizon:
                break
            allowed, nxt = step(state, op)
            if allowed:
                stack.append((placed | 1 << i, nxt))
    return False


def check(history: list[Op]) -> list[str]:
    """Keys whose operations are not linearizable (empty: the history is)."""
    by_key: dict[str, list[Op]] = defaultdict(list)
    for op in history:
        by_key[op.key].append(op)
    return [key for key, ops in sorted(by_key.items()) if not check_key(ops)]
