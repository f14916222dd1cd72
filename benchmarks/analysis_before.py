"""The metric analysis as it was before its tests became anytime-valid: a one-sided
Mann-Whitney U test and a test of two proportions, each a fixed-sample test applied after
every window (the code of cutover/analysis.py until then, unchanged). Kept only so that
benchmarks/analysis.py measures it beside the current test in the same run; not part of the
product."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

ALPHA = 0.05
# The baseline when the target serves everything: this many windows before the shift began.
BASELINE_WINDOWS = 5
# The figures read for each color and window (the keys of `prometheus.queries`).
QUERY_NAMES = ("requests", "errors", "latency")
STATISTIC = re.compile(r"^(Average|Maximum|p(\d{1,2}(\.\d+)?))$")

JudgementState = Literal["ok", "fail", "inconclusive"]


@dataclass(frozen=True)
class Settings:
    """The stack's `cutover:analysis` config, as the program exports it (output `analysis`)."""

    enabled: bool = True
    period_seconds: int = 60
    max_error_rate_increase: float = 1.0  # percentage points
    max_latency_increase_percent: float = 50.0
    latency_statistic: str = "p99"  # a CloudWatch statistic: p99, p95, Average, ...
    min_requests: int = 50
    verify_minutes: float = 0.0
    delay_seconds: int = 0  # how long after a window's end its figures are all published
    prometheus: dict[str, Any] | None = None  # {"url", "queries"} on Gateway stacks

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "enabled": self.enabled,
            "periodSeconds": self.period_seconds,
            "maxErrorRateIncrease": self.max_error_rate_increase,
            "maxLatencyIncreasePercent": self.max_latency_increase_percent,
            "latencyStatistic": self.latency_statistic,
            "minRequests": self.min_requests,
            "verifyMinutes": self.verify_minutes,
            "delaySeconds": self.delay_seconds,
        }
        if self.prometheus is not None:
            found["prometheus"] = self.prometheus
        return found

    @classmethod
    def from_json(cls, data: Any) -> Settings:
        """Settings from the output `analysis`; ValueError naming what is malformed."""
        if not isinstance(data, dict):
            raise ValueError("must be an object")
        try:
            settings = cls(
                enabled=bool(data.get("enabled", True)),
                period_seconds=int(data.get("periodSeconds", 60)),
                max_error_rate_increase=float(data.get("maxErrorRateIncrease", 1.0)),
                max_latency_increase_percent=float(data.get("maxLatencyIncreasePercent", 50.0)),
                latency_statistic=str(data.get("latencyStatistic", "p99")),
                min_requests=int(data.get("minRequests", 50)),
                verify_minutes=float(data.get("verifyMinutes", 0.0)),
                delay_seconds=int(data.get("delaySeconds", 0)),
                prometheus=data.get("prometheus"),
            )
        except (TypeError, ValueError) as e:
            raise ValueError(f"has a field of the wrong type ({e})") from None
        if settings.period_seconds < 1 or settings.min_requests < 1 or settings.delay_seconds < 0:
            raise ValueError("needs periodSeconds >= 1, minRequests >= 1 and delaySeconds >= 0")
        if not STATISTIC.fullmatch(settings.latency_statistic):
            raise ValueError(
                f"latencyStatistic {settings.latency_statistic!r} is not p<N> or Average"
            )
        return settings

    @property
    def quantile(self) -> float | None:
        """The latency statistic as a quantile (0.99 for p99); None for Average or Maximum."""
        match = STATISTIC.fullmatch(self.latency_statistic)
        return float(match.group(2)) / 100 if match and match.group(2) else None


@dataclass(frozen=True)
class Window:
    """One color's figures over one analysis window starting at `start` (epoch seconds)."""

    start: float
    requests: float
    errors: float
    latency: float | None  # seconds, the configured statistic; None when nothing was served

    @property
    def error_rate(self) -> float:
        """Errors per 100 requests."""
        return 100.0 * self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Judgement:
    state: JudgementState
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)


