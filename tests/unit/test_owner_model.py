"""The interleavings nobody thought of, with many deployments: a hypothesis state machine over
two stacks' listeners (tests/harness/world.py), several shifts per listener (single or a
release train over both), shifts started over interrupted ones, drivers frozen and woken
anywhere, hosts with skewed clocks, watchdog passes of either stack (one cut short after its
claim), operators' rollbacks, pipeline cleanups and `pulumi up`s writing the stack config's
split.

Invariants: no restore writes a snapshot older than the newest owner's; the stack config is
written only after an accepted save, for the newest owner; a finished status is never
overwritten but by an operator's rollback of a success; and at the end (every driver run to
its end, a watchdog pass of each stack) each listener serves what its newest deployment left,
or what a `pulumi up` wrote after it, with nothing in progress.
"""

from __future__ import annotations

import json
from typing import Any

from cutover_gates.contract import Status
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cutover.engine.watchdog import watch_once
from cutover.journal.lease import LEASE_SECONDS
from cutover.weights import Weights
from tests.harness.memory import LISTENER, MemoryJournal, quiet, services
from tests.harness.world import SECOND, START, Driver, World

KEYS = (LISTENER, SECOND)
SHAPES = {"first": (LISTENER,), "second": (SECOND,), "train": KEYS}
MAX_DRIVERS = 4


def final_split(doc: dict[str, Any], key: str) -> Weights | None:
    """What a finished deployment left served on `key`: its last step, or the weights it
    found; None while it runs (or for a give-back not confirmed)."""
    status = doc["status"]
    if status == "succeeded" and doc["plan"]:
        return dict(doc["plan"][-1])
    moved = any(e["type"] == "step-intent" for e in doc["events"])
    verified = doc.get("timings", {}).get("restoreVerified")
    if status in ("drilled", "succeeded") or (status == "rolled-back" and (verified or not moved)):
        return dict(doc["snapshot"][key]["weights"])
    return None


