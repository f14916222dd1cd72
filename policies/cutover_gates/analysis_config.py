"""`cutover:analysis`, declared once: what the program validates in the stack's config, and
what the helper reads back from the stack's `analysis` output, by the same rules.

Each key is one row of `KEYS` (config_keys.py: its type, default and range); `parse_analysis`
keeps only the rules that span keys (an ALB publishes per minute; a Gateway stack names its
Prometheus). A malformed value is a `SettingError` naming the key, the value and what is
expected. Pure: no I/O, no third-party imports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cutover_gates.config_keys import Key, SettingError, boolean, number, read, text, whole
from cutover_gates.contract import ALB_RESOLUTION_SECONDS

# The figures read for each color and window, then the Gateway's own for each window (the
# downtime guard's), as the keys of `prometheus.queries`.
QUERY_NAMES = ("requests", "errors", "latency", "gatewayRequests", "gatewayErrors")
# What a metric's rule may say: `critical` (fails the release alone) and `dryRun` (judged,
# journaled and reported, never fails the release).
METRICS = ("errorRate", "latency")
STATISTIC = re.compile(r"^(Average|Maximum|p(\d{1,2}(\.\d+)?))$")


RULE_KEYS = {
    "critical": Key("critical", boolean, True),
    "dryRun": Key("dry_run", boolean, False),
}


@dataclass(frozen=True)
class MetricRule:
    """How one metric's verdict counts: `critical` fails the release alone (otherwise only
    with every other non-dry-run metric), `dry_run` never fails it."""

    critical: bool = RULE_KEYS["critical"].default
    dry_run: bool = RULE_KEYS["dryRun"].default

    def to_json(self) -> dict[str, bool]:
        return {name: getattr(self, key.field) for name, key in RULE_KEYS.items()}


def _rule(key: str, value: Any) -> MetricRule:
    if not isinstance(value, Mapping):
        raise SettingError(key, value, "{critical: true|false, dryRun: true|false}")
    return MetricRule(**read(value, RULE_KEYS, key))


# The keys of `cutover:analysis`; a default that is a function reads the stack's
# `production` and `gateway` (a Gateway stack, on Prometheus).
KEYS: dict[str, Key] = {
    "enabled": Key("enabled", boolean, lambda stack: stack["production"]),
    "periodSeconds": Key("period_seconds", whole(1, 3600), 60),
    "maxErrorRateIncrease": Key("max_error_rate_increase", number(0.01, 100), 1.0),
    "maxLatencyIncreasePercent": Key("max_latency_increase_percent", number(1, 1000), 50.0),
    # the downtime guard's margin: percentage points of requests failing at the load balancer
    # or Gateway itself, over its rate before the shift
    "maxFailedRequestIncrease": Key("max_failed_request_increase", number(0.01, 100), 0.1),
    "latencyStatistic": Key(
        "latency_statistic", text(STATISTIC.pattern, "p50 to p99.9, Average or Maximum"), "p99"
    ),
    "minRequests": Key("min_requests", whole(1, 10**9), 50),
    "verifyMinutes": Key(
        "verify_minutes", number(0, 1440), lambda stack: 10.0 if stack["production"] else 0.0
    ),
    # the ALB publishes each minute's figures within about a minute; Prometheus has them at
    # its next scrape
    "delaySeconds": Key(
        "delay_seconds", whole(0, 900), lambda stack: 0 if stack["gateway"] else 60
    ),
    "errorRate": Key("error_rate", _rule, {}),
    "latency": Key("latency", _rule, {}),
}


@dataclass(frozen=True)
class Settings:
    """The stack's `cutover:analysis` settings (its output `analysis`). A key's default is
    its row of `KEYS`; where that depends on the stack, the default here is that of a stack
    off production on Prometheus (no delay, no verification), with the analysis on."""

    enabled: bool = True
    period_seconds: int = KEYS["periodSeconds"].default
    max_error_rate_increase: float = KEYS["maxErrorRateIncrease"].default  # percentage points
    max_latency_increase_percent: float = KEYS["maxLatencyIncreasePercent"].default
    max_failed_request_increase: float = KEYS["maxFailedRequestIncrease"].default  # points
    latency_statistic: str = KEYS["latencyStatistic"].default  # p99, p95, Average, ...
    min_requests: int = KEYS["minRequests"].default
    verify_minutes: float = 0.0
    delay_seconds: int = 0  # how long after a window's end its figures are all published
    error_rate: MetricRule = field(default_factory=MetricRule)
    latency: MetricRule = field(default_factory=MetricRule)
    prometheus: dict[str, Any] | None = None  # {"url", "queries"} on Gateway stacks

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, key in KEYS.items():
            value = getattr(self, key.field)
            found[name] = value.to_json() if isinstance(value, MetricRule) else value
        if self.prometheus is not None:
            found["prometheus"] = self.prometheus
        return found

    @property
    def quantile(self) -> float | None:
        """The latency statistic as a quantile (0.99 for p99); None for Average or Maximum."""
        match = STATISTIC.fullmatch(self.latency_statistic)
        return float(match.group(2)) / 100 if match and match.group(2) else None

    def rule(self, metric: str) -> MetricRule:
        return self.error_rate if metric == "errorRate" else self.latency


def parse_analysis(
    found: Mapping[str, Any],
    production: bool,
    gateway: bool,
    resolution: int = ALB_RESOLUTION_SECONDS,
) -> Settings:
    """`cutover:analysis` (or the `analysis` output) as Settings; SettingError otherwise.
    `resolution`: how often the ALB's metrics are published (an ALB stack only)."""
    if not isinstance(found, Mapping):
        raise SettingError("analysis", found, "an object")
    # a Gateway stack's `prometheus` is read once `enabled` is known
    rest = {k: v for k, v in found.items() if not (gateway and k == "prometheus")}
    values = read(rest, KEYS, "analysis", {"production": production, "gateway": gateway})
    if not gateway and values["period_seconds"] % resolution:
        said = (
            "the ALB publishes per minute"
            if resolution == ALB_RESOLUTION_SECONDS
            else "the metrics' resolution, metrics.resolutionSeconds"
        )
        raise SettingError(
            "analysis.periodSeconds",
            values["period_seconds"],
            f"a multiple of {resolution} ({said})",
        )
    prometheus = _prometheus(found.get("prometheus"), values["enabled"]) if gateway else None
    return Settings(**values, prometheus=prometheus)


