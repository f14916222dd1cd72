"""The downtime guard's judgement and the request-level downtime figure: the requests that
failed at the load balancer (or the Gateway) itself since a shift's first write, against its
own windows just before it. Pure: figures in, a judgement out; where they come from is
`cutover.metrics`, when to judge the guard's (`cutover.engine.guard.DowntimeGuard`).

A request failed there when the load balancer answered it with its own 5xx, or refused its
connection: on an ALB, `HTTPCode_ELB_5XX_Count` and `RejectedConnectionCount` (AWS publishes
both per load balancer only); on a Gateway, what `gatewayErrors` counts. The target's own 5xx
are the analysis's (`cutover.analysis`), color against color.

The test is the analysis's error-rate e-process against a fixed baseline
(`cutover.evidence.error_rate_evidence`): the failed share since the first write more than
`maxFailedRequestIncrease` points above the share in the analysis's BASELINE_WINDOWS windows
before it
fails the shift, with a false-fail rate at that margin of at most ALPHA however many windows
are judged. Windows are pooled into looks until they hold `minRequests`; past
MAX_POOLED_WINDOWS the verdict is inconclusive, as the analysis's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cutover_gates.analysis_config import Settings

from cutover.analysis import MAX_POOLED_WINDOWS, JudgementState, Window, looks, points
from cutover.evidence import THRESHOLD, error_rate_evidence

Span = tuple[float, float]  # [start, end) in epoch seconds


@dataclass(frozen=True)
class LoadBalancerWindow:
    """What the load balancer (an ALB, or the Gateway) did itself over one window starting at
    `start`: the requests it took, those that failed there, the spans of the metrics'
    resolution that held any failure, and each color's connection errors where its metrics
    name them (an ALB's, per target group)."""

    start: float
    requests: float
    failed: float
    failing: tuple[Span, ...] = ()
    connection_errors: Mapping[str, float] = field(default_factory=dict)

    @property
    def window(self) -> Window:
        """As the analysis's windows: the failed requests are its errors."""
        return Window(self.start, self.requests, self.failed, None)


def failing_seconds(spans: Iterable[Span]) -> float:
    """How long the union of `spans` lasts: the seconds with any failed request, counted once
    however many services' spans overlap."""
    total, reach = 0.0, -math.inf
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


@dataclass(frozen=True)
class Counted:
    """Requests and failures over some windows (of one service or several: the seconds with
    failures are their spans' union), as a sample keeps them."""

    windows: int
    requests: int
    failed: int
    failed_seconds: float

    @classmethod
    def of(cls, windows: list[LoadBalancerWindow]) -> Counted:
        usable = [w for w in windows if w.window.impossible() is None]
        return cls(
            len(usable),
            round(sum(w.requests for w in usable)),
            round(sum(w.failed for w in usable)),
            failing_seconds(s for w in usable for s in w.failing),
        )

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.failed / self.requests, 4) if self.requests else None

    def to_json(self) -> dict[str, Any]:
        return {"windows": self.windows, "requests": self.requests, "failed": self.failed,
                "failedPercent": self.percent, "failedSeconds": round(self.failed_seconds, 3)}  # fmt: skip


@dataclass(frozen=True)
class DowntimeJudgement:
    """One service's verdict at its latest window: the evidence (the e-value's log, highest
    over the looks; None before the first look) against log(1/ALPHA)."""

    state: JudgementState
    detail: str
    looks: int = 0
    evidence: float | None = None


def judge_downtime(
    during: list[LoadBalancerWindow],
    before: list[LoadBalancerWindow],
    settings: Settings,
    where: str = "the load balancer",
) -> DowntimeJudgement:
    """Judge the failed requests of the windows `during` the shift (from the one holding its
    first write) against the windows `before` it; `where` names what answered them in the
    detail ("the load balancer", "the Gateway")."""
    period, enough = settings.period_seconds, settings.min_requests
    margin = settings.max_failed_request_increase
    if not during:
        return DowntimeJudgement("inconclusive", f"no {period}s window of the shift yet")
    problem = during[-1].window.impossible()
    if problem:
        at = time.strftime("%H:%M:%S", time.gmtime(during[-1].start))
        return DowntimeJudgement(
            "inconclusive",
            f"{where}'s {period}s window at {at} has impossible figures ({problem}); not judged",
        )
    target = [w.window for w in during if w.window.impossible() is None]
    baseline = [w.window for w in before if w.window.impossible() is None]
    base = Counted.of([w for w in before if w.window.impossible() is None])
    if base.requests < enough:
        return DowntimeJudgement(
            "inconclusive",
            f"{where}'s {len(baseline)} window(s) before the shift hold {base.requests} "
            f"requests; the baseline needs {enough}",
        )
    done, pooling = looks(target, baseline, enough, fixed_baseline=True)
    pooled = sum(w.requests for w in pooling.target)
    said = (
        f"{len(pooling.target)} {period}s window(s) pooled hold {pooled:.0f} requests at "
        f"{where}; a look needs {enough}"
    )
    if len(pooling.target) > MAX_POOLED_WINDOWS:
        return DowntimeJudgement("inconclusive", f"too few requests: {said}", len(done))
    if not done:
        return DowntimeJudgement("ok", f"pooling: {said}")
    counts = [
        (sum(w.errors for w in look.target), sum(w.requests for w in look.target),
         float(base.failed), float(base.requests))
        for look in done
    ]  # fmt: skip
    evidence = error_rate_evidence(counts, margin / 100, fixed=True)
    judged = [w for look in done for w in look.target]
    failed, requests = sum(w.errors for w in judged), sum(w.requests for w in judged)
    figures = (
        f"{failed:.0f} of {requests:.0f} requests failed at {where} "
        f"({100 * failed / requests:.3f}%) over {len(judged)} window(s), {len(done)} look(s), "
        f"against {base.failed} of {base.requests} ({base.percent or 0:.3f}%) in the "
        f"{base.windows} window(s) before the shift"
    )
    if evidence >= THRESHOLD:
        return DowntimeJudgement(
            "fail",
            f"failed requests more than {points(margin)} above the share before the shift "
            f"({figures})",
            len(done),
            evidence,
        )
    return DowntimeJudgement("ok", figures, len(done), evidence)
