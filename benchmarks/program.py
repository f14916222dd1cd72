"""How long the whole prod stack takes to declare under mocks, in a fresh process.

Prints one JSON object. Baseline, measured in the same run: a fresh process that only imports
the Pulumi SDK's mock runtime and the pulumi-aws resource classes the program declares (the
floor any program using them pays: pulumi-aws builds thousands of typed classes on import).
Target: declare_seconds < 2.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRIALS = 5
BASELINE = (
    "import pulumi.runtime.mocks, pulumi_aws as aws; "
    "aws.ec2.SecurityGroup; aws.lb.Listener; aws.ecs.Service; aws.iam.Role; "
    "aws.cloudwatch.MetricAlarm; aws.dynamodb.Table; aws.sns.Topic; aws.ssm.Parameter"
)


def timed(args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, check=True, cwd=ROOT)
    return time.perf_counter() - start, result.stdout


def main() -> None:
    declare, baseline = [], []
    resources = 0
    for _ in range(TRIALS):
        seconds, out = timed([sys.executable, "-m", "cutover.preview.program", "--stack", "prod"])
        declare.append(seconds)
        resources = len(json.loads(out)["resources"])
        baseline.append(timed([sys.executable, "-c", BASELINE])[0])
    d, b = statistics.median(declare), statistics.median(baseline)
    print(
        json.dumps(
            {
                "declare_seconds": round(d, 3),
                "resources": resources,
                "baseline_import_resource_classes_seconds": round(b, 3),
                "declare_over_import_ratio": round(d / b, 2),
                "target_declare_seconds": 2.0,
                "trials": TRIALS,
            }
        )
    )


if __name__ == "__main__":
    main()
