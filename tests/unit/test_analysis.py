"""The metric analysis's judgement (pure) and its config: windows in, a verdict out."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cutover.analysis import Settings, Window, judge, window_starts
from cutover.errors import ConfigError
from tests.harness.program_runs import kubernetes_config, prod_config
from tests.unit.test_config import parse

NAMES = ("green", "blue")
SETTINGS = Settings(latency_statistic="Average")


def windows(rates: list[float], requests: float = 1000, latency: float = 0.1) -> list[Window]:
    return [Window(60.0 * i, requests, requests * r / 100, latency) for i, r in enumerate(rates)]


def test_a_target_five_points_worse_fails_within_three_windows() -> None:
    baseline = windows([1.0, 1.2, 0.9])
    target = windows([6.0, 6.1, 5.9])
    assert judge(target[:2], baseline[:2], SETTINGS, NAMES).state == "ok"  # not yet significant
    verdict = judge(target, baseline, SETTINGS, NAMES)
    assert verdict.state == "fail"
    assert "error rate more than 1 points above blue's" in verdict.detail
    assert verdict.figures["target"]["errorRate"] == pytest.approx(6.0, abs=0.01)
    assert verdict.figures["baseline"]["errorRate"] == pytest.approx(1.033, abs=0.01)
    assert verdict.figures["p"]["errorRate"] <= 0.05


def test_a_target_within_the_margin_never_fails_however_many_windows_agree() -> None:
    baseline = windows([1.0] * 30)
    target = windows([1.9] * 30)  # 0.9 points worse, every window: inside the 1 point margin
    assert judge(target, baseline, SETTINGS, NAMES).state == "ok"


def test_slower_latency_fails_and_says_the_statistic() -> None:
    baseline = windows([1.0] * 4, latency=0.100)
    target = windows([1.0] * 4, latency=0.200)  # +100% over an allowed +50%
    verdict = judge(target, baseline, SETTINGS, NAMES)
    assert verdict.state == "fail"
    assert "Average latency more than 50% above blue's" in verdict.detail
    within = judge(windows([1.0] * 4, latency=0.140), baseline, SETTINGS, NAMES)
    assert within.state == "ok"


def test_too_few_requests_in_the_latest_window_is_inconclusive_not_a_failure() -> None:
    baseline = windows([1.0, 1.0, 1.0])
    target = windows([6.0, 6.0]) + windows([50.0], requests=20)[0:1]
    verdict = judge(target, baseline, SETTINGS, NAMES)
    assert verdict.state == "inconclusive"
    assert "too few requests in the last 60s window (green 20; needs 50 on each color)" in (
        verdict.detail
    )
    assert judge([], baseline, SETTINGS, NAMES).state == "inconclusive"


def test_a_window_of_no_errors_on_both_colors_is_ok() -> None:
    assert judge(windows([0.0] * 5), windows([0.0] * 5), SETTINGS, NAMES).state == "ok"


def noisy(rng: random.Random, count: int, rate: float, n: int) -> list[Window]:
    """`n` windows of `count` requests erring at `rate`, with binomial noise."""
    spread = (count * rate * (1 - rate)) ** 0.5
    errors = (max(0, round(rng.gauss(count * rate, spread))) for _ in range(n))
    return [Window(60.0 * i, count, e, 0.1) for i, e in enumerate(errors)]


def test_noise_alone_rarely_fails_a_healthy_target_judged_after_every_window() -> None:
    """600 seeded healthy shifts: both colors at the same true error rate (0.5% to 5%), the
    target with a tenth of the requests (50 to 2,000 a window), binomial noise, judged after
    each of 3 to 10 windows as the guard judges them. False rollbacks: at most 0.5%."""
    false = 0
    for seed in range(600):
        rng = random.Random(seed)
        rate = rng.choice([0.5, 1, 2, 3, 4, 5]) / 100
        requests, n = rng.choice([500, 560, 1000, 5000, 20000]), rng.randint(3, 10)
        target, baseline = noisy(rng, requests // 10, rate, n), noisy(rng, requests, rate, n)
        judged = (judge(target[:k], baseline[:k], SETTINGS, NAMES) for k in range(1, n + 1))
        false += any(j.state == "fail" for j in judged)
    assert false <= 3


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(50, 50_000), st.floats(0, 1), st.floats(0.001, 5)),
        min_size=1,
        max_size=12,
    ),
    st.floats(0.01, 1),
)
def test_a_target_no_worse_than_its_baseline_never_fails(
    baseline_windows: list[tuple[int, float, float]], share: float
) -> None:
    """Whatever the windows, a target whose every window errs and lags no more than the
    baseline's (on any share of the requests) is never failed."""
    baseline = [Window(60.0 * i, n, n * e, lat) for i, (n, e, lat) in enumerate(baseline_windows)]
    target = [Window(w.start, max(50, round(w.requests * share)), 0, 0.0) for w in baseline]
    target = [
        Window(t.start, t.requests, t.requests * b.errors / b.requests, b.latency)
        for t, b in zip(target, baseline, strict=True)
    ]
    assert judge(target, baseline, SETTINGS, NAMES).state != "fail"


