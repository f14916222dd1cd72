"""Stacks in memory with several deployments on them: the real shift, lease, watchdog,
takeover and control over the memory edges (tests/harness/memory.py), each driver its own
process on its own baton, time moved by the test.

Besides the edges, the world watches what the issue-28 invariants are about: each restore
names the snapshot it writes back (the memory router numbers every snapshot it takes), so a
test can ask whether it was the newest owner's; and a stack config that the command line
would write (after a driver returned, or after a rollback) is kept with the save it follows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cutover_gates.contract import Status

from cutover.clock import Clock
from cutover.deployment import Deployment, Options, scope_of
from cutover.engine.control import config_after_restore, give_back, nothing_to_give_back
from cutover.engine.session import Session
from cutover.engine.shift import Shift
from cutover.engine.watchdog import watch_once
from cutover.interrupt import NoInterrupts
from cutover.journal.lease import LEASE_SECONDS, live_holder
from cutover.journal.owner import newer_owner, newest
from cutover.weights import Weights
from tests.harness.memory import (
    LISTENER,
    Baton,
    Cloud,
    FakeClock,
    MemoryJournal,
    quiet,
    services,
)

SECOND = LISTENER.replace("/1/2", "/3/4")  # a second service's listener (release trains)
START: Weights = {"blue": 100, "green": 0}


class Skewed(Clock):
    """A host whose wall clock is `skew` seconds off the world's (its ids and leases say so)."""

    def __init__(self, clock: FakeClock, skew: float) -> None:
        super().__init__(now=lambda: clock.now() + skew, monotonic=clock.monotonic,
                         sleep=lambda seconds: clock.sleep(seconds))  # fmt: skip
        self.base = clock

    def every(self, seconds: Callable[[], float], tick: Callable[[], bool]) -> Callable[[], None]:
        return self.base.every(seconds, tick)


@dataclass
class Driver:
    """One `cutover shift` process: its own baton, views of the cloud and journal."""

    name: str
    keys: tuple[str, ...]
    baton: Baton
    shift: Shift
    journal: MemoryJournal

    @property
    def deployment(self) -> Deployment | None:
        return self.shift.session._deployment

    @property
    def done(self) -> bool:
        return self.baton.done


