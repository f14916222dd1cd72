"""The metric analysis: how honest its verdicts are, and what a poll costs, each beside its
floor measured in the same run. Prints one JSON object.

`honesty` (seeded releases, both colors judged after every window as a shift judges them; the
previous test, benchmarks/analysis_before.py, beside the current one, on the same releases):

- false_fail at the error margin (the target erring exactly `maxErrorRateIncrease` points
  above the baseline) and at the latency margin (its p99 exactly 1 + `maxLatencyIncrease
  Percent`/100 times the baseline's), over 10 and over 120 looks, RELEASES releases each
  (target <= ALPHA, 5%); and on identical colors over 120 looks (about 0);
- detection: windows until a target 5 points worse fails, at 50, 100 and 200 requests a
  window on the target (median and p90; target: p90 <= 5 at >= 100 requests, a median no worse
  than the previous test's), and until a p99 twice the baseline's fails (200 requests).
Traffic is 1:9 (the target a tenth of the baseline's requests), baseline errors 1%, request
latencies log-normal (median 100 ms, sigma 0.5) with each window's p99 of its own requests.

`poll` (against one moto server on 127.0.0.1, with the stack created by the Pulumi program
and ten 60 s windows of both colors' ALB metrics in its CloudWatch; medians over repeated
trials): analysis_poll_seconds, one judging poll of the analysis guard (one GetMetricData call
for both colors' three series, then the tests), beside bare_get_metric_data_seconds, one bare
call for the same six series; analysis_poll_ratio is the first over the second (target <= 1.5).
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import numpy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rehearsal.aws import aws_env, moto_server  # noqa: E402
from rehearsal.traffic import Traffic, datums, publish  # noqa: E402

TRIALS = 31
PERIOD = 60
WINDOWS = 10


def poll_cost() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, moto_server() as endpoint:
        os.environ.update(aws_env(endpoint))
        out = Path(tmp) / "outputs.json"
        subprocess.run(
            [sys.executable, "-m", "rehearsal.aws", "--stack", "prod", "--out", str(out)]
            + ["--analysis-period", str(PERIOD)],
            check=True,
            cwd=ROOT,
            env=os.environ,
        )
        from cutover.aws import client
        from cutover.engine.metric_guards import AnalysisGuard
        from cutover.metrics import CloudWatchSource
        from cutover.outputs import analysis_of, load_outputs
        from cutover.service import services_of

        data = json.loads(out.read_text())
        cloudwatch = boto3.client("cloudwatch")
        began = (int(time.time()) // PERIOD - 2 * WINDOWS) * PERIOD
        weights = {"blue": 90, "green": 10}
        rng = random.Random(1)
        publish(
            cloudwatch,
            data["metrics"]["namespace"],
            [
                d
                for i in range(WINDOWS + 1)
                for d in datums(
                    data["metrics"], began + i * PERIOD, PERIOD, weights, Traffic(), rng
                )
            ],
        )
        services = services_of([load_outputs(str(out))])
        outputs = services[0].outputs
        settings = analysis_of(outputs)
        assert outputs.metrics is not None and settings is not None  # an ALB stack's
        now = float(began + WINDOWS * PERIOD)
        queries = CloudWatchSource(outputs.metrics, settings, client("cloudwatch")).queries()
        window = {
            "StartTime": datetime.fromtimestamp(began, UTC),
            "EndTime": datetime.fromtimestamp(now, UTC),
        }

        def bare() -> float:
            started = time.perf_counter()
            cloudwatch.get_metric_data(MetricDataQueries=queries, **window)
            return time.perf_counter() - started

        source = CloudWatchSource(outputs.metrics, settings, client("cloudwatch"))

        def poll() -> float:
            # a step that began `WINDOWS` windows ago, judged at its latest window's end
            sources = [(outputs.name, source, settings)]
            guard = AnalysisGuard(sources, "green", True, float(began), float(began), lambda: now)
            started = time.perf_counter()
            verdict = guard.check()
            elapsed = time.perf_counter() - started
            assert verdict.fresh and verdict.figures["target"]["windows"] == WINDOWS, verdict
            return elapsed

        poll(), bare()  # warm both: connections, imports
        polls, bares = [], []
        for _ in range(TRIALS):  # interleaved, so both see the same machine
            polls.append(poll())
            bares.append(bare())
        analysis, floor = statistics.median(polls), statistics.median(bares)
        return {
            "analysis_poll_seconds": round(analysis, 4),
            "bare_get_metric_data_seconds": round(floor, 4),
            "analysis_poll_ratio": round(analysis / floor, 2),
            "analysis_poll_target": 1.5,
            "windows": WINDOWS,
            "trials": TRIALS,
        }


RELEASES = int(os.environ.get("RELEASES", "1000"))  # seeded releases a case
BASELINE_RATE = 0.01
SHARE = 9  # baseline requests per target request


def _release(
    rng: Any, judge: Any, settings: Any, looks: int, rate: float, latency: float, requests: int
) -> int | None:
    """The window at which `judge` first fails a release (None: never within `looks`)."""
    from cutover.analysis import Window

    target: list[Any] = []
    baseline: list[Any] = []
    for k in range(looks):
        t = float(k * 60)
        n_t, n_b = requests, SHARE * requests
        p99_t = _p99(rng, n_t, 0.1 * latency)
        p99_b = _p99(rng, n_b, 0.1)
        target.append(Window(t, n_t, float(rng.binomial(n_t, rate)), p99_t))
        baseline.append(Window(t, n_b, float(rng.binomial(n_b, BASELINE_RATE)), p99_b))
        if judge(target, baseline, settings, ("green", "blue")).state == "fail":
            return k + 1
    return None


NORMAL = statistics.NormalDist()


def _p99(rng: Any, n: int, median: float) -> float:
    """The p99 of `n` log-normal request latencies (sigma 0.5): their ceil(0.99 n)-th order
    statistic, drawn exactly as a Beta-distributed uniform order statistic."""
    k = math.ceil(0.99 * n)
    u = float(rng.beta(k, n - k + 1))
    return median * math.exp(0.5 * NORMAL.inv_cdf(u))


def honesty(releases: int = RELEASES) -> dict[str, Any]:
    tests = _tests()
    margin_error = BASELINE_RATE + 0.01  # maxErrorRateIncrease 1 point
    margin_latency = 1.5  # maxLatencyIncreasePercent 50
    cases: dict[str, tuple[int, int, float, float, int]] = {
        # figure: (releases, looks, target error rate, target latency factor, requests)
        "false_fail_error_margin_10_looks": (releases, 10, margin_error, 1.0, 200),
        "false_fail_error_margin_120_looks": (releases, 120, margin_error, 1.0, 200),
        "false_fail_latency_margin_10_looks": (releases, 10, BASELINE_RATE, margin_latency, 200),
        "false_fail_latency_margin_120_looks": (releases, 120, BASELINE_RATE, margin_latency, 200),
        "false_fail_identical_120_looks": (releases // 2, 120, BASELINE_RATE, 1.0, 200),
        **{f"detect_5_points_{n}_requests": (releases // 2, 60, BASELINE_RATE + 0.05, 1.0, n)
           for n in (50, 100, 200)},
        "detect_latency_doubled_200_requests": (releases // 2, 60, BASELINE_RATE, 2.0, 200),
    }  # fmt: skip
    jobs = [
        (test, case, seed) for test in tests for case, c in cases.items() for seed in range(c[0])
    ]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor() as pool:
        results = list(pool.map(_one, [(t, c, s, cases[c]) for t, c, s in jobs], chunksize=50))
    found: dict[str, Any] = {test: {} for test in tests}
    for (test, case, _), caught in zip(jobs, results, strict=True):
        found[test].setdefault(case, []).append(caught)
    for test in tests:
        for case, caught in found[test].items():
            if case.startswith("false_fail"):
                found[test][case] = round(sum(c is not None for c in caught) / len(caught), 4)
            else:
                windows = [c or 61 for c in caught]
                found[test][case] = {"median_windows": float(numpy.median(windows)),
                                     "p90_windows": float(numpy.percentile(windows, 90))}  # fmt: skip
    return {"honesty": found, "releases": releases, "alpha": 0.05}


def _tests() -> dict[str, tuple[Any, Any]]:
    import analysis_before
    from cutover_gates.analysis_config import Settings

    from cutover.analysis import judge

    return {
        "previous": (analysis_before.judge, Settings(min_requests=50)),
        "current": (judge, Settings(min_requests=50)),
    }


def _one(job: tuple[str, str, int, tuple[int, int, float, float, int]]) -> int | None:
    """One seeded release of one case under one test (a worker process's unit of work)."""
    test, case, seed, (_, looks, rate, latency, requests) = job
    fn, settings = _tests()[test]
    rng = numpy.random.default_rng([seed, looks, requests, int(rate * 1e4), int(latency * 100)])
    return _release(rng, fn, settings, looks, rate, latency, requests)


def main() -> None:
    print(json.dumps({**honesty(), **poll_cost()}, indent=1))


if __name__ == "__main__":
    main()
