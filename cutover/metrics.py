"""Where the analysis reads each color's figures per window, and the downtime guard the load
balancer's own: CloudWatch or Prometheus.

CloudWatch (ALB stacks): one `GetMetricData` call per poll for both colors, on the ALB's
per-target-group metrics named by the stack output `metrics`; rates are computed here from
the raw sums. For the downtime guard, one call per judged window for the windows not read
yet, at the metrics' resolution: the load balancer's `RequestCount`, `HTTPCode_ELB_5XX_Count`
and `RejectedConnectionCount` (AWS publishes the last two per load balancer only: there is no
TargetGroup dimension to split them by color), and each color's `TargetConnectionErrorCount`
(per target group), which says whose targets refused connections; those requests are among
the load balancer's 5xx already (a 502 or 504), so they are named, never added.

Prometheus (Gateway stacks): instant queries (`/api/v1/query`) of the PromQL templates in
`cutover:analysis.prometheus.queries`, evaluated at each window's end; a window once read is
not read again.
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
from cutover.downtime import LoadBalancerWindow
from cutover.outputs import analysis_of

REQUESTS, ERRORS, LATENCY = "RequestCount", "HTTPCode_Target_5XX_Count", "TargetResponseTime"
# The load balancer's own: its 5xx and the connections it refused (per load balancer only),
# and the connections its targets refused (per target group too).
ELB_ERRORS, REJECTED = "HTTPCode_ELB_5XX_Count", "RejectedConnectionCount"
CONNECTION_ERRORS = "TargetConnectionErrorCount"

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
    # the Gateway's own, both colors at once ($services: `blue-svc|green-svc`; $route: the
    # HTTPRoute's name): as the gateway reports them (reporter="source"), and its failures
    # those Envoy flagged itself (no healthy upstream, connection failure or reset...)
    "gatewayRequests": 'sum(increase(istio_requests_total{reporter="source",'
    'destination_service_namespace="$namespace",destination_service_name=~"$services"}[$window]))',
    "gatewayErrors": 'sum(increase(istio_requests_total{reporter="source",'
    'destination_service_namespace="$namespace",destination_service_name=~"$services",'
    'response_code=~"5..",response_flags!="-"}[$window]))',
}


class MetricsUnavailable(Exception):
    """The metrics could not be read (the analysis is inconclusive for that poll)."""


class MetricSource(Protocol):
    def windows(self, start: float, end: float) -> dict[Color, list[Window]]:
        """Each color's complete windows from the one holding `start` to `end`."""
        ...


class LoadBalancerSource(Protocol):
    def load_balancer(self, start: float, end: float) -> list[LoadBalancerWindow]:
        """The load balancer's own complete windows from the one holding `start` to `end`."""
        ...


# GetMetricData's answer: each query's values by the start of their period (epoch seconds).
Series = dict[str, dict[float, float]]


class CloudWatchSource:
    """The ALB's per-target-group metrics (stack output `metrics`), through `cloudwatch` (a
    boto3 CloudWatch client)."""

    def __init__(self, metrics: AlbMetrics, settings: Settings, cloudwatch: Any) -> None:
        self.metrics, self.settings, self.cloudwatch = metrics, settings, cloudwatch
        self.balancer: dict[float, LoadBalancerWindow] = {}  # complete windows do not change

    def queries(self) -> list[dict[str, Any]]:
        period = self.settings.period_seconds
        figures = {  # what the analysis calls each figure: CloudWatch's metric and statistic
            "requests": (REQUESTS, "Sum"),
            "errors": (ERRORS, "Sum"),
            "latency": (LATENCY, self.settings.latency_statistic),
        }
        return [
            self.query(f"{color}_{figure}", name, self.dimensions(color), period, stat)
            for color in COLORS
            for figure, (name, stat) in figures.items()
        ]

    def dimensions(self, color: Color | None = None) -> list[dict[str, str]]:
        """The load balancer's dimensions, and with `color` its target group's."""
        found = [{"Name": "LoadBalancer", "Value": self.metrics.load_balancer}]
        if color is not None:
            found.append({"Name": "TargetGroup", "Value": self.metrics.target_groups[color]})
        return found

    def query(
        self, query_id: str, name: str, dimensions: list[dict[str, str]], period: int, stat: str
    ) -> dict[str, Any]:
        """One GetMetricData query: `stat` of the metric `name` with `dimensions`, a value per
        `period` seconds."""
        metric = {"Namespace": self.metrics.namespace, "MetricName": name, "Dimensions": dimensions}
        stat_of = {"Metric": metric, "Period": period, "Stat": stat}
        return {"Id": query_id, "MetricStat": stat_of, "ReturnData": True}

    def windows(self, start: float, end: float) -> dict[Color, list[Window]]:
        starts = window_starts(start, end, self.settings.period_seconds)
        if not starts:
            return {c: [] for c in COLORS}
        found = self.read(self.queries(), starts[0], starts[-1] + self.settings.period_seconds)
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

    def load_balancer_queries(self) -> list[dict[str, Any]]:
        """The load balancer's own counts, at the metrics' resolution (the seconds with
        failures are counted at it)."""
        series: list[tuple[str, str, Color | None]] = [
            ("lb_requests", REQUESTS, None),
            ("lb_errors", ELB_ERRORS, None),
            ("lb_rejected", REJECTED, None),
        ]  # the load balancer's, then each target group's
        series += [(f"{c}_connection_errors", CONNECTION_ERRORS, c) for c in COLORS]
        resolution = self.metrics.resolution_seconds
        return [self.query(i, name, self.dimensions(c), resolution, "Sum") for i, name, c in series]

    def load_balancer(self, start: float, end: float) -> list[LoadBalancerWindow]:
        period = self.settings.period_seconds
        starts = window_starts(start, end, period)
        unread = [t for t in starts if t not in self.balancer]
        if unread:
            found = self.read(self.load_balancer_queries(), unread[0], unread[-1] + period)
            for t in unread:
                self.balancer[t] = balancer_window(found, t, period,
                                                   self.metrics.resolution_seconds)  # fmt: skip
        return [self.balancer[t] for t in starts]

    def read(self, queries: list[dict[str, Any]], start: float, end: float) -> Series:
        """Every query's sums by the start of their period, from `start` to `end`, all pages
        of one GetMetricData call; MetricsUnavailable when it fails."""
        found: Series = {}
        args: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": datetime.fromtimestamp(start, UTC),
            "EndTime": datetime.fromtimestamp(end, UTC),
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
        return found


