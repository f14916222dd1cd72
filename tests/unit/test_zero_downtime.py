"""Zero downtime at run time (issue 30), in process: what a step needs ready before its weight
is raised, with the real shift over the memory edges (tests/harness/world.py)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from cutover.errors import DeploymentFailed
from cutover.fleet import ready_needed
from tests.harness.world import START, World


@given(st.integers(1, 500), st.integers(0, 999), st.integers(1, 999))
def test_a_step_needs_its_share_of_the_capacity_rounded_up_and_one_at_least(
    capacity: int, weight: int, rest: int
) -> None:
    total = weight + rest
    need = ready_needed(capacity, weight, total)
    if weight == 0:
        assert need == 0
        return
    assert 1 <= need <= capacity
    assert need * total >= capacity * weight  # enough for the share
    assert need == 1 or (need - 1) * total < capacity * weight  # and no more than enough
    assert ready_needed(capacity, weight + 1, total + 1) >= need  # more weight, never fewer


def test_whole_shares_are_exact() -> None:
    assert [ready_needed(10, p, 100) for p in (0, 1, 10, 70, 100)] == [0, 1, 1, 7, 10]
    assert [ready_needed(6, p, 100) for p in (10, 50, 51, 100)] == [1, 3, 4, 6]


def _bake_at(world: World, weights: dict[str, int], limit: int = 500) -> None:
    driver = world.drivers[-1]
    for _ in range(limit):
        if world.served() == weights:
            return
        assert driver.baton.step() is not None, "the driver finished first"
    raise AssertionError(f"never served {weights}")


def test_a_weight_is_never_raised_onto_fewer_ready_than_the_step_needs() -> None:
    """Capacity 2: the 50% step needs 1 ready instance, the 100% step 2. One goes
    while the first step bakes (within the bake guard's floor): the shift gives traffic back
    instead of writing 100%, naming the color, its count and the need."""
    world = World()
    driver = world.driver([50, 100], bake=20.0)
    _bake_at(world, {"blue": 50, "green": 50})
    world.cloud.ready["green"] = 1
    world.finish_driver(driver)
    assert isinstance(driver.baton.error, DeploymentFailed)
    assert world.served() == START
    assert {"blue": 0, "green": 100} not in [w for _, w in world.cloud.writes]
    failure = json.loads(world.stored(driver)["doc"])["failure"]
    assert failure["reason"] == "capacity"
    assert failure["detail"] == (
        "prod/checkout: green has 1 ready instances; blue 0 / green 100 needs 2 (100% of its "
        "capacity 2, rounded up); its weight was not raised"
    )


def test_a_step_within_what_is_ready_goes_on() -> None:
    world = World()
    world.cloud.ready["green"] = 1  # enough for 50%, and within the bake guard's floor
    driver = world.driver([50], bake=0.0)
    world.finish_driver(driver)
    assert driver.baton.error is None
    assert world.served() == {"blue": 50, "green": 50}
