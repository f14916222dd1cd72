"""The metric analysis's cost per poll, beside its floor measured in the same run.

Against one moto server on 127.0.0.1, with the stack created by the Pulumi program
(rehearsal.aws) and ten 60 s windows of both colors' ALB metrics written into its CloudWatch.
Medians over repeated trials. Prints one JSON object:

- analysis_poll_seconds: one judging poll of the analysis guard (one GetMetricData call for
  both colors' three series over the step's windows, then the rank tests);
- bare_get_metric_data_seconds: one bare boto3 GetMetricData call asking for the same six
  series over the same windows;
- analysis_poll_ratio: the first over the second (target <= 1.5);
- scipy_import_seconds: the one-time cost of the first judgement in a shift process.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rehearsal.aws import aws_env, moto_server  # noqa: E402
from rehearsal.traffic import Traffic, datums, publish  # noqa: E402

TRIALS = 31
PERIOD = 60
WINDOWS = 10


def main() -> None:
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
        started = time.perf_counter()
        import scipy.stats  # noqa: F401 - timed: what the first judgement in a process pays

        scipy_import = time.perf_counter() - started

        from cutover.guard import AnalysisGuard
        from cutover.metrics import CloudWatchSource
        from cutover.outputs import load_outputs
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
        now = float(began + WINDOWS * PERIOD)
        queries = CloudWatchSource(data["metrics"], services[0].outputs.analysis).queries()
        window = {
            "StartTime": datetime.fromtimestamp(began, UTC),
            "EndTime": datetime.fromtimestamp(now, UTC),
        }

        def bare() -> float:
            started = time.perf_counter()
            cloudwatch.get_metric_data(MetricDataQueries=queries, **window)
            return time.perf_counter() - started

        outputs = services[0].outputs
        source = CloudWatchSource(data["metrics"], outputs.analysis)

        def poll() -> float:
            # a step that began `WINDOWS` windows ago, judged at its latest window's end
            sources = [(outputs.name, source, outputs.analysis)]
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
        print(
            json.dumps(
                {
                    "analysis_poll_seconds": round(analysis, 4),
                    "bare_get_metric_data_seconds": round(floor, 4),
                    "analysis_poll_ratio": round(analysis / floor, 2),
                    "analysis_poll_target": 1.5,
                    "scipy_import_seconds": round(scipy_import, 3),
                    "windows": WINDOWS,
                    "trials": TRIALS,
                }
            )
        )


if __name__ == "__main__":
    main()
