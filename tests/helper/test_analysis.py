"""The metric analysis against moto's CloudWatch: the target judged against the baseline from
the ALB's per-target-group series, through the real CLI and through the guard itself."""

from __future__ import annotations

import contextlib
import json
import random
import re
from collections.abc import Iterator
from typing import Any

import pytest

from cutover.deployment import Options
from cutover.engine.metric_guards import analysis_guard
from cutover.outputs import load_outputs
from cutover.service import services_of
from rehearsal.aws import aws_env
from rehearsal.traffic import LiveTraffic, Traffic, datums, publish
from tests.harness.aws_stack import AwsStack

SERVICE = "metered"
PERIOD = 2  # seconds a window (an ALB's are 60; a rehearsal writes its metrics every 0.25 s)


@pytest.fixture
def metered(aws: AwsStack) -> AwsStack:
    aws.add_service(SERVICE, analysis_period=PERIOD)
    return aws


@contextlib.contextmanager
def live(aws: AwsStack, traffic: Traffic, seed: int = 7) -> Iterator[LiveTraffic]:
    """Traffic published from now on, once a whole window of it is in CloudWatch (a shift's
    preflight reads today's request rate there)."""
    with LiveTraffic(
        aws.client("cloudwatch"), aws.client("elbv2"), aws.data[SERVICE], traffic, seed
    ) as running:
        running.wait_published(2 * PERIOD)
        yield running


def shift(aws: AwsStack, *extra: str) -> list[str]:
    return aws.args("shift", "--to", "green", *aws.gate_args(), *extra, service=SERVICE)


def test_a_target_five_points_worse_is_rolled_back_within_three_looks(metered: AwsStack) -> None:
    bad = Traffic(per_second=2000, error_percent={"blue": 1.0, "green": 6.0})
    with live(metered, bad):
        result = metered.cutover(
            *shift(metered, "--steps", "10,100", "--bake", "30s", "--interval", "0.25s")
        )
    assert result.returncode == 1, result.stderr
    assert metered.served(SERVICE) == {"blue": 100, "green": 0}
    (doc,) = metered.deployments()
    assert doc["failure"]["reason"] == "guard failed"
    assert doc["failure"]["detail"].startswith("analysis: green error rate more than 1 point")
    judged = [s["analysis"] for s in doc["samples"] if s.get("analysis")]
    assert judged[-1]["state"] == "fail" and judged[-1]["looks"] <= 3
    assert (
        judged[-1]["metrics"]["errorRate"]["evidence"]
        >= judged[-1]["metrics"]["errorRate"]["threshold"]
    )
    assert judged[-1]["target"]["errorRate"] > 4 > judged[-1]["baseline"]["errorRate"]
    assert "Metric analysis: green against the other color per 2s window" in result.stdout


def test_load_balancer_errors_rising_during_the_shift_roll_it_back(metered: AwsStack) -> None:
    """Green's targets refuse 5% of their connections, so the ALB answers those with its own
    502s: the analysis (targets' 5xx, color against color) sees nothing, the downtime guard
    (the load balancer's own failures against its windows before the first write) does."""
    refusing = Traffic(per_second=2000, elb_error_percent={"blue": 0.0, "green": 5.0})
    with live(metered, refusing):
        result = metered.cutover(
            *shift(metered, "--steps", "10,100", "--bake", "30s", "--interval", "0.25s")
        )
    assert result.returncode == 1, result.stderr
    assert metered.served(SERVICE) == {"blue": 100, "green": 0}
    assert "downtime guard: requests failing at the load balancer" in result.stdout
    (doc,) = metered.deployments()
    assert doc["failure"]["reason"] == "guard failed"
    assert doc["failure"]["detail"].startswith(
        "downtime: failed requests more than 0.1 points above the share before the shift ("
    ), doc["failure"]["detail"]
    assert all(s["guards"].get("analysis") != "fail" for s in doc["samples"])
    judged = [s["downtime"] for s in doc["samples"] if s.get("downtime")]
    last = judged[-1]
    assert last["state"] == "fail" and last["evidence"] >= last["threshold"]
    assert last["during"]["failed"] > 0 and last["during"]["failedSeconds"] > 0
    assert last["before"]["failed"] == 0 and last["before"]["requests"] > 0
    assert last["connectionErrors"]["green"] > 0 == last["connectionErrors"]["blue"]
    figures = _report(metered, doc["id"])
    assert figures["failedRequests"] == last["during"]["failed"] > 0
    assert figures["totalRequests"] == last["during"]["requests"]
    assert figures["downtime"][-1]["state"] == "fail"
    kpis = metered.cutover(*metered.args("kpis", "--output", "json", service=SERVICE))
    assert json.loads(kpis.stdout)["failedRequests"] == last["during"]["failed"], kpis.stderr


