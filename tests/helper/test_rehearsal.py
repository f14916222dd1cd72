"""The rehearsal's traffic flags through `python -m rehearsal`, as a user types them: each one
reaches the series the rehearsal publishes into moto's CloudWatch."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from rehearsal.aws import aws_env
from tests.harness.program_runs import ROOT


def rehearsal(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rehearsal", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_elb_error_percent_publishes_the_load_balancers_own_5xx(tmp_path: Path) -> None:
    """`up --elb-error-percent blue=5`: the ALB answers 5% of the requests sent to blue with its
    own 5xx (HTTPCode_ELB_5XX_Count, per load balancer), as blue's targets refusing them
    (TargetConnectionErrorCount, blue's target group only): what the downtime guard reads."""
    (tmp_path / "rehearsal").symlink_to(ROOT / "rehearsal")  # nothing written into the checkout
    refused = rehearsal(tmp_path, "up", "--per-second", "400", "--elb-error-percent", "blue=x")
    assert refused.returncode == 2, refused.stderr
    assert "--elb-error-percent 'blue=x': 'x' is not a number" in refused.stderr
    assert not (tmp_path / "rehearsal-out").exists()  # refused before anything started

    up = rehearsal(tmp_path, "up", "--per-second", "2000", "--elb-error-percent", "blue=5")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "load balancer errors blue=5" in up.stdout
        out = tmp_path / "rehearsal-out"
        state = json.loads((out / "rehearsal.json").read_text())
        metrics = json.loads((out / "outputs.json").read_text())["metrics"]
        sums = _sums(state["endpoint"], metrics)
    finally:  # never leave the server or the traffic running, whatever failed
        if (tmp_path / "rehearsal-out" / "rehearsal.json").exists():
            rehearsal(tmp_path, "down")
    requests, failed = sums["RequestCount"], sums["HTTPCode_ELB_5XX_Count"]
    assert requests >= 10_000  # a whole 5 s window at 2000 a second, at least
    assert 0.04 < failed / requests < 0.06, sums
    assert sums["blue/TargetConnectionErrorCount"] == failed
    assert sums["green/TargetConnectionErrorCount"] == 0  # green serves nothing


def _sums(endpoint: str, metrics: dict[str, Any]) -> dict[str, float]:
    """Each series' sum over the last minutes, read as the downtime guard reads them
    (GetMetricData, whose dimensions match exactly)."""
    balancer = [{"Name": "LoadBalancer", "Value": metrics["loadBalancer"]}]
    groups = metrics["targetGroups"]
    series = [(name, name, balancer) for name in ("RequestCount", "HTTPCode_ELB_5XX_Count")]
    series += [
        (f"{c}/TargetConnectionErrorCount", "TargetConnectionErrorCount",
         [*balancer, {"Name": "TargetGroup", "Value": groups[c]}])
        for c in ("blue", "green")
    ]  # fmt: skip
    env = aws_env(endpoint)
    cloudwatch = boto3.client("cloudwatch", endpoint_url=endpoint, region_name=env["AWS_REGION"],
                              aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
    now = datetime.now(UTC)
    found = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": f"q{i}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": metrics["namespace"],
                        "MetricName": name,
                        "Dimensions": dimensions,
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
            }
            for i, (_, name, dimensions) in enumerate(series)
        ],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
    )["MetricDataResults"]
    by_id = {r["Id"]: sum(r["Values"]) for r in found}
    return {label: by_id.get(f"q{i}", 0.0) for i, (label, _, _) in enumerate(series)}
