"""A rehearsal's traffic as an ALB reports it, written into moto's CloudWatch, split by the
weights the listener serves: per target group RequestCount, HTTPCode_Target_5XX_Count,
TargetResponseTime and TargetConnectionErrorCount, and per load balancer RequestCount,
HTTPCode_ELB_5XX_Count and RejectedConnectionCount (AWS publishes the last two per load
balancer only).

This is the load balancer's side of a rehearsal (what AWS would publish), not the analysis:
the analysis and the downtime guard read these series through GetMetricData like any other,
in the demo, the tests and the benchmark.
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
    """Requests per second over both colors; each color's error rate (percent: its targets'
    5xx), latency, and the rate at which the load balancer answers the requests sent to it
    with its own 5xx (percent: its targets refuse connections, the ALB answers 502); and the
    share of all connections the load balancer rejects (percent)."""

    per_second: float = 1000.0
    error_percent: dict[str, float] = field(default_factory=lambda: {"blue": 1.0, "green": 1.0})
    latency: dict[str, float] = field(default_factory=lambda: {"blue": 0.1, "green": 0.1})
    elb_error_percent: dict[str, float] = field(default_factory=lambda: {"blue": 0.0, "green": 0.0})
    rejected_percent: float = 0.0

    def served(
        self, color: str, seconds: float, weights: dict[str, int], rng: random.Random
    ) -> tuple[int, int, float]:
        """`color`'s requests, 5xx errors and mean latency over `seconds` under `weights`,
        with binomial noise on the errors (by its normal approximation) and 5% on latency."""
        requests = round(self.per_second * seconds * weights[color] / (sum(weights.values()) or 1))
        errors = _binomial(requests, self.error_percent[color], rng)
        latency = max(0.001, rng.gauss(self.latency[color], self.latency[color] * 0.05))
        return requests, errors, latency

    def failed_at_load_balancer(self, color: str, requests: int, rng: random.Random) -> int:
        """Of `requests` sent to `color`, those the load balancer answered with its own 5xx."""
        return _binomial(requests, self.elb_error_percent[color], rng)

    def rejected(self, requests: int, rng: random.Random) -> int:
        """Connections the load balancer rejected beside `requests` it took."""
        return _binomial(requests, self.rejected_percent, rng)


def _binomial(n: int, percent: float, rng: random.Random) -> int:
    """A binomial count of `n` trials at `percent`, by its normal approximation (at 0%, none,
    drawing nothing: a seeded run's other figures stay what they were)."""
    if percent == 0:
        return 0
    rate = percent / 100
    spread = (n * rate * (1 - rate)) ** 0.5
    return min(n, max(0, round(rng.gauss(n * rate, spread))))


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
    balancer = [{"Name": "LoadBalancer", "Value": metrics["loadBalancer"]}]

    def datum(name: str, dimensions: list[dict[str, str]], value: float) -> dict[str, Any]:
        return {"MetricName": name, "Dimensions": dimensions, "Timestamp": moment,
                "Value": value, "StorageResolution": 1}  # fmt: skip

    total = failed = 0
    for color in COLORS:
        requests, errors, latency = traffic.served(color, seconds, weights, rng)
        if not requests:
            continue
        refused = traffic.failed_at_load_balancer(color, requests, rng)
        total, failed = total + requests, failed + refused
        group = [*balancer, {"Name": "TargetGroup", "Value": metrics["targetGroups"][color]}]
        found += [
            datum("RequestCount", group, requests),
            datum("HTTPCode_Target_5XX_Count", group, errors),
            datum("TargetResponseTime", group, latency),
            datum("TargetConnectionErrorCount", group, refused),
        ]
    if total:
        found += [
            datum("RequestCount", balancer, total),
            datum("HTTPCode_ELB_5XX_Count", balancer, failed),
            datum("RejectedConnectionCount", balancer, traffic.rejected(total, rng)),
        ]
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