def test_a_clean_shift_is_left_alone_and_counts_no_failed_request(metered: AwsStack) -> None:
    with live(metered, Traffic(per_second=2000)) as running:
        running.wait_published(8 * PERIOD)  # the windows before the shift: this traffic's
        result = metered.cutover(
            *shift(metered, "--steps", "10,100", "--bake", "8s", "--interval", "0.25s")
        )
    assert result.returncode == 0, result.stderr
    (doc,) = metered.deployments()
    judged = [s["downtime"] for s in doc["samples"] if s.get("downtime")]
    assert len(judged) >= 6 and {j["state"] for j in judged} == {"ok"}
    assert judged[-1]["during"]["failed"] == 0 and judged[-1]["during"]["requests"] >= 10_000
    assert judged[-1]["before"]["failed"] == 0 and judged[-1]["before"]["requests"] > 0
    report = metered.cutover(*metered.args("report", "--out", str(metered.tmp), service=SERVICE))
    assert report.returncode == 0, report.stderr
    markdown = (metered.tmp / f"deployment-{doc['id']}.md").read_text()
    total = judged[-1]["during"]["requests"]
    assert (
        "- Failed requests during the shift (at the load balancer or Gateway itself): 0 of "
        f"{total:,} (0%); 0 s with any failing"
    ) in markdown
    assert "## Downtime guard" in markdown
    kpis = metered.cutover(*metered.args("kpis", service=SERVICE))
    assert f"- Failed requests at the load balancer or Gateway itself: 0 of {total:,} (0%)" in (
        kpis.stdout
    )


def _report(aws: AwsStack, deployment: str) -> dict[str, Any]:
    """`cutover report --output json` of `deployment`, as written."""
    result = aws.cutover(*aws.args("report", "--deployment", deployment, "--output", "json",
                                   "--out", str(aws.tmp), service=SERVICE))  # fmt: skip
    assert result.returncode == 0, result.stderr
    return dict(json.loads((aws.tmp / f"deployment-{deployment}.json").read_text()))


def test_a_plan_whose_first_step_cannot_be_judged_at_todays_rate_is_refused(
    metered: AwsStack,
) -> None:
    quiet = Traffic(per_second=20)  # 2 requests a 2 s window reach green at 5%
    with live(metered, quiet) as running:
        # today's rate, in CloudWatch: a whole window of quiet after the previous test's traffic
        running.wait_published(3 * PERIOD)
        result = metered.cutover(*shift(metered, "--steps", "5,100", "--bake", "10s"))
    assert result.returncode == 2, result.stderr
    assert re.search(rf"{SERVICE}: at \d+(\.\d+)? requests/s", result.stderr), result.stderr
    assert "a first step of 5% sends the target" in result.stderr
    assert "what would work: a first step of" in result.stderr
    assert metered.served(SERVICE) == {"blue": 100, "green": 0} and not metered.deployments()


