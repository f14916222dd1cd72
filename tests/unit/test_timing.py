"""A shift's timing, checked before anything moves: a bake or verification the enabled
analysis cannot judge, or a deadline the plan cannot meet, is refused naming what would work."""

from __future__ import annotations

import math

import pytest
from cutover_gates.analysis_config import Settings
from hypothesis import given
from hypothesis import strategies as st

from cutover.durations import format_duration, parse_duration
from cutover.timing import deadline_problem, unjudged_problem


@given(st.floats(min_value=0.001, max_value=10 * 86400))
def test_a_duration_said_is_read_back_as_itself(seconds: float) -> None:
    said = format_duration(seconds)
    assert math.isclose(
        parse_duration(said), seconds if seconds < 1 else round(seconds), rel_tol=1e-5
    )


FIVE = Settings(period_seconds=5, delay_seconds=0)
MINUTE = Settings(period_seconds=60, delay_seconds=60)


@pytest.mark.parametrize(
    ("bake", "verify_for", "steps", "drill", "said"),
    [
        (5, 0, 3, False, None),  # each step's bake judges it
        (0, 5, 1, False, None),  # one step, judged by the verification
        (4, 0, 3, False, "--bake 4s ends before the metric analysis judges a step"),
        (0, 0, 1, False, "--bake 0s ends before the metric analysis judges 100%"),
        (4, 5, 2, False, "--bake 4s"),  # the first step would move on unjudged
        (60, 3, 2, False, "--verify-for 3s ends before"),
        (1, 0, 1, True, "judges its step"),
        (1, 60, 1, True, "judges its step"),  # a drill has no verification
    ],
)
def test_a_bake_or_verification_the_analysis_cannot_judge_is_refused(
    bake: float, verify_for: float, steps: int, drill: bool, said: str | None
) -> None:
    problem = unjudged_problem([FIVE], bake, verify_for, steps, drill)
    assert problem is None if said is None else (problem is not None and said in problem)
    if problem:
        assert "give --" in problem and "5s or longer" in problem and "--analysis off" in problem


def test_the_slowest_stack_sets_the_shortest_bake_and_off_judges_nothing() -> None:
    problem = unjudged_problem([FIVE, MINUTE], 100, 0, 2, False)
    assert problem is not None and "give --bake 2m or longer" in problem
    assert unjudged_problem([], 0, 0, 10, False) is None


def test_a_deadline_the_plan_cannot_meet_names_the_shortest_that_can() -> None:
    problem = deadline_problem(30, 3, 10, 5)
    assert problem is not None and "give a --deadline longer than 35s" in problem
    assert deadline_problem(36, 3, 10, 5) is None and deadline_problem(None, 3, 10, 5) is None
