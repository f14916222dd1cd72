"""The races of the incident path, in process and deterministic: the real state machine,
lease, watchdog and takeover over memory edges (tests/harness/memory.py), the driver stopped
at each of its writes, time moved by the test. Each race of issue 19 is one test here, and a
hypothesis state machine (test_owner_model.py) looks for the interleavings nobody thought of."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cutover.deployment import scope_of
from cutover.engine.control import give_back
from cutover.engine.watchdog import watch_once
from cutover.errors import DeploymentFailed, LockHeld
from cutover.interrupt import NoInterrupts
from cutover.journal.lease import live_holder
from tests.harness.memory import (
    LISTENER,
    WRITE_SECONDS,
    MemoryJournal,
    quiet,
    services,
)
from tests.harness.world import START, Driver, World


class One:
    """One stack, one driver: the races of a single deployment."""

    def __init__(self, steps: list[int] | None = None, bake: float = 20.0) -> None:
        self.w = World()
        self.cloud, self.clock, self.log = self.w.cloud, self.w.clock, self.w.log
        self.driver = self.w.driver(steps, bake)
        self.baton, self.shift, self.journal = (
            self.driver.baton,
            self.driver.shift,
            self.driver.journal,
        )

    @property
    def served(self) -> dict[str, int]:
        return self.w.served()

    def step_to(self, predicate: Callable[[str], bool], limit: int = 500) -> str:
        """Let the driver run until it stops at a gate `predicate` accepts."""
        return step_to(self.driver, predicate, limit)

    def freeze(self) -> None:
        self.clock.freeze(self.driver.name)

    def thaw_and_finish(self) -> None:
        self.clock.thaw(self.driver.name)
        self.baton.finish()

    def watchdog(self) -> list[str]:
        return self.w.watchdog()

    def stored(self) -> dict[str, Any]:
        return self.w.stored()

    def outlive_lease(self) -> None:
        self.w.outlive_lease()


def step_to(driver: Driver, predicate: Callable[[str], bool], limit: int = 500) -> str:
    """Let `driver` run until it stops at a gate `predicate` accepts."""
    for _ in range(limit):
        at = driver.baton.step()
        if at is None:
            raise AssertionError("the driver finished first")
        if predicate(at):
            return at
    raise AssertionError("no such gate")


def test_a_driver_frozen_between_its_check_and_its_write_gives_the_late_write_back() -> None:
    """Defect 3a: frozen (SIGSTOP, a closed lid) between the lease check and ModifyListener,
    past its lease: the watchdog restores, then the driver's write lands. The driver sees the
    write landed outside its lease and gives the weights back; traffic ends where the
    deployment found it, and the driver says so (exit 1)."""
    world = One()
    world.step_to(lambda at: at == "write 70/30")  # the first step checked, not yet landed
    world.freeze()
    world.outlive_lease()
    lines = world.watchdog()
    assert any(line.startswith("restored") for line in lines), lines
    assert world.served == START
    assert world.stored()["status"] == "rolled-back"
    world.thaw_and_finish()  # the write lands now, late
    assert world.served == START
    assert isinstance(world.baton.error, DeploymentFailed)
    assert "gave back the weights it found (blue 100 / green 0)" in str(world.baton.error)
    assert world.stored()["status"] == "rolled-back"
    assert "late-write-given-back" in world.stored()["doc"], world.stored()["doc"]


def test_a_driver_frozen_as_it_saves_success_cannot_overwrite_the_rollback() -> None:
    """Defect 3b: frozen as it sends the `succeeded` save; the watchdog restores and journals
    `rolled-back`; the save is refused (its generation is stale), the driver exits 1 and
    its traffic stays given back."""
    world = One(steps=[20, 100])
    world.step_to(lambda at: at == "save succeeded")
    world.freeze()
    world.outlive_lease()
    world.watchdog()
    assert world.served == START
    world.thaw_and_finish()
    assert isinstance(world.baton.error, DeploymentFailed), world.baton.result
    assert world.stored()["status"] == "rolled-back"
    assert world.served == START
    statuses = [s for _, s in world.cloud.statuses]
    assert statuses[-1] == "rolled-back" and "succeeded" not in statuses


def test_a_write_accepted_after_the_lease_ran_out_is_confirmed_with_the_store() -> None:
    """Frozen past its lease, but nobody took it over: the late write stands (the lease is
    renewed and confirmed), and the shift goes on to succeed."""
    world = One(steps=[50, 100], bake=0.0)
    world.step_to(lambda at: at == "write 50/50")
    world.freeze()
    world.outlive_lease()
    world.thaw_and_finish()
    assert world.baton.error is None, world.baton.error
    assert world.served == {"blue": 0, "green": 100}
    assert world.stored()["status"] == "succeeded"


def test_a_lease_that_cannot_be_read_counts_as_lost_for_moving_traffic() -> None:
    """Defect 4b: a lease that cannot be confirmed is never "still mine": no step is written
    on it, and the shift gives back what it had moved."""
    world = One(steps=[40, 100])
    world.step_to(lambda at: at == "save in-progress" and world.served == {"blue": 60, "green": 40})
    world.journal.leases_unreachable = True
    world.outlive_lease()  # the renewal that would cover the next write cannot be made
    world.step_to(lambda at: at == "write 100/0")  # it gives back instead
    world.journal.leases_unreachable = False
    world.baton.finish()
    assert {"blue": 0, "green": 100} not in [w for _, w in world.cloud.writes]
    assert world.served == START
    assert world.stored()["status"] == "rolled-back"
    assert '"reason": "lease"' in world.stored()["doc"]


def test_a_takeover_at_the_instant_the_lease_runs_out_succeeds() -> None:
    """Defect 4a: the rule that says a lease ran out and the condition that takes it are one:
    at the very instant of expiry, the watchdog takes over (no "someone else took it")."""
    world = One()
    world.step_to(lambda at: at == "write 70/30")
    world.freeze()
    state = MemoryJournal(world.cloud).lease_state(LISTENER)
    assert state is not None
    world.clock.advance(state.expires_at - world.clock.now())  # exactly at expiry
    lines = world.watchdog()
    assert [line.split()[0] for line in lines] == ["restored"], lines
    world.thaw_and_finish()


def test_the_watchdog_restores_once_more_when_a_late_write_lands_after_its_restore() -> None:
    """The taker re-verifies after the longest write time: a write sent in the lease's last
    moment and landing after the restore is given back by the taker itself."""
    world = One()
    world.step_to(lambda at: at == "write 70/30")
    world.freeze()
    world.outlive_lease()
    journal = MemoryJournal(world.cloud)
    original_sleep = world.clock.advance

    def land_during_reverify(seconds: float) -> None:
        if seconds == WRITE_SECONDS:  # the taker waits for late writes: one lands now
            world.cloud.weights[LISTENER] = {"blue": 70, "green": 30}
        original_sleep(seconds)

    world.clock.sleep = land_during_reverify  # type: ignore[method-assign]
    found = watch_once(services(world.cloud), journal, lambda _: quiet(), world.log.append,
                       world.clock)  # fmt: skip
    world.clock.sleep = original_sleep  # type: ignore[method-assign]
    assert [f.action for f in found] == ["restored"]
    assert world.served == START
    assert "restored-again" in world.stored()["doc"]
    assert any("late write of the old holder landed" in line for line in world.log)
    world.thaw_and_finish()


def test_an_operator_rollback_racing_the_watchdog_acts_once() -> None:
    """Defect 4 (race): after expiry, a rollback and a watchdog pass both try: one restores,
    the other leaves it, and nothing stays split or locked."""
    world = One()
    world.step_to(lambda at: at == "write 70/30")
    world.freeze()
    world.outlive_lease()
    journal = MemoryJournal(world.cloud)
    latest = journal.load(scope_of([LISTENER]))
    assert latest is not None
    lines = world.watchdog()
    assert [line.split()[0] for line in lines] == ["restored"]
    with pytest.raises(Exception) as raised:  # the rollback read it before: it is refused
        give_back(services(world.cloud), journal, quiet(), latest, None, lambda _: None, 1.0,
                  world.log.append, NoInterrupts(), world.clock)  # fmt: skip
    assert "taken over" in str(raised.value) or isinstance(raised.value, LockHeld)
    assert world.served == START
    assert live_holder(journal, [LISTENER], world.clock.now()) is None
    world.thaw_and_finish()


def test_one_unreadable_item_does_not_stop_the_watchdog() -> None:
    """Defect 5: a damaged item and one from a newer release are skipped and named; the
    dead shift beside them is restored."""
    world = One()
    world.step_to(lambda at: at == "write 70/30")
    world.freeze()
    world.outlive_lease()
    world.cloud.items["20200101T000000Z-aaaaaa"] = {"doc": "{", "status": "?", "generation": 0}
    newer = {"id": "20200101T000000Z-bbbbbb", "status": "verifying-canary"}
    world.cloud.items[newer["id"]] = {"doc": __import__("json").dumps(newer), "status": "x",
                                      "generation": 0}  # fmt: skip
    journal = MemoryJournal(world.cloud)
    found = watch_once(services(world.cloud), journal, lambda _: quiet(), world.log.append,
                       world.clock)  # fmt: skip
    assert [f.action for f in found] == ["restored"]
    assert world.served == START
    assert [s.newer for s in journal.skipped] == [False, True]
    assert "verifying-canary" in str(journal.skipped[1])
    world.thaw_and_finish()


def test_a_signal_held_while_starting_rolls_back_without_a_write() -> None:
    """A rollback before any traffic moved writes nothing and is no downtime."""
    world = One()
    world.shift.session.interrupts.pending = "SIGINT"
    world.baton.finish()
    assert isinstance(world.baton.error, DeploymentFailed)
    assert "nothing had moved" in str(world.baton.error)
    assert world.cloud.writes == []
    assert world.stored()["status"] == "rolled-back"
