"""Where the analysis reads each color's figures per window: CloudWatch or Prometheus.

CloudWatch (ALB stacks): one `GetMetricData` call per poll for both colors, on the ALB's
per-target-group metrics named by the stack output `metrics`; rates are computed here from
the raw sums. Prometheus (Gateway stacks): instant queries (`/api/v1/query`) of the PromQL
templates in `cutover:analysis.prometheus.queries`, evaluated at each window's end; a window
once read is not read again.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from cutover_gates.analysis_config import Settings
from cutover_gates.contract import COLORS, Color
from cutover_gates.output_shapes import AlbMetrics
from cutover_gates.stack_outputs import StackOutputs

from cutover.analysis import Window, window_starts
from cutover.aws import Client
from cutover.outputs import analysis_of

REQUESTS, ERRORS, LATENCY = "RequestCount", "HTTPCode_Target_5XX_Count", "TargetResponseTime"

# Istio's standard metrics (Istio and most meshes behind a Gateway export these). Placeholders:
# $namespace, $service (the color's Service), $color, $window (e.g. 60s), $quantile (0.99).
DEFAULT_QUERIES = {
    "requests": 'sum(increase(istio_requests_total{destination_service_namespace="$namespace",'
    'destination_service_name="$service"}[$window]))',
    "errors": 'sum(increase(istio_requests_total{destination_service_namespace="$namespace",'
    'destination_service_name="$service",response_code=~"5.."}[$window]))',
    "latency": "histogram_quantile($quantile, sum by (le) (rate("
    'istio_request_duration_milliseconds_bucket{destination_service_namespace="$namespace",'
    'destination_service_name="$service"}[$window]))) / 1000',
}


class MetricsUnavailable(Exception):
    """The metrics could not be read (the analysis is inconclusive for that poll)."""


class MetricSource(Protocol):
    def windows(self, start: float, end: float) -> dict[Color, list[Window]]:
        """Each color's complete windows from the one holding `start` to `end`."""
        ...


class CloudWatchSource:
    """The ALB's per-target-group metrics (stack output `metrics`), through `cloudwatch` (a
    boto3 CloudWatch client)."""

    def __init__(self, metrics: AlbMetrics, settings: Settings, cloudwatch: Any) -> None:
        self.metrics, self.settings, self.cloudwatch = metrics, settings, cloudwatch

    def queries(self) -> list[dict[str, Any]]:
        period = self.settings.period_seconds
        figures = {  # what the analysis calls each figure: CloudWatch's metric and statistic
            "requests": (REQUESTS, "Sum"),
            "errors": (ERRORS, "Sum"),
            "latency": (LATENCY, self.settings.latency_statistic),
        }
        return [
            {
                "Id": f"{color}_{figure}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": self.metrics.namespace,
                        "MetricName": name,
                        "Dimensions": [
                            {"Name": "LoadBalancer", "Value": self.metrics.load_balancer},
                            {"Name": "TargetGroup", "Value": self.metrics.target_groups[color]},
                        ],
                    },
                    "Period": period,
                    "Stat": stat,
                },
                "ReturnData": True,
            }
            for color in COLORS
            for figure, (name, stat) in figures.items()
        ]

    def windows(self, start: float, end: float) -> dict[Color, list[Window]]:
        starts = window_starts(start, end, self.settings.period_seconds)
        if not starts:
            return {c: [] for c in COLORS}
        found: dict[str, dict[float, float]] = {}
        args: dict[str, Any] = {
            "MetricDataQueries": self.queries(),
            "StartTime": datetime.fromtimestamp(starts[0], UTC),
            "EndTime": datetime.fromtimestamp(starts[-1] + self.settings.period_seconds, UTC),
        }
        try:
            while True:
                page = self.cloudwatch.get_metric_data(**args)
                for result in page["MetricDataResults"]:
                    series = found.setdefault(result["Id"], {})
                    for t, v in zip(result["Timestamps"], result["Values"], strict=False):
                        series[t.timestamp()] = float(v)
                if not page.get("NextToken"):
                    break
                args["NextToken"] = page["NextToken"]
        except Exception as e:  # noqa: BLE001 - any API failure makes the poll inconclusive
            raise MetricsUnavailable(f"GetMetricData: {type(e).__name__}: {e}") from None
        return {
            c: [
                Window(
                    t,
                    found.get(f"{c}_requests", {}).get(t, 0.0),
                    found.get(f"{c}_errors", {}).get(t, 0.0),  # reported only when not 0
                    found.get(f"{c}_latency", {}).get(t),
                )
                for t in starts
            ]
            for c in COLORS
        }


class PrometheusSource:
    """PromQL over Prometheus's HTTP API, one instant query per figure, color and window."""

    def __init__(
        self, settings: Settings, namespace: str, services: Mapping[Color, str], timeout: float = 5
    ) -> None:
        prometheus = settings.prometheus or {}
        self.url = str(prometheus.get("url", "")).rstrip("/")
        self.templates = {**DEFAULT_QUERIES, **dict(prometheus.get("queries") or {})}
        self.settings, self.namespace, self.services = settings, namespace, services
        self.timeout = timeout
        self.read: dict[tuple[Color, float], Window] = {}  # complete windows do not change

    def query(self, name: str, color: Color, at: float) -> float | None:
        import urllib.error  # slow to import: only a Prometheus source queries
        import urllib.parse  # slow to import: only a Prometheus source queries
        import urllib.request  # slow to import: only a Prometheus source queries

        promql = string.Template(self.templates[name]).safe_substitute(
            namespace=self.namespace,
            service=self.services[color],
            color=color,
            window=f"{self.settings.period_seconds}s",
            quantile=self.settings.quantile or 0.99,
        )
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql, "time": at})
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310
                body = json.load(response)
        except urllib.error.HTTPError as e:
            raise MetricsUnavailable(f"Prometheus {self.url}: HTTP {e.code} for {promql}") from None
        except (OSError, ValueError) as e:
            raise MetricsUnavailable(f"Prometheus {self.url}: {e}") from None
        result = body.get("data", {}).get("result", [])
        if body.get("status") != "success" or not result:
            return None
        value = float(result[0]["value"][1])
        return None if value != value else value  # NaN: nothing to compute from

    def windows(self, start: float, end: float) -> dict[Color, list[Window]]:
        period = self.settings.period_seconds
        found: dict[Color, list[Window]] = {c: [] for c in COLORS}
        for t in window_starts(start, end, period):
            for color in COLORS:
                if (color, t) not in self.read:
                    at = t + period
                    self.read[color, t] = Window(
                        t,
                        self.query("requests", color, at) or 0.0,
                        self.query("errors", color, at) or 0.0,
                        self.query("latency", color, at),
                    )
                found[color].append(self.read[color, t])
        return found


def source_for(outputs: StackOutputs) -> MetricSource | None:
    """Where a stack's figures come from: CloudWatch on an ALB, Prometheus on a Gateway."""
    settings = analysis_of(outputs)
    if settings is None:
        return None
    if outputs.routing == "alb":
        metrics = outputs.metrics
        return CloudWatchSource(metrics, settings, Client("cloudwatch")) if metrics else None
    if not (settings.prometheus or {}).get("url"):
        return None
    namespace = outputs.namespace or "default"
    return PrometheusSource(settings, namespace, {c: outputs.services[c].service for c in COLORS})
