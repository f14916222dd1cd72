"""Metric analysis: judge the target color against the baseline color, honestly however often.

Pure: figures in, a judgement out. Where the figures come from (CloudWatch, Prometheus) is
`cutover.metrics`; when to judge is the analysis guard's (`cutover.engine.guard`). The settings are
`cutover_gates.analysis_config` (declared once for the program and the helper).

The windows so far are pooled into looks (consecutive windows until both colors have
`minRequests`), and each metric is a sequential test over the looks whose false-fail rate at
its margin stays at most ALPHA however many looks there are (`cutover.evidence`).

This is the fix Netflix published for canary analysis (Lindon, Sanden and Shirikian, "Rapid
regression detection in software deployments through sequential testing", KDD 2022). A metric
may be `critical` (fails the release alone) or not (fails it only with every other), and
`dryRun` (judged and reported, never failing). Impossible figures (errors above requests,
negative counts, NaN) are never judged: that window is inconclusive, naming the figure.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from cutover_gates.analysis_config import Settings

from cutover.evidence import THRESHOLD, error_rate_evidence, latency_evidence

# The baseline when the target serves everything: this many windows before the shift began.
BASELINE_WINDOWS = 5
# Windows pooled to reach `minRequests` before the verdict turns inconclusive.
MAX_POOLED_WINDOWS = 5

JudgementState = Literal["ok", "fail", "inconclusive"]


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

    def impossible(self) -> str | None:
        """What makes these figures impossible, or None."""
        numbers = {"requests": self.requests, "5xx": self.errors}
        if self.latency is not None:
            numbers["latency"] = self.latency
        for name, value in numbers.items():
            if value != value or value in (math.inf, -math.inf):
                return f"{name} is {value}"
            if value < 0:
                return f"{name} is {value:g}, below zero"
        if self.errors > self.requests:
            return f"{self.errors:g} 5xx of {self.requests:g} requests (more errors than requests)"
        return None


@dataclass(frozen=True)
class Side:
    """One color's figures over the windows judged."""

    color: str
    windows: int
    requests: int
    error_rate: float | None  # percent
    latency: float | None  # seconds, the mean of the windows' statistic

    def to_json(self) -> dict[str, Any]:
        return {"color": self.color, "windows": self.windows, "requests": self.requests,
                "errorRate": self.error_rate, "latency": self.latency}  # fmt: skip

    @classmethod
    def of(cls, color: str, windows: list[Window]) -> Side:
        requests = sum(w.requests for w in windows)
        errors = sum(w.errors for w in windows)
        latencies = [w.latency for w in windows if w.latency is not None]
        return cls(
            color,
            len(windows),
            round(requests),
            round(100.0 * errors / requests, 3) if requests else None,
            round(sum(latencies) / len(latencies), 4) if latencies else None,
        )


@dataclass(frozen=True)
class MetricVerdict:
    """One metric's sequential test at its latest look: its evidence against "within the
    margin" (the e-value's log, highest over the looks), and the threshold log(1/ALPHA)."""

    metric: str
    failed: bool
    evidence: float | None  # None: nothing to judge it by yet
    critical: bool
    dry_run: bool

    def to_json(self) -> dict[str, Any]:
        evidence = None if self.evidence is None else round(self.evidence, 3)
        return {"failed": self.failed, "evidence": evidence, "threshold": round(THRESHOLD, 3),
                "critical": self.critical, "dryRun": self.dry_run}  # fmt: skip


@dataclass(frozen=True)
class Figures:
    """What a verdict rests on, as a sample and the report keep it."""

    target: Side
    baseline: Side
    statistic: str
    looks: int = 0
    metrics: tuple[MetricVerdict, ...] = ()
    pooling: Side | None = None  # the target's windows pooled towards the next look

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target.to_json(),
            "baseline": self.baseline.to_json(),
            "statistic": self.statistic,
            "looks": self.looks,
            "metrics": {m.metric: m.to_json() for m in self.metrics},
            "pooling": self.pooling.to_json() if self.pooling else None,
        }


@dataclass(frozen=True)
class Judgement:
    state: JudgementState
    detail: str
    figures: Figures | None = None


@dataclass(frozen=True)
class Look:
    """Windows pooled until both colors have `minRequests`: one look of the tests."""

    target: list[Window] = field(default_factory=list)
    baseline: list[Window] = field(default_factory=list)