class ManyDeployments(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World(keys=KEYS)
        for key in KEYS:
            self.world.config[key] = (dict(START), "the stack's first config")
        self.frozen: set[str] = set()
        self.rolled_back_successes: set[str] = set()
        self.pulumi_wrote: dict[str, int] = {}  # key -> how many writes the cloud had then

    # -- who acts ---------------------------------------------------------------------------

    def _running(self) -> list[Driver]:
        return [d for d in self.world.drivers if not d.done]

    @precondition(lambda self: len(self.world.drivers) < MAX_DRIVERS)
    @rule(
        shape=st.sampled_from(sorted(SHAPES)),
        steps=st.sampled_from([[100], [30, 100], [50, 100]]),
        skew=st.sampled_from([0.0, -0.5, 0.5]),
        color=st.sampled_from(["green", "blue"]),
    )
    def start_a_shift(self, shape: str, steps: list[int], skew: float, color: str) -> None:
        self.world.driver(steps, bake=10.0, keys=SHAPES[shape], target=color, skew=skew)

    @precondition(lambda self: any(d.name not in self.frozen for d in self._running()))
    @rule(data=st.data())
    def a_driver_steps(self, data: st.DataObject) -> None:
        driver = data.draw(
            st.sampled_from([d for d in self._running() if d.name not in self.frozen])
        )
        driver.baton.step()
        if driver.done:
            self.world.after_failure(driver)

    @precondition(lambda self: any(d.name not in self.frozen for d in self._running()))
    @rule(data=st.data(), past_its_lease=st.booleans())
    def a_driver_freezes(self, data: st.DataObject, past_its_lease: bool) -> None:
        """A laptop lid closed, a VM paused, SIGSTOP: wherever it is."""
        driver = data.draw(
            st.sampled_from([d for d in self._running() if d.name not in self.frozen])
        )
        self.world.clock.freeze(driver.name)
        self.frozen.add(driver.name)
        if past_its_lease:
            self.world.outlive_lease()

    @precondition(lambda self: bool(self.frozen))
    @rule(data=st.data())
    def a_driver_wakes(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.frozen)))
        self.world.clock.thaw(name)
        self.frozen.discard(name)

    @rule(seconds=st.sampled_from([1.0, 5.0, LEASE_SECONDS / 2, LEASE_SECONDS + 1]))
    def time_passes(self, seconds: float) -> None:
        self.world.clock.advance(seconds)

    @rule(stack=st.sampled_from(KEYS))
    def a_watchdog_pass(self, stack: str) -> None:
        self.world.watchdog(keys=(stack,))

    @rule(stack=st.sampled_from(KEYS))
    def a_watchdog_pass_cut_short_after_its_claim(self, stack: str) -> None:
        """The color it goes back to is not ready and the pass is nearly out of time: the
        takeover fails after its claim; a later pass must still be able to act."""
        self.world.cloud.ready = {"blue": 0, "green": 0}
        try:
            watch_once(services(self.world.cloud, keys=(stack,)), MemoryJournal(self.world.cloud),
                       lambda _: quiet(), self.world.log.append, self.world.clock,
                       time_left=lambda: 36.0, rebuild=self.world.rebuild)  # fmt: skip
        finally:
            self.world.cloud.ready = {}

    @rule(stack=st.sampled_from(KEYS))
    def an_operator_rolls_back_the_newest(self, stack: str) -> None:
        before = self._statuses()
        if self.world.rollback(keys=(stack,)) == "restored":
            self.rolled_back_successes |= {i for i, s in before.items() if s == "succeeded"}

    @precondition(lambda self: bool(self.world.drivers))
    @rule(data=st.data())
    def a_pipeline_cleans_up_its_own_run(self, data: st.DataObject) -> None:
        driver = data.draw(st.sampled_from(self.world.drivers))
        if driver.deployment is not None and driver.deployment.id in self.world.cloud.items:
            before = self._statuses()
            keys = tuple(driver.deployment.listeners)
            if self.world.rollback(driver.deployment.id, if_moved=True, keys=keys) == "restored":
                self.rolled_back_successes |= {i for i, s in before.items() if s == "succeeded"}

    @rule(key=st.sampled_from(KEYS))
    def pulumi_up_writes_the_stack_configs_split(self, key: str) -> None:
        with self.world.cloud.lock:
            self.world.cloud.weights[key] = dict(self.world.config[key][0])
            self.world.cloud.writes.append((key, dict(self.world.config[key][0])))
            self.pulumi_wrote[key] = len(self.world.cloud.writes)

    def _statuses(self) -> dict[str, str]:
        return {i: item["status"] for i, item in self.world.cloud.items.items()}

    # -- what must always hold ----------------------------------------------------------------

    @invariant()
    def no_restore_writes_a_snapshot_older_than_the_newest_owners(self) -> None:
        cloud = self.world.cloud
        for key, taken, owner in cloud.restores:
            assert owner is not None, (key, taken)
            assert cloud.snapshot_of(owner.deployment, key) == taken, (key, taken, owner)

    @invariant()
    def the_config_follows_only_accepted_saves_of_the_newest_owner(self) -> None:
        for key, (_, why) in self.world.config.items():
            if why == "the stack's first config":
                continue
            deployment_id = why.split()[1]
            item = self.world.cloud.items[deployment_id]
            expected = "succeeded" if why.endswith("succeeded") else "rolled-back"
            assert item["status"] == expected or deployment_id in self.rolled_back_successes, why
            assert key in json.loads(item["doc"])["listeners"], why

    @invariant()
    def a_finished_status_is_never_overwritten(self) -> None:
        seen: dict[str, str] = {}
        for deployment_id, status in self.world.cloud.statuses:
            was = seen.get(deployment_id)
            if was in ("rolled-back", "drilled"):
                assert status == was, self.world.cloud.statuses
            if was == "succeeded" and status != "succeeded":
                assert status == "rolled-back" and deployment_id in self.rolled_back_successes
            if status in ("succeeded", "rolled-back", "drilled"):
                seen[deployment_id] = status

    def teardown(self) -> None:
        world = self.world
        for driver in world.drivers:
            world.finish_driver(driver)
        world.outlive_lease()
        for key in KEYS:
            world.watchdog(keys=(key,))
        self.no_restore_writes_a_snapshot_older_than_the_newest_owners()
        items = {i: json.loads(item["doc"]) for i, item in world.cloud.items.items()}
        assert all(doc["status"] not in ("in-progress", "paused") for doc in items.values()), [
            (i, d["status"]) for i, d in items.items()
        ]
        for key in KEYS:
            owner = world.cloud.owners.get(key)
            if owner is None or owner.deployment not in items:
                assert world.served(key) in (START, world.config[key][0]), key
                continue
            left = final_split(items[owner.deployment], key)
            writes = [i + 1 for i, (k, _) in enumerate(world.cloud.writes) if k == key]
            after_pulumi = bool(writes) and self.pulumi_wrote.get(key) == writes[-1]
            wanted = [left, world.config[key][0]] if after_pulumi else [left]
            assert world.served(key) in wanted, (key, world.served(key), wanted, owner)
        for driver in world.drivers:
            if driver.baton.error is None and driver.deployment is not None:
                assert items[driver.deployment.id]["status"] in (
                    Status.SUCCEEDED,
                    Status.ROLLED_BACK,
                )


TestManyDeployments = ManyDeployments.TestCase
TestManyDeployments.settings = settings(
    max_examples=300,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    database=None,
)
