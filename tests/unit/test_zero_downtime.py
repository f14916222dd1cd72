"""Zero downtime at run time (issue 30), in process: what a step needs ready before its weight
is raised (the real shift over the memory edges, tests/harness/world.py), the downtime guard's
judgement and its windows, and the request-level figure in the summary, report and KPIs."""

from __future__ import annotations

import json
import random

from cutover_gates.analysis_config import Settings
from cutover_gates.contract import Status
from hypothesis import given
from hypothesis import strategies as st

from cutover.analysis import window_starts
from cutover.deployment import Deployment, Options
from cutover.downtime import LoadBalancerWindow as LBW
from cutover.downtime import failing_seconds, judge_downtime
from cutover.engine.guard import Verdict, sample_of
from cutover.engine.metric_guards import DowntimeGuard
from cutover.errors import DeploymentFailed
from cutover.fleet import ready_needed, short_for_step
from cutover.metrics import balancer_window
from cutover.outputs import parse_outputs
from cutover.report import kpis, kpis_markdown, report_json, report_markdown
from cutover.summary import Summary
from cutover.timeline import Event, EventType, Sample
from tests.harness.memory import outputs
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


# -- the downtime guard's judgement -------------------------------------------------------------

SETTINGS = Settings(latency_statistic="Average")  # 60 s windows, 50 requests a look, +0.1 point


def served(requests: list[float], failed: list[float], start: float = 6000.0) -> list[LBW]:
    """Consecutive 60 s windows of the load balancer, failing over whole windows."""
    return [
        LBW(start + 60 * i, n, f, ((start + 60 * i, start + 60 * (i + 1)),) if f else ())
        for i, (n, f) in enumerate(zip(requests, failed, strict=True))
    ]


BEFORE = served([1000.0] * 5, [0.0] * 5, start=5700.0)


@given(st.lists(st.integers(50, 100_000), min_size=1, max_size=30))
def test_a_shift_failing_nothing_is_never_failed(requests: list[int]) -> None:
    judged = judge_downtime(served([float(n) for n in requests], [0.0] * len(requests)),
                            BEFORE, SETTINGS)  # fmt: skip
    assert judged.state == "ok" and judged.looks == len(requests)
    assert judged.detail.startswith(f"0 of {sum(requests)} requests failed at the load balancer")


def test_failures_well_above_the_margin_fail_it_saying_both_shares() -> None:
    judged = judge_downtime(served([4000.0], [20.0]), BEFORE, SETTINGS)
    assert judged.state == "fail" and judged.evidence is not None and judged.evidence > 3
    assert judged.detail == (
        "failed requests more than 0.1 points above the share before the shift (20 of 4000 "
        "requests failed at the load balancer (0.500%) over 1 window(s), 1 look(s), against 0 "
        "of 5000 (0.000%) in the 5 window(s) before the shift)"
    )


def test_a_share_as_high_as_before_is_no_failure() -> None:
    before = served([10_000.0] * 5, [50.0] * 5, start=5700.0)  # 0.5% failing all along
    judged = judge_downtime(served([10_000.0] * 10, [50.0] * 10), before, SETTINGS, "the Gateway")
    assert judged.state == "ok" and "requests failed at the Gateway (0.500%)" in judged.detail


def test_too_little_to_judge_is_inconclusive_and_says_why() -> None:
    thin = served([10.0] * 5, [0.0] * 5, start=5700.0)
    assert (
        judge_downtime(served([4000.0], [0.0]), thin, SETTINGS).detail
        == (
            "the load balancer's 5 window(s) before the shift hold 50 requests; the baseline "
            "needs 50"
        )
        or judge_downtime(served([4000.0], [0.0]), thin, SETTINGS).state == "ok"
    )
    empty = served([0.0] * 5, [0.0] * 5, start=5700.0)
    said = judge_downtime(served([4000.0], [0.0]), empty, SETTINGS)
    assert said.state == "inconclusive" and "before the shift hold 0 requests" in said.detail
    quiet = judge_downtime(served([5.0] * 6, [0.0] * 6), BEFORE, SETTINGS)
    assert quiet.state == "inconclusive"
    assert quiet.detail.startswith("too few requests: 6 60s window(s) pooled hold 30 requests")
    pooling = judge_downtime(served([5.0] * 2, [0.0] * 2), BEFORE, SETTINGS)
    assert pooling.state == "ok" and pooling.detail.startswith("pooling: 2 60s window(s)")