def looks(
    target: list[Window], baseline: list[Window], min_requests: int, fixed_baseline: bool
) -> tuple[list[Look], Look]:
    """The complete looks, and the windows pooled towards the next one. Against a live
    baseline windows pair by their start; against a fixed one only the target's count."""
    by_start = {w.start: w for w in baseline}
    done: list[Look] = []
    pooling = Look()
    requests_t = requests_b = 0.0
    for t in target:
        b = by_start.get(t.start)
        if not fixed_baseline and b is None:
            continue
        pooling.target.append(t)
        requests_t += t.requests
        if not fixed_baseline and b is not None:
            pooling.baseline.append(b)
            requests_b += b.requests
        if requests_t >= min_requests and (fixed_baseline or requests_b >= min_requests):
            done.append(pooling)
            pooling, requests_t, requests_b = Look(), 0.0, 0.0
    return done, pooling


def judge(
    target: list[Window],
    baseline: list[Window],
    settings: Settings,
    names: tuple[str, str],
    fixed_baseline: bool = False,
) -> Judgement:
    """Judge the `target` color's windows so far against the `baseline` color's (`names`: the
    two colors, for the detail). `fixed_baseline`: the baseline is the other color's windows
    before the shift (the target serves everything)."""
    period = settings.period_seconds
    for name, ws in zip(names, (target, baseline), strict=True):
        if not ws:
            return Judgement("inconclusive", f"no {period}s window of {name} yet")
    latest = [(names[0], target[-1])] + ([] if fixed_baseline else [(names[1], baseline[-1])])
    for name, window in latest:
        problem = window.impossible()
        if problem:
            return Judgement(
                "inconclusive",
                f"{name}'s {period}s window at {_clock(window.start)} has impossible figures "
                f"({problem}); not judged",
            )
    target = [w for w in target if w.impossible() is None]
    baseline = [w for w in baseline if w.impossible() is None]
    enough = settings.min_requests
    if fixed_baseline and sum(w.requests for w in baseline) < enough:
        return Judgement(
            "inconclusive",
            f"{names[1]}'s {len(baseline)} window(s) before the shift hold "
            f"{sum(w.requests for w in baseline):.0f} requests; the baseline needs {enough}",
        )
    done, pooling = looks(target, baseline, enough, fixed_baseline)
    judged_t = [w for look in done for w in look.target]
    judged_b = baseline if fixed_baseline else [w for look in done for w in look.baseline]
    if not done:
        return _pooling(pooling, names, settings, Side.of(names[0], []), Side.of(names[1], []))
    verdicts = (
        _error_rate(done, baseline if fixed_baseline else None, settings),
        _latency(done, baseline if fixed_baseline else None, settings),
    )
    figures = Figures(
        Side.of(names[0], judged_t), Side.of(names[1], judged_b), settings.latency_statistic,
        len(done), verdicts,
    )  # fmt: skip
    said = _said(figures, settings)
    if len(pooling.target) > MAX_POOLED_WINDOWS:
        return _pooling(pooling, names, settings, figures.target, figures.baseline, figures)
    counting = [v for v in verdicts if not v.dry_run]
    failed = [v for v in counting if v.failed]
    fails = any(v.critical for v in failed) or (bool(failed) and len(failed) == len(counting))
    words = [_failure(v, names, settings) for v in failed]
    dry = [_failure(v, names, settings) for v in verdicts if v.dry_run and v.failed]
    tail = f"; dry run, not counted: {' and '.join(dry)}" if dry else ""
    if fails:
        return Judgement("fail", f"{names[0]} {' and '.join(words)} ({said}){tail}", figures)
    if failed:  # non-critical metrics alone
        tail = f"; not critical alone: {' and '.join(words)}" + tail
    return Judgement("ok", said + tail, figures)


def _pooling(
    pooling: Look,
    names: tuple[str, str],
    settings: Settings,
    target: Side,
    baseline: Side,
    figures: Figures | None = None,
) -> Judgement:
    """Windows still being pooled to reach `minRequests`: ok while few, inconclusive past
    MAX_POOLED_WINDOWS (too little traffic to judge)."""
    t = sum(w.requests for w in pooling.target)
    b = sum(w.requests for w in pooling.baseline)
    held = f"{names[0]} {t:.0f}" + ("" if not pooling.baseline else f", {names[1]} {b:.0f}")
    count = len(pooling.target)
    said = (
        f"{count} {settings.period_seconds}s window(s) pooled hold {held} requests; a look "
        f"needs {settings.min_requests} on each color"
    )
    shown = replace(
        figures or Figures(target, baseline, settings.latency_statistic),
        pooling=Side.of(names[0], pooling.target),
    )
    if count > MAX_POOLED_WINDOWS:
        return Judgement("inconclusive", f"too few requests: {said}", shown)
    return Judgement("ok", f"pooling: {said}", shown)