def test_traffic_that_dries_up_mid_shift_turns_inconclusive_and_gives_traffic_back(
    metered: AwsStack,
) -> None:
    busy = Traffic(per_second=2000)
    with live(metered, busy) as running:
        process = metered.spawn(*shift(metered, "--steps", "10,100", "--bake", "60s",
                                       "--interval", "0.25s", "--max-inconclusive", "1"))  # fmt: skip
        metered.wait_for(
            lambda: any(e["type"] == "step" for d in metered.deployments() for e in d["events"]),
            what="the first step",
        )
        running.traffic.per_second = 1  # a look now needs far more than five windows
        out, err = process.communicate(timeout=90)
    assert process.returncode == 1, err
    (doc,) = metered.deployments()
    assert doc["failure"]["reason"] == "guards inconclusive"
    assert "2 verdicts in a row: analysis: too few requests: " in doc["failure"]["detail"]
    assert "window(s) pooled hold green" in doc["failure"]["detail"]
    assert metered.served(SERVICE) == {"blue": 100, "green": 0}


def test_an_enabled_analysis_the_outputs_cannot_feed_is_refused_before_anything_moves(
    metered: AwsStack,
) -> None:
    data = json.loads(metered.outputs[SERVICE].read_text())
    del data["metrics"]  # an ALB stack's outputs as an older program wrote them
    data["analysis"]["periodSeconds"] = 60
    blind = metered.tmp / "no-metrics.json"
    blind.write_text(json.dumps(data))
    result = metered.cutover("shift", "--to", "green", "--steps", "10,100", "--bake", "60s",
                             *metered.gate_args(), "--outputs", str(blind), "--journal",
                             metered.journal())  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "cutover:analysis is enabled but the stack has no output `metrics`" in result.stderr
    assert metered.served(SERVICE) == {"blue": 100, "green": 0} and not metered.deployments()