def test_impossible_figures_are_inconclusive_never_judged() -> None:
    judged = judge_downtime(served([100.0], [150.0]), BEFORE, SETTINGS)
    assert judged.state == "inconclusive"
    assert "impossible figures (150 5xx of 100 requests" in judged.detail


def test_at_the_margin_judged_after_every_window_it_fails_at_most_alpha() -> None:
    """300 seeded shifts failing exactly 0.1 point more than before, judged after each of 20
    windows: anytime-valid, so about ALPHA of them fail at most, however many looks."""
    rng = random.Random(20261207)
    before = served([20_000.0] * 5, [20.0] * 5, start=5700.0)  # 0.1% before

    def failures(n: int, percent: float) -> float:
        return float(sum(1 for _ in range(n) if rng.random() < percent / 100))

    failed = 0
    for _ in range(300):
        windows: list[LBW] = []
        for i in range(20):
            windows += served([2000.0], [failures(2000, 0.2)], start=6000.0 + 60 * i)
            if judge_downtime(windows, before, SETTINGS).state == "fail":
                failed += 1
                break
    assert failed <= 0.05 * 300 + 6  # ALPHA, with room for the seed's noise


def _spans() -> st.SearchStrategy[list[tuple[float, float]]]:
    return st.lists(
        st.tuples(st.integers(0, 100), st.integers(1, 20)).map(
            lambda p: (float(p[0]), float(p[0] + p[1]))
        ),
        max_size=20,
    )


@given(_spans())
def test_seconds_with_failures_are_the_union_of_their_spans(
    spans: list[tuple[float, float]],
) -> None:
    seconds = {t for start, end in spans for t in range(int(start), int(end))}
    assert failing_seconds(spans) == len(seconds)


@given(
    st.lists(st.tuples(st.integers(0, 500), st.integers(0, 50), st.integers(0, 20),
                       st.integers(0, 30), st.integers(0, 30)), min_size=6, max_size=6)
)  # fmt: skip
def test_a_load_balancer_window_adds_up_its_seconds(
    buckets: list[tuple[int, int, int, int, int]],
) -> None:
    """Six 10 s buckets of a 60 s window: requests, ALB 5xx, rejected connections and each
    color's connection errors, as GetMetricData answers them."""
    found: dict[str, dict[float, float]] = {}
    for i, values in enumerate(buckets):
        ids = ("lb_requests", "lb_errors", "lb_rejected", "blue_connection_errors",
               "green_connection_errors")  # fmt: skip
        for query_id, value in zip(ids, values, strict=True):
            if value:  # AWS reports these only when not 0
                found.setdefault(query_id, {})[6000.0 + 10 * i] = float(value)
    window = balancer_window(found, 6000.0, 60, 10)
    failed = sum(e + r for _, e, r, _, _ in buckets)
    assert window.failed == failed and window.requests >= failed
    assert window.requests == sum(max(n + r, e + r) for n, e, r, _, _ in buckets)
    assert failing_seconds(window.failing) == 10 * sum(1 for _, e, r, _, _ in buckets if e + r)
    assert window.connection_errors == {
        "blue": sum(b for *_, b, _ in buckets), "green": sum(g for *_, g in buckets)
    }  # fmt: skip


# -- the guard, once a window, with the shift's figures ----------------------------------------


class Balancer:
    """A load balancer's windows already read: 1,000 requests a minute, `failed` a window from
    6000 on."""

    def __init__(self, failed: float = 0.0) -> None:
        self.failed, self.asked = failed, []

    def load_balancer(self, start: float, end: float) -> list[LBW]:
        self.asked.append((start, end))
        starts = window_starts(start, end, 60)
        return [
            LBW(t, 1000.0, self.failed if t >= 6000 else 0.0,
                ((t, t + 1.0),) if t >= 6000 and self.failed else (),
                {"green": self.failed if t >= 6000 else 0.0})
            for t in starts
        ]  # fmt: skip


