"""The acquire-or-give-back loop of every journal's lease, over a small table of leases."""

from __future__ import annotations

import pytest
from cutover_gates.contract import Holder

from cutover.errors import LockHeld
from cutover.journal.lease import ACQUIRE_ATTEMPTS, LeaseState, acquire_each


class Table:
    """Leases as a dict: `vanish` keys answer "held, but gone by the time it is read" that
    many times before they can be taken."""

    def __init__(self, held: dict[str, str] | None = None, vanish: dict[str, int] | None = None):
        self.held = dict(held or {})
        self.vanish = dict(vanish or {})
        self.released: list[str] = []

    def acquire_one(self, key: str, holder: Holder, now: float) -> bool:
        if self.vanish.get(key, 0) > 0:
            self.vanish[key] -= 1
            return False
        if key in self.held and self.held[key] != holder.token:
            raise LockHeld(f"{key} is locked by {self.held[key]}")
        self.held[key] = holder.token
        return True

    def heartbeat(self, keys: list[str], holder: Holder, now: float) -> bool:
        return True

    def release(self, keys: list[str], holder: Holder) -> None:
        for key in keys:
            if self.held.get(key) == holder.token:
                del self.held[key]
                self.released.append(key)

    def lease_state(self, key: str) -> LeaseState | None: ...


ME = Holder("me")


def NOW() -> float:  # noqa: N802 - a clock
    return 1000.0


def test_keys_are_taken_in_a_fixed_order() -> None:
    table = Table()
    acquire_each(table, ["b", "a", "c"], ME, NOW)
    assert list(table.held) == ["a", "b", "c"]


def test_a_holder_gone_while_looking_is_tried_again() -> None:
    table = Table(vanish={"a": ACQUIRE_ATTEMPTS - 1})
    acquire_each(table, ["a"], ME, NOW)
    assert table.held == {"a": "me"}


def test_a_key_that_keeps_changing_hands_is_refused_and_nothing_is_kept() -> None:
    table = Table(vanish={"b": ACQUIRE_ATTEMPTS})
    with pytest.raises(LockHeld, match="changed hands"):
        acquire_each(table, ["a", "b"], ME, NOW)
    assert table.held == {} and table.released == ["a"]


def test_one_held_key_gives_back_the_ones_taken() -> None:
    table = Table(held={"c": "other"})
    with pytest.raises(LockHeld, match="locked by other"):
        acquire_each(table, ["a", "b", "c"], ME, NOW)
    assert table.held == {"c": "other"} and table.released == ["a", "b"]
