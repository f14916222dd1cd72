"""`cutover:analysis`, declared once: what the program validates in the stack's config, and
what the helper reads back from the stack's `analysis` output, by the same rules.

Each key is one row of `KEYS` (its type, default and range); `parse_analysis` keeps only the
rules that span keys (an ALB publishes per minute; a Gateway stack names its Prometheus). A
malformed value is a `SettingError` naming the key, the value and what is expected. Pure: no
I/O, no third-party imports.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The figures read for each color and window (the keys of `prometheus.queries`).
QUERY_NAMES = ("requests", "errors", "latency")
# What a metric's rule may say: `critical` (fails the release alone) and `dryRun` (judged,
# journaled and reported, never fails the release).
METRICS = ("errorRate", "latency")
STATISTIC = re.compile(r"^(Average|Maximum|p(\d{1,2}(\.\d+)?))$")
# How often an ALB publishes its CloudWatch metrics (standard resolution): the output
# `metrics.resolutionSeconds` says it, and an ALB stack's windows are whole multiples of it.
ALB_RESOLUTION_SECONDS = 60


class SettingError(ValueError):
    """One key of `cutover:analysis` is malformed."""

    def __init__(self, key: str, given: Any, expected: str) -> None:
        super().__init__(f"analysis.{key}: got {given!r}; expected {expected}")
        self.key, self.given, self.expected = key, given, expected


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):  # a config string
        return value.lower() == "true"
    raise SettingError(key, value, "true or false")


def _int(low: int, high: int) -> Callable[[str, Any], int]:
    def parse(key: str, value: Any) -> int:
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SettingError(key, value, f"a whole number from {low} to {high}")
        return value

    return parse


def _number(low: float, high: float) -> Callable[[str, Any], float]:
    def parse(key: str, value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SettingError(key, value, f"a number from {low:g} to {high:g}") from None
        if isinstance(value, bool) or number != number or not low <= number <= high:
            raise SettingError(key, value, f"a number from {low:g} to {high:g}")
        return number

    return parse


def _statistic(key: str, value: Any) -> str:
    if not isinstance(value, str) or not STATISTIC.fullmatch(value):
        raise SettingError(key, value, "p50 to p99.9, Average or Maximum")
    return value


@dataclass(frozen=True)
class MetricRule:
    """How one metric's verdict counts: `critical` fails the release alone (otherwise only
    with every other non-dry-run metric), `dry_run` never fails it."""

    critical: bool = True
    dry_run: bool = False

    def to_json(self) -> dict[str, bool]:
        return {"critical": self.critical, "dryRun": self.dry_run}


def _rule(key: str, value: Any) -> MetricRule:
    if not isinstance(value, Mapping):
        raise SettingError(key, value, "{critical: true|false, dryRun: true|false}")
    extra = sorted(set(value) - {"critical", "dryRun"})
    if extra:
        raise SettingError(f"{key}.{extra[0]}", value[extra[0]], "critical or dryRun")
    return MetricRule(
        _bool(f"{key}.critical", value.get("critical", True)),
        _bool(f"{key}.dryRun", value.get("dryRun", False)),
    )


@dataclass(frozen=True)
class Key:
    """One key of `cutover:analysis`: its field, how it is read, and its default on a
    production stack (and on a Gateway stack) or elsewhere."""

    field: str
    parse: Callable[[str, Any], Any]
    default: Callable[[bool, bool], Any]  # (production, gateway) -> default


KEYS: dict[str, Key] = {
    "enabled": Key("enabled", _bool, lambda production, gateway: production),
    "periodSeconds": Key("period_seconds", _int(1, 3600), lambda p, g: 60),
    "maxErrorRateIncrease": Key("max_error_rate_increase", _number(0.01, 100), lambda p, g: 1.0),
    "maxLatencyIncreasePercent": Key(
        "max_latency_increase_percent", _number(1, 1000), lambda p, g: 50.0
    ),
    "latencyStatistic": Key("latency_statistic", _statistic, lambda p, g: "p99"),
    "minRequests": Key("min_requests", _int(1, 10**9), lambda p, g: 50),
    "verifyMinutes": Key(
        "verify_minutes", _number(0, 1440), lambda production, g: 10.0 if production else 0.0
    ),
    # the ALB publishes each minute's figures within about a minute; Prometheus has them at
    # its next scrape
    "delaySeconds": Key("delay_seconds", _int(0, 900), lambda p, gateway: 0 if gateway else 60),
    "errorRate": Key("error_rate", _rule, lambda p, g: {}),
    "latency": Key("latency", _rule, lambda p, g: {}),
}


@dataclass(frozen=True)
class Settings:
    """The stack's `cutover:analysis` settings (its output `analysis`)."""

    enabled: bool = True
    period_seconds: int = 60
    max_error_rate_increase: float = 1.0  # percentage points
    max_latency_increase_percent: float = 50.0
    latency_statistic: str = "p99"  # a CloudWatch statistic: p99, p95, Average, ...
    min_requests: int = 50
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