def test_the_guard_judges_each_window_once_and_keeps_the_shifts_counts() -> None:
    source, now = Balancer(failed=2.0), [6030.0]
    guard = DowntimeGuard([("svc", "the load balancer", source, SETTINGS)], 6010.0,
                          lambda: now[0])  # fmt: skip
    assert not guard.check().fresh and source.asked == []  # the first window is not over
    now[0] = 6060.0
    first = guard.check()
    assert first.fresh and first.state == "ok" and first.guard == "downtime"
    assert first.figures == {
        "during": {"windows": 1, "requests": 1000, "failed": 2, "failedPercent": 0.2,
                   "failedSeconds": 1.0},
        "before": {"windows": 5, "requests": 5000, "failed": 0, "failedPercent": 0.0,
                   "failedSeconds": 0.0},
        "connectionErrors": {"blue": 0, "green": 2},
        "looks": 1,
        "evidence": first.figures["evidence"],
        "threshold": 2.996,
        "maxIncrease": 0.1,
    }  # fmt: skip
    assert source.asked == [(6010.0, 6060.0), (5710.0, 6010.0)]  # the baseline, once
    now[0] = 6090.0
    assert not guard.check().fresh and len(source.asked) == 2
    now[0] = 6120.0
    second = guard.check()
    assert second.fresh and second.figures["during"]["requests"] == 2000
    assert len(source.asked) == 3


def test_a_sample_keeps_the_analysis_and_the_downtime_figures_apart() -> None:
    verdicts = [
        Verdict("analysis", "ok", "", figures={"looks": 1}),
        Verdict("downtime", "fail", "", figures={"during": {"failed": 3}}),
        Verdict("targets", "ok", ""),
    ]
    sample = sample_of(verdicts, {"blue": 90, "green": 10}, 6060.0)
    assert sample.analysis == {"state": "ok", "looks": 1}
    assert sample.downtime == {"state": "fail", "during": {"failed": 3}}
    assert sample.ok  # failed requests are counted apart from the serving guards' seconds
    assert Sample.from_json(sample.to_json()) == sample
    repeated = sample_of([Verdict("downtime", "fail", "", False, {"x": 1})], {}, 6061.0)
    assert repeated.downtime is None and "downtime" not in repeated.to_json()


# -- the request-level figure in the summary, the report and the KPIs --------------------------


def _counted(failed: int, requests: int, seconds: float, status: Status) -> Deployment:
    moved = Event(1000.0, EventType.STEP_INTENT, {"index": 0, "weights": {"blue": 90, "green": 10}})
    served = Event(1000.1, EventType.STEP, {"index": 0, "weights": {"blue": 90, "green": 10}})
    during = {"windows": 3, "requests": requests, "failed": failed, "failedSeconds": seconds}
    return Deployment(
        id=f"20261207T1000{failed:02d}Z-00000{failed % 10}", scope="s", listeners=["l"],
        services=["prod/checkout"], options=Options("green", [10, 100]), snapshot={},
        plan=[{"blue": 90, "green": 10}, {"blue": 0, "green": 100}], status=status,
        started_at=999.0, finished_at=1200.0, events=[moved, served],
        samples=[
            Sample(1060.0, {"blue": 90, "green": 10}, True, {"downtime": "ok"},
                   downtime={"state": "ok", "during": {**during, "failed": 0}}),
            Sample(1120.0, {"blue": 90, "green": 10}, True, {"downtime": "ok"},
                   downtime={"state": "ok", "during": during}),
            Sample(1121.0, {"blue": 90, "green": 10}, True, {"downtime": "ok"}),
        ],
    )  # fmt: skip


def test_the_summary_keeps_the_latest_counts_and_old_summaries_read_without_them() -> None:
    d = _counted(3, 12_000, 2.0, Status.SUCCEEDED)
    summary = Summary.of(d)
    assert (summary.failed_requests, summary.total_requests, summary.failed_request_seconds) == (
        3, 12_000, 2.0,
    )  # fmt: skip
    assert Summary.of_document(d.to_json()) == summary
    assert Summary.from_json(summary.to_json()) == summary
    kept = summary.to_json()
    for key in ("totalRequests", "failedRequests", "failedRequestSeconds"):
        kept.pop(key)
    old = Summary.from_json(kept)
    assert old.failed_requests is None and old.total_requests is None