def _prometheus(found: Any, enabled: bool) -> dict[str, Any] | None:
    if enabled and not (
        isinstance(found, Mapping) and re.fullmatch(r"https?://\S+", str(found.get("url", "")))
    ):
        raise SettingError(
            "analysis.prometheus",
            found,
            "{url: http(s)://<prometheus>, queries: {...}} on a Gateway stack, or "
            "analysis.enabled false",
        )
    if found is None:
        return None
    if not isinstance(found, Mapping):
        raise SettingError("analysis.prometheus", found, "an object with url and queries")
    extra = sorted(set(found) - {"url", "queries"})
    if extra:
        raise SettingError(f"analysis.prometheus.{extra[0]}", found[extra[0]], "url or queries")
    queries = found.get("queries") or {}
    if not isinstance(queries, Mapping):
        raise SettingError("analysis.prometheus.queries", queries, "an object of PromQL texts")
    unknown = sorted(set(queries) - set(QUERY_NAMES))
    if unknown:
        raise SettingError(f"analysis.prometheus.queries.{unknown[0]}", queries[unknown[0]],
                           f"one of {list(QUERY_NAMES)}")  # fmt: skip
    if not all(isinstance(q, str) and q for q in queries.values()):
        raise SettingError("analysis.prometheus.queries", queries, "PromQL text for each query")
    return dict(found)