def parse_resolution(value: Any) -> int:
    """`metrics.resolutionSeconds` as exported (a whole number of seconds; outputs passed
    through the engine arrive as floats); SettingError otherwise."""
    return _int(1, 3600)("metrics.resolutionSeconds", value)


def parse_analysis(
    found: Mapping[str, Any],
    production: bool,
    gateway: bool,
    resolution: int = ALB_RESOLUTION_SECONDS,
) -> Settings:
    """`cutover:analysis` (or the `analysis` output) as Settings; SettingError otherwise.
    `resolution`: how often the ALB's metrics are published (an ALB stack only)."""
    if not isinstance(found, Mapping):
        raise SettingError("", found, "an object")
    known = set(KEYS) | ({"prometheus"} if gateway else set())
    extra = sorted(set(found) - known)
    if extra:
        raise SettingError(extra[0], found[extra[0]], f"one of the known keys {sorted(known)}")
    values = {
        key.field: key.parse(name, found.get(name, key.default(production, gateway)))
        for name, key in KEYS.items()
    }
    if not gateway and values["period_seconds"] % resolution:
        said = (
            "the ALB publishes per minute"
            if resolution == ALB_RESOLUTION_SECONDS
            else "the metrics' resolution, metrics.resolutionSeconds"
        )
        raise SettingError(
            "periodSeconds", values["period_seconds"], f"a multiple of {resolution} ({said})"
        )
    prometheus = _prometheus(found.get("prometheus"), values["enabled"]) if gateway else None
    return Settings(**values, prometheus=prometheus)


def _prometheus(found: Any, enabled: bool) -> dict[str, Any] | None:
    if enabled and not (
        isinstance(found, Mapping) and re.fullmatch(r"https?://\S+", str(found.get("url", "")))
    ):
        raise SettingError(
            "prometheus",
            found,
            "{url: http(s)://<prometheus>, queries: {...}} on a Gateway stack, or "
            "analysis.enabled false",
        )
    if found is None:
        return None
    if not isinstance(found, Mapping):
        raise SettingError("prometheus", found, "an object with url and queries")
    extra = sorted(set(found) - {"url", "queries"})
    if extra:
        raise SettingError(f"prometheus.{extra[0]}", found[extra[0]], "url or queries")
    queries = found.get("queries") or {}
    if not isinstance(queries, Mapping):
        raise SettingError("prometheus.queries", queries, "an object of PromQL texts")
    unknown = sorted(set(queries) - set(QUERY_NAMES))
    if unknown:
        raise SettingError(f"prometheus.queries.{unknown[0]}", queries[unknown[0]],
                           f"one of {list(QUERY_NAMES)}")  # fmt: skip
    if not all(isinstance(q, str) and q for q in queries.values()):
        raise SettingError("prometheus.queries", queries, "PromQL text for each query")
    return dict(found)