def test_the_report_and_the_kpis_say_the_failed_requests_beside_the_seconds() -> None:
    d = _counted(3, 12_000, 2.0, Status.SUCCEEDED)
    data = report_json(d, [Summary.of(d)])
    assert (data["failedRequests"], data["totalRequests"], data["failedRequestSeconds"]) == (
        3, 12_000, 2.0,
    )  # fmt: skip
    assert [row["at"] for row in data["downtime"]] == ["00:17:40.000", "00:18:40.000"]
    markdown = report_markdown(data, None)
    assert (
        "- Failed requests during the shift (at the load balancer or Gateway itself): 3 of "
        "12,000 (0.025%); 2 s with any failing"
    ) in markdown
    assert "| 00:18:40.000 | blue 90 / green 10 | ok | 3 of 12000 (n/a) | 2.0 |" in markdown
    unmeasured = _counted(0, 0, 0.0, Status.SUCCEEDED)
    unmeasured.samples = []
    summaries = [Summary.of(x) for x in (d, _counted(1, 8000, 1.0, Status.SUCCEEDED), unmeasured)]
    figures = kpis(summaries, days=30)
    assert (figures["failedRequests"], figures["totalRequests"]) == (4, 20_000)
    assert figures["failedRequestSeconds"] == 3.0 and figures["requestsMeasured"] == 2
    assert [r["failedRequests"] for r in figures["perDeployment"]] == [3, 1, None]
    said = kpis_markdown({"since": "x", **figures})
    assert (
        "- Failed requests at the load balancer or Gateway itself: 4 of 20,000 (0.02%); 3 s "
        "with any failing over the 2 deployment(s) that counted them"
    ) in said
    assert "| 3 of 12000 |" in said and "| n/a |" in said
    none = kpis_markdown({"since": "x", **kpis([Summary.of(unmeasured)], days=30)})
    assert "- Failed requests at the load balancer or Gateway itself: not measured" in none


def test_the_kpi_plot_draws_the_seconds_with_failed_requests_beside_the_downtime() -> None:
    from cutover.plot import kpi_figure

    summaries = [Summary.of(_counted(3, 12_000, 2.0, Status.SUCCEEDED)),
                 Summary.of(_counted(0, 8000, 0.0, Status.SUCCEEDED))]  # fmt: skip
    down = kpi_figure({"since": "x", **kpis(summaries, days=30)}).axes[1]
    assert [b.get_height() for b in down.patches] == [0.0, 0.0, 2.0, 0.0]
    assert [t.get_text() for t in down.get_legend().get_texts()] == [
        "no healthy target, or a probe failing", "requests failing at the load balancer or Gateway",
    ]  # fmt: skip


class Replicas:
    """A Kubernetes color with `ready` replicas and one allowed unavailable."""

    unit = "ready replicas"
    disruptions_allowed = 1

    def __init__(self, ready: int) -> None:
        self.count = ready

    def ready(self, color: str) -> int:
        return self.count


def test_on_kubernetes_a_step_needs_its_share_of_what_the_budget_keeps_ready() -> None:
    data = outputs().to_json()
    for color in ("blue", "green"):
        data["services"][color] = {**data["services"][color], "capacity": 6}
    six = parse_outputs(data, "memory")
    full = {"blue": 0, "green": 100}
    assert short_for_step(six, Replicas(5), "green", full) is None  # the budget allows one
    assert short_for_step(six, Replicas(4), "green", full) == (
        "prod/checkout: green has 4 ready replicas; blue 0 / green 100 needs 5 (100% of the 5 "
        "of its capacity 6 its disruption budget keeps ready, rounded up)"
    )
    assert short_for_step(six, Replicas(2), "green", {"blue": 50, "green": 50}) is not None
    assert short_for_step(six, Replicas(3), "green", {"blue": 50, "green": 50}) is None