def balancer_window(
    found: Series, start: float, period: int, resolution: int
) -> LoadBalancerWindow:
    """The load balancer's window at `start` from its counts at `resolution` (a metric not
    reported in a period counts 0, as AWS reports these only when not 0). A refused connection
    is a request that failed; an ALB 5xx counts among the requests (more 5xx than
    `RequestCount` holds means some were answered before a target was chosen, which
    `RequestCount` leaves out: the requests are then at least the failures)."""

    def at(query_id: str, t: float) -> float:
        return found.get(query_id, {}).get(t, 0.0)

    requests = failed = 0.0
    failing: list[tuple[float, float]] = []
    buckets = [start + i * resolution for i in range(period // resolution)]
    for t in buckets:
        refused = at("lb_rejected", t)
        bad = at("lb_errors", t) + refused
        requests += max(at("lb_requests", t) + refused, bad)
        failed += bad
        if bad > 0:
            failing.append((t, t + resolution))
    connection: dict[str, float] = {
        c: sum((at(f"{c}_connection_errors", t) for t in buckets), 0.0) for c in COLORS
    }
    return LoadBalancerWindow(start, requests, failed, tuple(failing), connection)


class PrometheusSource:
    """PromQL over Prometheus's HTTP API, one instant query per figure, color and window (the
    Gateway's own: per figure and window)."""

    def __init__(
        self,
        settings: Settings,
        namespace: str,
        services: Mapping[Color, str],
        timeout: float = 5,
        route: str = "",
    ) -> None:
        prometheus = settings.prometheus or {}
        self.url = str(prometheus.get("url", "")).rstrip("/")
        self.templates = {**DEFAULT_QUERIES, **dict(prometheus.get("queries") or {})}
        self.settings, self.namespace, self.services = settings, namespace, services
        self.timeout, self.route = timeout, route
        self.read: dict[tuple[Color, float], Window] = {}  # complete windows do not change
        self.balancer: dict[float, LoadBalancerWindow] = {}

    def query(self, name: str, at: float, color: Color | None = None) -> float | None:
        import urllib.error  # slow to import: only a Prometheus source queries
        import urllib.parse  # slow to import: only a Prometheus source queries
        import urllib.request  # slow to import: only a Prometheus source queries

        placeholders = {
            "namespace": self.namespace,
            "route": self.route,
            "services": "|".join(self.services[c] for c in COLORS),
            "window": f"{self.settings.period_seconds}s",
            "quantile": self.settings.quantile or 0.99,
        }
        if color is not None:
            placeholders.update(service=self.services[color], color=color)
        promql = string.Template(self.templates[name]).safe_substitute(placeholders)
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
                        self.query("requests", at, color) or 0.0,
                        self.query("errors", at, color) or 0.0,
                        self.query("latency", at, color),
                    )
                found[color].append(self.read[color, t])
        return found

    def load_balancer(self, start: float, end: float) -> list[LoadBalancerWindow]:
        """The Gateway's windows; the seconds with failures are whole windows (a query a
        window)."""
        period = self.settings.period_seconds
        starts = window_starts(start, end, period)
        for t in starts:
            if t not in self.balancer:
                requests = self.query("gatewayRequests", t + period) or 0.0
                failed = self.query("gatewayErrors", t + period) or 0.0
                failing = ((t, t + period),) if failed > 0 else ()
                self.balancer[t] = LoadBalancerWindow(t, requests, failed, failing)
        return [self.balancer[t] for t in starts]


# Where a stack's figures come from: both the colors' and the load balancer's own.
Source = CloudWatchSource | PrometheusSource


def source_for(outputs: StackOutputs) -> Source | None:
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
    services = {c: outputs.services[c].service for c in COLORS}
    route = outputs.route.name if outputs.route is not None else ""
    return PrometheusSource(settings, namespace, services, route=route)
