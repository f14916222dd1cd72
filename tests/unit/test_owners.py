"""One owner per listener (issue 28, defects 1-5): many deployments on one listener, in
process and deterministic, over the memory edges (tests/harness/world.py). The journal's
epochs order them, never a host's clock; nothing is written on an older deployment's behalf
once a newer one took its listener."""

from __future__ import annotations

import json

import pytest

from cutover.errors import DeploymentFailed
from cutover.journal.owner import OwnedByInterrupted, newest
from tests.harness.memory import LISTENER, MemoryJournal
from tests.harness.world import SECOND, START, Driver, World

GREEN: dict[str, int] = {"blue": 0, "green": 100}


def step_to(driver: Driver, gate: str, world: World | None = None, limit: int = 500) -> None:
    """Let `driver` run until it stops at `gate` (a write or a save); with `world`, once its
    first step is served there (a save while baking)."""
    for _ in range(limit):
        at = driver.baton.step()
        if at is None:
            raise AssertionError(f"{driver.name} finished before {gate}")
        if at == gate and (world is None or world.served() == {"blue": 70, "green": 30}):
            return
    raise AssertionError(f"{driver.name} never reached {gate}")


def succeed(world: World, steps: list[int] | None = None) -> Driver:
    """A whole shift to green that succeeds."""
    driver = world.driver(steps or [100], bake=0.0)
    world.finish_driver(driver)
    assert driver.baton.error is None, driver.baton.error
    return driver


def test_a_woken_driver_never_writes_its_old_snapshot_over_a_newer_success() -> None:
    """Defect 1: frozen past its lease and given back by the watchdog, a driver wakes after
    a newer shift succeeded: it finds the split changed, but the newer deployment owns the
    listener, so it writes nothing, and the stack config keeps the newer success."""
    world = World()
    old = world.driver([30, 100], bake=20.0)
    step_to(old, "save in-progress", world)  # baking its first step
    world.clock.freeze(old.name)
    world.outlive_lease()
    assert [line.split()[0] for line in world.watchdog()] == ["restored"]
    newer = succeed(world)
    assert world.served() == GREEN
    world.finish_driver(old)
    assert world.served() == GREEN
    assert isinstance(old.baton.error, DeploymentFailed)
    assert "took its listeners since" in str(old.baton.error)
    assert world.stored(newer)["status"] == "succeeded"
    assert world.config[LISTENER] == (GREEN, f"shift {newer.deployment.id} succeeded")  # type: ignore[union-attr]


def test_a_late_write_that_landed_over_a_newer_success_is_undone_by_its_writer() -> None:
    """Defect 1, its hardest form: frozen between its lease check and its write, the old
    driver's write lands after a newer shift succeeded. Its writer sees its own write is what
    is served and puts back what the newer deployment left (never its own snapshot)."""
    world = World()
    old = world.driver([30, 100], bake=20.0)
    step_to(old, "write 70/30")  # checked, not yet landed
    world.clock.freeze(old.name)
    world.outlive_lease()
    world.watchdog()
    newer = succeed(world)
    world.finish_driver(old)  # the write lands now, over the newer success
    assert world.served() == GREEN
    assert "put back what that one left (blue 0 / green 100)" in str(old.baton.error)
    assert world.stored(newer)["status"] == "succeeded"
    assert world.config[LISTENER][0] == GREEN


def test_a_shift_refuses_to_start_over_an_interrupted_one_and_names_it() -> None:
    """Defect 2: a deployment killed at 70/30 still owns the listener: a new shift refuses
    (naming it, saying what to do), changes nothing and journals nothing; once the watchdog
    gave its traffic back, the next shift starts."""
    world = World()
    killed = world.driver([30, 100])
    step_to(killed, "save in-progress", world)
    world.clock.freeze(killed.name)
    world.outlive_lease()
    before = dict(world.cloud.items)
    refused = world.driver([100], bake=0.0)
    refused.baton.finish()
    assert isinstance(refused.baton.error, OwnedByInterrupted)
    assert killed.deployment is not None and killed.deployment.id in str(refused.baton.error)
    assert "`cutover resume` continues it" in str(refused.baton.error)
    assert world.cloud.items == before and world.served() == {"blue": 70, "green": 30}
    world.watchdog()
    assert world.served() == START
    succeed(world)
    assert world.served() == GREEN