def _error_rate(done: list[Look], fixed: list[Window] | None, settings: Settings) -> MetricVerdict:
    """The error-rate test over the looks (`cutover.evidence.error_rate_evidence`)."""
    base = _counts(fixed) if fixed is not None else None
    counts = [(*_counts(look.target), *(base or _counts(look.baseline))) for look in done]
    best = error_rate_evidence(counts, settings.max_error_rate_increase / 100, fixed is not None)
    rule = settings.error_rate
    return MetricVerdict("errorRate", best >= THRESHOLD, best, rule.critical, rule.dry_run)


def _counts(windows: list[Window]) -> tuple[float, float]:
    return sum(w.errors for w in windows), sum(w.requests for w in windows)


def _latency(done: list[Look], fixed: list[Window] | None, settings: Settings) -> MetricVerdict:
    """The latency test over the looks (`cutover.evidence.latency_evidence`): each look's
    log(target / baseline) against a live baseline, or log(target) against the fixed
    baseline's windows, less log(1 + margin)."""
    shift = math.log(1 + settings.max_latency_increase_percent / 100)
    values = []
    for look in done:
        t = _mean_latency(look.target)
        b = _mean_latency(look.baseline) if fixed is None else 1.0
        if t is not None and b is not None:
            values.append(math.log(t / b) - shift)
    base = None if fixed is None else [math.log(w.latency) for w in fixed if w.latency]
    best = latency_evidence(values, base)
    rule = settings.latency
    failed = best is not None and best >= THRESHOLD
    return MetricVerdict("latency", failed, best, rule.critical, rule.dry_run)


def _mean_latency(windows: list[Window]) -> float | None:
    """The request-weighted mean of the windows' latency statistic."""
    weighted = [(w.requests, w.latency) for w in windows if w.latency and w.requests]
    total = sum(n for n, _ in weighted)
    return sum(n * lat for n, lat in weighted) / total if total else None


def points(increase: float) -> str:
    """Percentage points, said right: `1 point`, `0.5 points`, `5 points`."""
    return f"{increase:g} point" + ("" if increase == 1 else "s")


def _failure(verdict: MetricVerdict, names: tuple[str, str], settings: Settings) -> str:
    if verdict.metric == "errorRate":
        return f"error rate more than {points(settings.max_error_rate_increase)} above {names[1]}'s"
    return (
        f"{settings.latency_statistic} latency more than "
        f"{settings.max_latency_increase_percent:g}% above {names[1]}'s"
    )


def _said(figures: Figures, settings: Settings) -> str:
    def one(side: Side) -> str:
        rate = "n/a" if side.error_rate is None else f"{side.error_rate:.2f}%"
        latency = "n/a" if side.latency is None else f"{side.latency:.3f}s"
        return f"{side.color} {rate} errors, {settings.latency_statistic} {latency}"

    return (
        f"{one(figures.target)} vs {one(figures.baseline)} over {figures.target.windows} "
        f"window(s), {figures.looks} look(s)"
    )


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(t))


def first_look_problem(
    rate: float, share: float, settings: Settings, bake: float, service: str
) -> str | None:
    """Why a first step sending `share` (0 to 1) of `rate` requests a second to the target
    cannot be judged within its `bake`, with the step and the bake that would work; None when
    it can, or when the bake ends before any window of it is judged (nothing to size)."""
    period, need = settings.period_seconds, settings.min_requests
    smaller = share if share <= 0.5 else (1 - share if share < 1 else 1.0)  # fewer requests
    judged = min(bake - settings.delay_seconds, MAX_POOLED_WINDOWS * period) - period
    if judged <= 0 or rate * smaller * judged >= need:
        return None
    said = (
        f"{service}: at {rate:.3g} requests/s, a first step of {share:.0%} sends the "
        f"{'target' if smaller == share else 'baseline'} {rate * smaller * period:.0f} requests "
        f"a {period}s window; the analysis needs {need} on each color within the bake's "
        f"judged windows ({judged:.0f}s of a {bake:g}s bake)"
    )
    works = []
    step = math.ceil(100 * need / (rate * judged)) if rate else 101
    if share < 1 and step <= 50:
        works.append(f"a first step of {step}% (--steps {step},...)")
    seconds = need / (rate * smaller) + period if rate else math.inf
    if seconds <= MAX_POOLED_WINDOWS * period:
        works.append(f"a --bake of {math.ceil(seconds + settings.delay_seconds)}s")
    works += ["a lower cutover:analysis.minRequests", "--analysis off"]
    return f"{said}; what would work: {', or '.join(works)}"


def window_starts(start: float, end: float, period: int) -> list[float]:
    """The starts of the complete windows (aligned to multiples of `period`) from the one
    holding `start` up to `end`."""
    first = math.floor(start / period) * period
    last = math.floor(end / period) * period  # the window holding `end` is not complete
    return [float(t) for t in range(int(first), int(last), period)]