def test_a_probe_that_fails_before_the_shift_moves_nothing(metered: AwsStack) -> None:
    result = metered.cutover(
        *shift(metered, "--steps", "10,100", "--bake", "0s", "--analysis", "off",
               "--probe", "http://unresolvable.invalid/health")
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "probe guard fail before any traffic moved: http://unresolvable.invalid/health" in (
        result.stderr
    )
    assert metered.served(SERVICE) == {"blue": 100, "green": 0} and not metered.deployments()


def test_analysis_off_is_said_and_journaled(metered: AwsStack) -> None:
    bad = Traffic(per_second=2000, error_percent={"blue": 1.0, "green": 6.0})
    with live(metered, bad):
        result = metered.cutover(
            *shift(metered, "--steps", "10,100", "--bake", "5s", "--interval", "0.25s"),
            "--analysis",
            "off",
        )
    assert result.returncode == 0, result.stderr
    assert "Metric analysis off for this shift (--analysis off)." in result.stdout
    (doc,) = metered.deployments()
    assert doc["options"]["analysis"] is False
    assert not any(s.get("analysis") for s in doc["samples"])


def test_verification_at_100_percent_rolls_back_a_target_that_fails_there(
    metered: AwsStack,
) -> None:
    """At 100% the baseline is the other color's windows before the shift began."""
    traffic = Traffic(per_second=2000)
    with live(metered, traffic) as running:
        running.wait_published(4 * PERIOD)  # blue's windows before the shift: the baseline
        process = metered.spawn(*shift(metered, "--steps", "100", "--bake", "0s",
                                       "--interval", "0.25s", "--verify-for", "30s"))  # fmt: skip
        metered.wait_for(
            lambda: any(
                e["type"] == "verifying" for d in metered.deployments() for e in d["events"]
            ),
            what="verification",
        )
        running.traffic.error_percent["green"] = 8.0
        out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    (doc,) = metered.deployments()
    assert doc["failure"]["detail"].startswith("analysis: green error rate")
    assert metered.served(SERVICE) == {"blue": 100, "green": 0}
    assert "Verifying blue 0 / green 100 for 30s under every guard." in out


def test_a_seeded_batch_of_30_healthy_shifts_has_no_false_rollback(
    metered: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 shifts of 10% -> 50% -> 100%, five 60 s windows a step (the production period),
    both colors at a 1% error rate with binomial noise: the guard, reading GetMetricData, judges
    every window ok. The series are written days in the past, judged on a clock set there."""
    for key, value in aws_env(metered.endpoint).items():
        monkeypatch.setenv(key, value)
    data = json.loads(metered.outputs[SERVICE].read_text())
    data["analysis"]["periodSeconds"] = period = 60
    path = metered.tmp / "production-period.json"
    path.write_text(json.dumps(data))
    services = services_of([load_outputs(str(path))])
    metrics = data["metrics"]
    cloudwatch = metered.client("cloudwatch")
    rng = random.Random(20261127)
    traffic = Traffic(per_second=40)  # 2,400 requests a minute; 240 at the 10% step
    steps = [{"blue": 90, "green": 10}, {"blue": 50, "green": 50}, {"blue": 0, "green": 100}]
    verdicts = []
    now = [0.0]  # the clock the guard reads
    for n in range(30):
        began = (1_700_000_000 // period + n * 40) * period  # a day of 2023, a shift per 40 min
        timeline = [({"blue": 100, "green": 0}, began - 5 * period + i * period) for i in range(5)]
        timeline += [
            (w, began + (5 * i + j) * period) for i, w in enumerate(steps) for j in range(5)
        ]
        found = [d for w, t in timeline for d in datums(metrics, t, period, w, traffic, rng)]
        publish(cloudwatch, metrics["namespace"], found)
        for i, weights in enumerate(steps):
            now[0] = float(began + 5 * i * period)
            guard = analysis_guard(services, Options("green", [10, 50, 100]), weights, began,
                                   lambda: now[0])  # fmt: skip
            assert guard is not None
            for _ in range(5):
                now[0] += period
                verdicts.append(guard.check())
    assert len(verdicts) == 30 * 15 and all(v.fresh for v in verdicts)
    assert [v.detail for v in verdicts if v.state != "ok"] == []


def test_one_get_metric_data_call_asks_for_both_colors_three_series() -> None:
    """The guard's GetMetricData call asks for both colors' three series at once."""
    from cutover_gates.analysis_config import Settings
    from cutover_gates.output_shapes import AlbMetrics

    from cutover.metrics import CloudWatchSource

    metrics = AlbMetrics("AWS/ApplicationELB", "app/lb/1",
                         {"blue": "targetgroup/b/1", "green": "targetgroup/g/2"}, 60)  # fmt: skip
    queries = CloudWatchSource(metrics, Settings(latency_statistic="p99"), None).queries()
    assert [(q["Id"], q["MetricStat"]["Metric"]["MetricName"], q["MetricStat"]["Stat"])
            for q in queries] == [
        ("blue_requests", "RequestCount", "Sum"),
        ("blue_errors", "HTTPCode_Target_5XX_Count", "Sum"),
        ("blue_latency", "TargetResponseTime", "p99"),
        ("green_requests", "RequestCount", "Sum"),
        ("green_errors", "HTTPCode_Target_5XX_Count", "Sum"),
        ("green_latency", "TargetResponseTime", "p99"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("latencyStatistic", "median", "got 'median'; expected p50 to p99.9, Average or Maximum"),
        ("periodSeconds", True, "got True; expected a whole number from 1 to 3600"),
        ("maxErrorRateIncrease", -1, "got -1; expected a number from 0.01 to 100"),
        ("enabled", "sometimes", "got 'sometimes'; expected true or false"),
    ],
)
def test_a_malformed_analysis_output_is_named_and_nothing_moves(
    metered: AwsStack, key: str, value: object, said: str
) -> None:
    """The helper reads the exported settings by the program's own declaration."""
    data = json.loads(metered.outputs[SERVICE].read_text())
    data["analysis"][key] = value
    bad = metered.tmp / "bad-outputs.json"
    bad.write_text(json.dumps(data))
    result = metered.cutover(
        "shift", "--to", "green", *metered.gate_args(), "--outputs", str(bad),
        "--journal", metered.journal(), "--steps", "100",
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: --outputs {bad}: output 'analysis': analysis.{key}: {said}"
    )
    assert metered.served(SERVICE) == {"blue": 100, "green": 0}
    assert metered.deployments() == []
