"""The metric analysis as it was before its tests became anytime-valid: a one-sided
Mann-Whitney U test and a test of two proportions, each a fixed-sample test applied after
every window (the judgement of cutover/analysis.py until then, unchanged; its settings and
windows are today's types). Kept only so that benchmarks/analysis.py measures it beside the
current test in the same run; not part of the product."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from cutover_gates.analysis_config import Settings

from cutover.analysis import JudgementState, Window

ALPHA = 0.05


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