def judge(
    target: list[Window], baseline: list[Window], settings: Settings, names: tuple[str, str]
) -> Judgement:
    """Judge the `target` color's windows against the `baseline` color's (`names` are the two
    colors' names, for the detail)."""
    enough = settings.min_requests
    latest = [(name, ws[-1]) for name, ws in zip(names, (target, baseline), strict=True) if ws]
    if len(latest) < 2:
        missing = names[0] if not target else names[1]
        return Judgement("inconclusive", f"no {settings.period_seconds}s window of {missing} yet")
    short = [(n, w) for n, w in latest if w.requests < enough]
    figures = _figures(target, baseline, settings, names)
    if short:
        said = ", ".join(f"{n} {w.requests:.0f}" for n, w in short)
        return Judgement(
            "inconclusive",
            f"too few requests in the last {settings.period_seconds}s window ({said}; needs "
            f"{enough} on each color)",
            figures,
        )
    t = [w for w in target if w.requests >= enough]
    b = [w for w in baseline if w.requests >= enough]
    margin = settings.max_error_rate_increase
    errors_p = _greater([w.error_rate - margin for w in t], [w.error_rate for w in b])
    counts_p = _excess(t, b, margin)
    scale = 1 + settings.max_latency_increase_percent / 100
    latency_p = _greater(
        [w.latency / scale for w in t if w.latency is not None],
        [w.latency for w in b if w.latency is not None],
    )
    figures["p"] = {"errorRate": errors_p, "errorCounts": counts_p, "latency": latency_p}
    said = _said(figures, names, settings)
    failed = []
    if errors_p is not None and errors_p <= ALPHA and counts_p <= ALPHA:
        failed.append(f"error rate more than {margin:g} points above {names[1]}'s")
    if latency_p is not None and latency_p <= ALPHA:
        failed.append(
            f"{settings.latency_statistic} latency more than "
            f"{settings.max_latency_increase_percent:g}% above {names[1]}'s"
        )
    if failed:
        return Judgement("fail", f"{names[0]} {' and '.join(failed)} ({said})", figures)
    return Judgement("ok", said, figures)


def _greater(x: list[float], y: list[float]) -> float | None:
    """One-sided Mann-Whitney U p-value that `x` tends to exceed `y`; None without data or
    when every value ties (nothing to rank)."""
    from scipy.stats import mannwhitneyu  # here: scipy takes a second to import

    if not x or not y or len(set(x) | set(y)) == 1:
        return None
    p = float(mannwhitneyu(x, y, alternative="greater").pvalue)
    return None if math.isnan(p) else round(p, 6)


def _excess(target: list[Window], baseline: list[Window], margin: float) -> float:
    """One-sided p-value that the target's pooled error rate exceeds the baseline's by more
    than `margin` points, given how many requests each side's rate rests on (a normal test
    of two proportions): a few windows of few requests cannot fail a release on noise alone."""
    from scipy.stats import norm

    def pooled(windows: list[Window]) -> tuple[float, float]:
        requests = sum(w.requests for w in windows)
        return sum(w.errors for w in windows) / requests, requests

    (p1, n1), (p2, n2) = pooled(target), pooled(baseline)
    excess = 100 * (p1 - p2) - margin
    spread = 100 * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    if spread == 0:
        return 0.0 if excess > 0 else 1.0
    return round(float(norm.sf(excess / spread)), 6)


def _figures(
    target: list[Window], baseline: list[Window], settings: Settings, names: tuple[str, str]
) -> dict[str, Any]:
    """Both colors' figures over the windows so far (what a sample and the report show)."""

    def summary(windows: list[Window]) -> dict[str, Any]:
        requests = sum(w.requests for w in windows)
        errors = sum(w.errors for w in windows)
        latencies = [w.latency for w in windows if w.latency is not None]
        return {
            "windows": len(windows),
            "requests": round(requests),
            "errorRate": round(100.0 * errors / requests, 3) if requests else None,
            "latency": round(sum(latencies) / len(latencies), 4) if latencies else None,
        }

    return {
        "target": {"color": names[0], **summary(target)},
        "baseline": {"color": names[1], **summary(baseline)},
        "statistic": settings.latency_statistic,
    }


def _said(figures: dict[str, Any], names: tuple[str, str], settings: Settings) -> str:
    def one(side: dict[str, Any]) -> str:
        rate = "n/a" if side["errorRate"] is None else f"{side['errorRate']:.2f}%"
        latency = "n/a" if side["latency"] is None else f"{side['latency']:.3f}s"
        return f"{side['color']} {rate} errors, {settings.latency_statistic} {latency}"

    windows = figures["target"]["windows"]
    return f"{one(figures['target'])} vs {one(figures['baseline'])} over {windows} window(s)"


def window_starts(start: float, end: float, period: int) -> list[float]:
    """The starts of the complete windows (aligned to multiples of `period`) from the one
    holding `start` up to `end`."""
    first = math.floor(start / period) * period
    last = math.floor(end / period) * period  # the window holding `end` is not complete
    return [float(t) for t in range(int(first), int(last), period)]