def test_window_starts_are_aligned_and_complete() -> None:
    assert window_starts(125.0, 300.0, 60) == [120.0, 180.0, 240.0]
    assert window_starts(125.0, 179.9, 60) == []
    assert window_starts(0.0, 3.5, 1) == [0.0, 1.0, 2.0]


def test_settings_round_trip_and_malformed_output_is_named() -> None:
    settings = Settings(period_seconds=120, prometheus={"url": "http://p:9090"})
    assert Settings.from_json(settings.to_json()) == settings
    assert Settings(latency_statistic="p99.9").quantile == pytest.approx(0.999)
    assert Settings(latency_statistic="Average").quantile is None
    with pytest.raises(ValueError, match="latencyStatistic 'median'"):
        Settings.from_json({"latencyStatistic": "median"})
    with pytest.raises(ValueError, match="wrong type"):
        Settings.from_json({"periodSeconds": "often"})


def test_production_enables_the_analysis_with_ten_minutes_of_verification() -> None:
    config = parse(prod_config())
    assert config.analysis.enabled and config.analysis.verify_minutes == 10
    assert config.analysis.period_seconds == 60 and config.analysis.latency_statistic == "p99"
    staging = {k: v for k, v in prod_config().items() if k != "cutover:analysis"}
    staging["cutover:production"] = False
    off = parse(staging, stack="staging").analysis
    assert not off.enabled and off.verify_minutes == 0


BAD_ANALYSIS: list[tuple[dict[str, Any], str]] = [
    ({"periodSeconds": 30}, "cutover:analysis.periodSeconds: got 30; expected a multiple of 60"),
    ({"latencyStatistic": "median"}, "cutover:analysis.latencyStatistic: got 'median'"),
    ({"maxErrorRateIncrease": 0}, "cutover:analysis.maxErrorRateIncrease: got 0"),
    ({"minRequests": 0}, "cutover:analysis.minRequests: got 0"),
    ({"verifyMinutes": -1}, "cutover:analysis.verifyMinutes: got -1"),
    ({"prometheus": {"url": "http://p"}}, "cutover:analysis.prometheus: got {'url'"),
    ({"enabled": "yes please"}, "cutover:analysis.enabled: got 'yes please'"),
]


@pytest.mark.parametrize(("analysis", "message"), BAD_ANALYSIS)
def test_bad_analysis_settings_are_named(analysis: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse({**prod_config(), "cutover:analysis": analysis})
    assert str(caught.value).startswith(message)


def test_a_gateway_stack_needs_prometheus_when_the_analysis_is_on() -> None:
    config = kubernetes_config()
    assert parse(config).analysis.prometheus == {"url": "http://prometheus.monitoring.svc:9090"}
    config["cutover:analysis"] = {"periodSeconds": 15}
    with pytest.raises(ConfigError, match=r"cutover:analysis.prometheus: got None; expected \{url"):
        parse(config)
    config["cutover:analysis"] = {"enabled": False}
    assert not parse(config).analysis.enabled
    bad_query = {"prometheus": {"url": "http://p:9090", "queries": {"rps": "up"}}}
    config["cutover:analysis"] = bad_query
    with pytest.raises(ConfigError, match="cutover:analysis.prometheus.queries.rps"):
        parse(config)


class Recorded:
    """Figures already read from a metric source: every window has 1,000 requests a color."""

    def __init__(self) -> None:
        self.asked: list[tuple[float, float]] = []

    def windows(self, start: float, end: float) -> dict[str, list[Window]]:
        self.asked.append((start, end))
        starts = window_starts(start, end, 60)
        return {c: windows([1.0] * len(starts)) for c in ("blue", "green")}


def test_a_window_is_judged_once_and_only_after_its_figures_are_published() -> None:
    from cutover.guard import AnalysisGuard

    source, now = Recorded(), [6000.0]
    delayed = Settings(latency_statistic="Average", delay_seconds=60)
    guard = AnalysisGuard([("svc", source, delayed)], "green", True, 6000.0, 5000.0,
                          lambda: now[0])  # fmt: skip
    now[0] = 6090.0  # the step's first window ended 30 s ago: not yet published
    assert not guard.check().fresh and source.asked == []
    now[0] = 6120.0
    first = guard.check()
    assert first.fresh and first.state == "ok" and first.figures["target"]["windows"] == 1
    now[0] = 6150.0  # the same window again: repeated, not counted again
    assert not guard.check().fresh and len(source.asked) == 1


def test_publishing_delay_defaults_follow_the_metric_source() -> None:
    assert parse(prod_config()).analysis.delay_seconds == 60  # CloudWatch: about a minute
    assert parse(kubernetes_config()).analysis.delay_seconds == 0  # Prometheus: next scrape


def test_the_default_prometheus_queries_read_every_figure() -> None:
    from cutover.analysis import QUERY_NAMES
    from cutover.metrics import DEFAULT_QUERIES

    assert tuple(DEFAULT_QUERIES) == QUERY_NAMES
    assert all("$namespace" in q and "$service" in q for q in DEFAULT_QUERIES.values())
