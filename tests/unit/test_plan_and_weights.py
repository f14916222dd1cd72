"""Weight plans, steps, durations and weight checks: pure functions, in process."""

from __future__ import annotations

import pytest
from cutover_gates.contract import COLORS, digest_of, other_color, parse_color, share
from hypothesis import given
from hypothesis import strategies as st

from cutover.durations import parse_duration
from cutover.engine.plan import STRATEGIES, parse_steps, plan_shift
from cutover.weights import check_weights, weights_for

weights = st.fixed_dictionaries({"blue": st.integers(0, 999), "green": st.integers(0, 999)}).filter(
    lambda w: sum(w.values()) > 0
)
steps = st.lists(st.integers(1, 99), unique=True).map(lambda s: sorted(s) + [100])


@given(weights, st.sampled_from(COLORS), steps)
def test_a_plan_only_rises_towards_the_target_and_ends_on_it(
    start: dict[str, int], target: str, percents: list[int]
) -> None:
    plan = plan_shift(start, parse_color(target), percents)
    shares = [w[target] for w in plan]
    assert shares == sorted(shares)
    assert all(s > 100 * share(start, target) for s in shares)
    assert all(sum(w.values()) == 100 for w in plan)
    if share(start, target) < 1:
        assert plan[-1] == {target: 100, other_color(parse_color(target)): 0}


def test_a_plan_skips_steps_at_or_below_the_current_share() -> None:
    plan = plan_shift({"blue": 70, "green": 30}, "green", [10, 30, 50, 100])
    assert plan == [{"green": 50, "blue": 50}, {"green": 100, "blue": 0}]


def test_a_plan_from_the_target_serving_everything_is_empty() -> None:
    assert plan_shift({"blue": 0, "green": 100}, "green", [50, 100]) == []


@given(steps)
def test_steps_parse_back_from_their_text(percents: list[int]) -> None:
    assert parse_steps(",".join(map(str, percents))) == percents


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("", "each step must be 1-100"),
        ("10,x", "expected increasing percentages"),
        ("50,10,100", "steps must increase"),
        ("10,10,100", "steps must increase"),
        ("10,50", "the last step must be 100"),
        ("0,100", "each step must be 1-100"),
        ("10,101", "each step must be 1-100"),
    ],
)
def test_bad_steps_say_what_is_expected(text: str, phrase: str) -> None:
    with pytest.raises(ValueError, match=phrase):
        parse_steps(text)


def test_every_strategy_is_a_valid_step_list() -> None:
    for percents in STRATEGIES.values():
        assert parse_steps(",".join(map(str, percents))) == percents


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("5m", 300),
        ("1h30m", 5400),
        ("2d", 172800),
        ("500ms", 0.5),
        ("0.5s", 0.5),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m5", "1h 30m", "-5s", "5m30"])
def test_bad_durations_name_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match="expected e.g. 30s, 5m"):
        parse_duration(text)


@given(st.integers(0, 100), st.sampled_from(COLORS))
def test_weights_for_give_the_rest_to_the_other_color(percent: int, color: str) -> None:
    w = weights_for(parse_color(color), percent)
    assert w[color] == percent and sum(w.values()) == 100


@pytest.mark.parametrize(
    ("given_weights", "phrase"),
    [
        ({"blue": 0, "green": 0}, "sum to zero"),
        ({"blue": 1000, "green": 0}, "out of range"),
        ({"blue": -1, "green": 5}, "out of range"),
        ({"blue": True, "green": 5}, "out of range"),
        ({"blue": 5}, "exactly blue and green"),
        ({"blue": 5, "green": 5, "red": 1}, "exactly blue and green"),
    ],
)
def test_weight_checks_refuse_what_would_serve_nothing_or_more(
    given_weights: dict[str, int], phrase: str
) -> None:
    with pytest.raises(ValueError, match=phrase):
        check_weights(given_weights)


@given(weights)
def test_valid_weights_pass_unchanged(w: dict[str, int]) -> None:
    assert check_weights(w) == w


def test_colors_digests_and_shares_of_the_contract() -> None:
    assert parse_color("blue") == "blue"
    with pytest.raises(ValueError, match="expected blue or green"):
        parse_color("purple")
    assert digest_of("repo/app@sha256:" + "a" * 64) == "sha256:" + "a" * 64
    assert digest_of("repo/app:1.0") == ""
    assert share({"blue": 0, "green": 0}, "blue") == 0.0
    assert share({"blue": 1, "green": 3}, "green") == 0.75
