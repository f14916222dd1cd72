"""A rehearsal's traffic as an ALB reports it: per-target-group RequestCount, HTTPCode_Target_5XX_Count and
TargetResponseTime written into moto's CloudWatch, split by the weights the listener serves.

This is the load balancer's side of a rehearsal (what AWS would publish), not the analysis:
the analysis reads these series through GetMetricData like any other, in the demo, the tests
and the benchmark.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cutover_gates.contract import COLORS


@dataclass
class Traffic:
    """Requests per second over both colors; each color's error rate (percent) and latency."""

    per_second: float = 1000.0
    error_percent: dict[str, float] = field(default_factory=lambda: {"blue": 1.0, "green": 1.0})
    latency: dict[str, float] = field(default_factory=lambda: {"blue": 0.1, "green": 0.1})

    def served(
        self, color: str, seconds: float, weights: dict[str, int], rng: random.Random
    ) -> tuple[int, int, float]:
        """`color`'s requests, 5xx errors and mean latency over `seconds` under `weights`,
        with binomial noise on the errors (by its normal approximation) and 5% on latency."""
        requests = round(self.per_second * seconds * weights[color] / (sum(weights.values()) or 1))
        rate = self.error_percent[color] / 100
        spread = (requests * rate * (1 - rate)) ** 0.5
        errors = min(requests, max(0, round(rng.gauss(requests * rate, spread))))
        latency = max(0.001, rng.gauss(self.latency[color], self.latency[color] * 0.05))
        return requests, errors, latency


def datums(
    metrics: dict[str, Any],
    at: float,
    seconds: float,
    weights: dict[str, int],
    traffic: Traffic,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """What the ALB publishes for `seconds` of traffic at `at` under `weights`, with noise."""
    found = []
    moment = datetime.fromtimestamp(at, UTC)
    for color in COLORS:
        requests, errors, latency = traffic.served(color, seconds, weights, rng)
        if not requests:
            continue
        dimensions = [
            {"Name": "LoadBalancer", "Value": metrics["loadBalancer"]},
            {"Name": "TargetGroup", "Value": metrics["targetGroups"][color]},
        ]
        for name, value in (
            ("RequestCount", requests),
            ("HTTPCode_Target_5XX_Count", errors),
            ("TargetResponseTime", latency),
        ):
            found.append(
                {
                    "MetricName": name,
                    "Dimensions": dimensions,
                    "Timestamp": moment,
                    "Value": value,
                    "StorageResolution": 1,
                }  # fmt: skip
            )
    return found


def publish(cloudwatch: Any, namespace: str, found: list[dict[str, Any]]) -> None:
    for i in range(0, len(found), 500):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=found[i : i + 500])


class LiveTraffic:
    """A thread publishing `traffic` every `tick` seconds under the weights served right now."""

    def __init__(
        self, cloudwatch: Any, elbv2: Any, outputs: dict[str, Any], traffic: Traffic, seed: int
    ) -> None:
        self.cloudwatch, self.elbv2, self.outputs, self.traffic = (
            cloudwatch,
            elbv2,
            outputs,
            traffic,
        )
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.published = 0.0  # seconds of traffic in CloudWatch so far
        self.changed = threading.Condition()

    def wait_published(self, seconds: float, timeout: float = 120) -> None:
        """Wait until `seconds` of traffic have been published (however slow the machine)."""
        with self.changed:
            if not self.changed.wait_for(lambda: self.published >= seconds, timeout):
                raise TimeoutError(f"{self.published:.1f}s of traffic published, not {seconds}s")

    def served(self) -> dict[str, int]:
        listener = self.elbv2.describe_listeners(ListenerArns=[self.outputs["listenerArn"]])
        groups = listener["Listeners"][0]["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
        by_arn = {v: k for k, v in self.outputs["targetGroupArns"].items()}
        return {by_arn[g["TargetGroupArn"]]: int(g["Weight"]) for g in groups}

    def run(self, tick: float = 0.25) -> None:
        import time

        while not self.stop.wait(tick):
            found = datums(
                self.outputs["metrics"], time.time(), tick, self.served(), self.traffic, self.rng
            )
            publish(self.cloudwatch, self.outputs["metrics"]["namespace"], found)
            with self.changed:
                self.published += tick
                self.changed.notify_all()

    def start(self) -> LiveTraffic:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def __enter__(self) -> LiveTraffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