@dataclass
class World:
    """Stacks whose listeners are `keys`, one clock, and every driver started on them."""

    keys: tuple[str, ...] = (LISTENER,)
    cloud: Cloud = field(default_factory=Cloud)
    clock: FakeClock = field(default_factory=FakeClock)
    log: list[str] = field(default_factory=list)
    drivers: list[Driver] = field(default_factory=list)
    config: dict[str, tuple[Weights, str]] = field(default_factory=dict)  # key -> (split, why)
    _names: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        for key in self.keys:
            self.cloud.weights.setdefault(key, dict(START))

    # -- processes ---------------------------------------------------------------------------

    def driver(
        self,
        steps: list[int] | None = None,
        bake: float = 20.0,
        keys: tuple[str, ...] | None = None,
        target: str = "green",
        mode: str = "auto",
        skew: float = 0.0,
    ) -> Driver:
        """A new shift process (started at the first `step`), on a host whose clock is
        `skew` seconds off."""
        name = f"driver-{next(self._names)}"
        keys = keys or self.keys
        baton = Baton()
        journal = MemoryJournal(self.cloud, baton)
        clock = Skewed(self.clock, skew) if skew else self.clock
        session = Session.of(services(self.cloud, baton, keys), journal, quiet(),
                             self.log.append, clock)  # fmt: skip
        shift = Shift(session)
        options = Options(target=target, steps=steps or [30, 100], bake=bake,  # type: ignore[arg-type]
                          interval=5.0, mode=mode)  # type: ignore[arg-type]  # fmt: skip
        driver = Driver(name, keys, baton, shift, journal)

        def drive() -> Deployment:
            shift.start(options)
            done = shift.run()
            self._config_follows(driver, done.plan[-1], f"shift {done.id} succeeded")
            return done

        baton.run(self.clock, drive, name)
        self.drivers.append(driver)
        return driver

    def _config_follows(self, driver: Driver, weights: Weights, why: str) -> None:
        """What the command line writes into the stack config, kept with its reason."""
        for key in driver.keys:
            self.config[key] = (dict(weights), why)

    def finish_driver(self, driver: Driver) -> None:
        """Let a driver run to its end; after a rollback, the config follows as the CLI's does."""
        self.clock.thaw(driver.name)
        driver.baton.finish()
        self.after_failure(driver)

    def after_failure(self, driver: Driver) -> None:
        if driver.baton.error is None or driver.deployment is None:
            return
        journal = MemoryJournal(self.cloud)
        fresh = journal.load(driver.deployment.scope, driver.deployment.id)
        follows = config_after_restore(journal, services(self.cloud, keys=driver.keys), fresh)
        if isinstance(follows, dict) and fresh is not None:
            self._config_follows(driver, follows, f"deployment {fresh.id} was rolled back")

    def watchdog(self, keys: tuple[str, ...] | None = None) -> list[str]:
        """One watchdog pass of the stack holding `keys`, as its own process."""
        journal = MemoryJournal(self.cloud)
        found = watch_once(services(self.cloud, keys=keys or self.keys[:1]), journal,
                           lambda _: quiet(), self.log.append, self.clock,
                           rebuild=self.rebuild)  # fmt: skip
        return [f.line() for f in found]

    def rebuild(self, journaled: list[dict[str, Any]]) -> list[Any]:
        """A stack's watchdog rebuilds a train's other services from their journaled outputs:
        here, their memory listeners (the route name is the listener's key)."""
        keys = tuple(
            k
            for o in journaled
            for k in self.keys
            if o["route"]["name"] == k[-12:].replace("/", "-")
        )
        return services(self.cloud, keys=keys)

    def rollback(
        self,
        deployment_id: str | None = None,
        if_moved: bool = False,
        keys: tuple[str, ...] | None = None,
    ) -> str:
        """`cutover rollback [--deployment ID [--if-moved]]` against a stack whose process is
        gone, as the command decides: what it did, in a word."""
        keys = keys or self.keys[:1]
        journal = MemoryJournal(self.cloud)
        target = (
            newest(journal, list(keys))
            if deployment_id is None
            else journal.load(scope_of(list(keys)), deployment_id)
        )
        if target is None:
            return "nothing"
        if if_moved and nothing_to_give_back(journal, target) is not None:
            return "nothing"
        if newer_owner(journal, target) is not None:
            return "refused"
        holder = live_holder(journal, list(target.listeners), self.clock.now())
        if holder is not None:
            return "held"  # a live holder is asked to abort; that wait is the CLI's (tested there)
        try:
            done = give_back(services(self.cloud, keys=tuple(target.listeners)), journal, quiet(),
                             target, None, lambda _: None, 5.0, self.log.append, NoInterrupts(),
                             self.clock)  # fmt: skip
        except Exception:  # noqa: BLE001 - refused or raced: it says so, exit 1 or 3
            return "failed"
        follows = config_after_restore(journal, services(self.cloud, keys=keys), done)
        if isinstance(follows, dict):
            for key in keys:
                self.config[key] = (dict(follows), f"deployment {done.id} was rolled back")
        return "restored" if done.status == Status.ROLLED_BACK else "other"

    # -- reading -----------------------------------------------------------------------------

    def served(self, key: str = LISTENER) -> Weights:
        return dict(self.cloud.weights[key])

    def stored(self, driver: Driver | None = None) -> dict[str, Any]:
        """The journal item of `driver`'s deployment (the only one when there is one)."""
        if driver is None:
            (item,) = self.cloud.items.values()
            return item
        assert driver.deployment is not None
        return self.cloud.items[driver.deployment.id]

    def outlive_lease(self) -> None:
        self.clock.advance(LEASE_SECONDS + 1)