def test_a_pipeline_cleanup_never_gives_back_over_a_newer_release() -> None:
    """Defect 2 (docs/helper.md's pipeline cleanup): `rollback --deployment A --if-moved` after a
    newer deployment B took the listener gives nothing back, even where A's own journal
    would say it must (its restore unconfirmed); `rollback --deployment A` is refused."""
    world = World()
    first = succeed(world, [50, 100])
    assert first.deployment is not None
    item = world.cloud.items[first.deployment.id]  # as if its give-back was never confirmed
    doc = json.loads(item["doc"])
    doc.update(status="rolled-back", timings={"restoreVerified": False})
    item.update(doc=json.dumps(doc), status="rolled-back")
    world.rollback()  # the operator rolls the success back: blue again
    second = succeed(world)
    assert world.rollback(first.deployment.id, if_moved=True) == "nothing"
    assert world.rollback(first.deployment.id) == "refused"
    assert world.served() == GREEN
    assert world.stored(second)["status"] == "succeeded"


def test_a_takeover_cut_short_after_its_claim_is_taken_over_by_the_next_pass() -> None:
    """Defect 3: the old color is below its capacity and the pass has too little time left
    to wait for it: the takeover fails after its claim. The next pass (the capacity back)
    claims again and restores: the claim's generation is what its load read."""
    world = World()
    dead = world.driver([30, 100])
    step_to(dead, "save in-progress", world)
    world.clock.freeze(dead.name)
    world.outlive_lease()
    world.cloud.ready["blue"] = 0
    journal = MemoryJournal(world.cloud)
    from cutover.engine.watchdog import watch_once
    from tests.harness.memory import quiet, services

    found = watch_once(services(world.cloud), journal, lambda _: quiet(), world.log.append,
                       world.clock, time_left=lambda: 70.0)  # fmt: skip
    assert [f.action for f in found] == ["failed"], found
    assert world.stored(dead)["generation"] == 2 and world.served() == {"blue": 70, "green": 30}
    world.cloud.ready.clear()
    assert [line.split()[0] for line in world.watchdog()] == ["restored"]
    assert world.served() == START


def test_a_release_train_is_given_back_by_the_watchdog_of_either_stack() -> None:
    """Defect 4: a train over two stacks' listeners, its driver gone: the first stack's
    watchdog (which has only its own service) gives both back, the other service rebuilt
    from the outputs the deployment journaled."""
    world = World(keys=(LISTENER, SECOND))
    train = world.driver([30, 100], keys=(LISTENER, SECOND))
    step_to(train, "save in-progress", world)
    world.clock.freeze(train.name)
    world.outlive_lease()
    assert world.served(SECOND) == {"blue": 70, "green": 30}
    lines = world.watchdog(keys=(SECOND,))
    assert [line.split()[0] for line in lines] == ["restored"], lines
    assert world.served(LISTENER) == START and world.served(SECOND) == START


def test_the_newest_deployment_is_the_journals_not_the_fastest_hosts() -> None:
    """Defect 5: a finished shift from a host 10 minutes fast has the later id; the shift
    running now, from a host on time, is still what `abort` and `promote` find."""
    world = World()
    fast = world.driver([100], bake=0.0, skew=600.0)
    world.finish_driver(fast)
    world.rollback()  # blue again, so the next shift moves traffic
    running = world.driver([30, 100])
    step_to(running, "save in-progress", world)
    assert fast.deployment is not None and running.deployment is not None
    assert fast.deployment.id > running.deployment.id  # what ordering by id got wrong
    found = newest(MemoryJournal(world.cloud), [LISTENER])
    assert found is not None and found.id == running.deployment.id
    world.finish_driver(running)


def test_an_operator_rollback_of_the_newest_names_a_train_that_took_the_listener() -> None:
    """After a train took a listener, a rollback from that one stack is of the train (its
    newest owner), and gives every service of the train back."""
    world = World(keys=(LISTENER, SECOND))
    train = world.driver([100], bake=0.0, keys=(LISTENER, SECOND))
    world.finish_driver(train)
    assert world.served(SECOND) == GREEN
    assert world.rollback(keys=(SECOND,)) == "restored"
    assert world.served(LISTENER) == START and world.served(SECOND) == START


@pytest.mark.parametrize("skew", [-600.0, 600.0])
def test_skewed_hosts_still_order_by_epoch(skew: float) -> None:
    world = World()
    first = world.driver([100], bake=0.0, skew=skew)
    world.finish_driver(first)
    world.rollback()
    second = succeed(world)
    found = newest(MemoryJournal(world.cloud), [LISTENER])
    assert found is not None and second.deployment is not None
    assert found.id == second.deployment.id
