"""The guards judged once per window from a stack's metrics: the metric analysis (the target
color against the baseline, `cutover.analysis`) and the downtime guard (the load balancer's own
failed requests against its own before the shift, `cutover.downtime`). Both read the same
`cutover:analysis` settings and metric source (`cutover.metrics`), judge a window once its
figures are published, and repeat their last verdict between windows (not fresh).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from cutover_gates.contract import COLORS, Color, other_color

from cutover.deployment import Deployment, Options
from cutover.engine.guard import ANALYSIS, DOWNTIME, Verdict
from cutover.outputs import analysis_of
from cutover.service import Service
from cutover.timeline import EventType
from cutover.weights import Weights

if TYPE_CHECKING:  # the analysis is imported where it runs: a rollback process never judges
    from cutover_gates.analysis_config import Settings

    from cutover.downtime import LoadBalancerWindow
    from cutover.metrics import LoadBalancerSource, MetricSource, Source


# Which of several stacks' verdicts a guard gives: a failure, else an inconclusive one.
WORST_FIRST = {"fail": 0, "inconclusive": 1, "ok": 2}


class Judged(Protocol):
    @property
    def state(self) -> str: ...

    @property
    def detail(self) -> str: ...


J = TypeVar("J", bound=Judged)


def worst(judged: Sequence[tuple[str, J]]) -> tuple[J, str]:
    """The worst of each stack's judgement (by name), and its detail, naming the stack when
    there are several."""
    name, judgement = min(judged, key=lambda j: WORST_FIRST[j[1].state])
    return judgement, (f"{name}: " if len(judged) > 1 else "") + judgement.detail


class WindowClock:
    """When a guard judged per window judges again: once a window is over and its figures are
    published (`delay` seconds after its end). Between windows it does not: the guard repeats
    its last verdict, not fresh, so a window is counted once however often the shift polls."""

    def __init__(self, period: int, delay: int, since: float, now: Callable[[], float]) -> None:
        self.period, self.delay, self.now = period, delay, now
        self.judged_until = since - since % period

    def due(self) -> float | None:
        """Up to when figures are published, when a window ended since the last judgement;
        None otherwise."""
        now = self.now() - self.delay
        until = now - now % self.period
        if until <= self.judged_until:
            return None
        self.judged_until = until
        return now


class AnalysisGuard:
    """Judges the target color against the baseline color once per analysis window.

    The sequential tests run over every window since the phase began: since the first step
    while the other color serves (the live baseline), since the target first served
    everything against the other color's windows before the shift began. Between windows the
    last verdict is repeated (not fresh).
    """

    kind = ANALYSIS

    def __init__(
        self,
        sources: Sequence[tuple[str, MetricSource, Settings]],
        target: Color,
        live_baseline: bool,
        phase_began: float,
        shift_began: float,
        now: Callable[[], float],
    ) -> None:
        self.sources, self.target, self.live_baseline = sources, target, live_baseline
        self.phase_began, self.shift_began = phase_began, shift_began
        self.period = max(settings.period_seconds for _, _, settings in sources)
        delay = max(settings.delay_seconds for _, _, settings in sources)
        self.clock = WindowClock(self.period, delay, phase_began, now)
        self.last = Verdict(
            self.kind, "ok", f"first {self.period}s window not over yet", fresh=False
        )
        self.before: dict[str, list[Any]] = {}  # the pre-shift baseline, read once

    def check(self) -> Verdict:
        from cutover.analysis import BASELINE_WINDOWS, judge  # only a shift judges
        from cutover.metrics import MetricsUnavailable  # only a shift judges

        now = self.clock.due()
        if now is None:
            return replace(self.last, fresh=False)
        baseline = other_color(self.target)
        judgements = []
        try:
            for name, source, settings in self.sources:
                windows = source.windows(self.phase_began, now)
                if self.live_baseline:
                    before = windows[baseline]
                else:
                    if name not in self.before:
                        start = self.shift_began - BASELINE_WINDOWS * settings.period_seconds
                        self.before[name] = source.windows(start, self.shift_began)[baseline]
                    before = self.before[name]
                judgement = judge(windows[self.target], before, settings, (self.target, baseline),
                                  fixed_baseline=not self.live_baseline)  # fmt: skip
                judgements.append((name, judgement))
        except MetricsUnavailable as e:
            self.last = Verdict(self.kind, "inconclusive", str(e))
            return self.last
        judgement, detail = worst(judgements)
        figures = judgement.figures.to_json() if judgement.figures is not None else None
        self.last = Verdict(self.kind, judgement.state, detail, figures=figures)
        return self.last


class DowntimeGuard:
    """Judges the requests that failed at the load balancer (or Gateway) itself since the
    shift's first write against its BASELINE_WINDOWS windows just before that write, once per
    window (`cutover.downtime.judge_downtime`). Its figures are the request-level downtime a
    deployment keeps: every request and failure since the first write, and the seconds with
    any. One guard watches the whole shift, step after step (the shift keeps it)."""

    kind = DOWNTIME

    def __init__(
        self,
        sources: Sequence[tuple[str, str, LoadBalancerSource, Settings]],
        moved_at: float,
        now: Callable[[], float],
    ) -> None:
        self.sources, self.moved_at = sources, moved_at  # (name, what answers, source, settings)
        period = max(settings.period_seconds for *_, settings in sources)
        delay = max(settings.delay_seconds for *_, settings in sources)
        self.clock = WindowClock(period, delay, moved_at, now)
        self.last = Verdict(self.kind, "ok", f"first {period}s window not over yet", fresh=False)
        self.before: dict[str, list[LoadBalancerWindow]] = {}  # read once

    def check(self) -> Verdict:
        from cutover.analysis import BASELINE_WINDOWS  # only a shift judges
        from cutover.downtime import Counted, judge_downtime  # only a shift judges
        from cutover.evidence import THRESHOLD  # only a shift judges
        from cutover.metrics import MetricsUnavailable  # only a shift judges

        now = self.clock.due()
        if now is None:
            return replace(self.last, fresh=False)
        judged = []
        try:
            for name, where, source, settings in self.sources:
                during = source.load_balancer(self.moved_at, now)
                if name not in self.before:
                    start = self.moved_at - BASELINE_WINDOWS * settings.period_seconds
                    self.before[name] = source.load_balancer(start, self.moved_at)
                judgement = judge_downtime(during, self.before[name], settings, where)
                judged.append((name, judgement, during))
        except MetricsUnavailable as e:
            self.last = Verdict(self.kind, "inconclusive", str(e))
            return self.last
        judgement, detail = worst([(name, j) for name, j, _ in judged])
        evidence = [j.evidence for _, j, _ in judged if j.evidence is not None]
        figures = {
            "during": Counted.of([w for *_, during in judged for w in during]).to_json(),
            "before": Counted.of([w for ws in self.before.values() for w in ws]).to_json(),
            "connectionErrors": {
                c: round(sum(w.connection_errors.get(c, 0.0) for *_, ws in judged for w in ws))
                for c in COLORS
            },
            "looks": max(j.looks for _, j, _ in judged),
            "evidence": None if not evidence else round(max(evidence), 3),
            "threshold": round(THRESHOLD, 3),
            "maxIncrease": max(s.max_failed_request_increase for *_, s in self.sources),
        }
        self.last = Verdict(self.kind, judgement.state, detail, figures=figures)
        return self.last


def analysis_guard(
    services: list[Service],
    options: Options,
    weights: Weights,
    began: float,
    now: Callable[[], float],
    phase_began: float | None = None,
) -> AnalysisGuard | None:
    """The analysis of a step serving `weights`, when the stacks enable it and the target
    serves some traffic (and the shift did not turn it off). `began`: when the shift began,
    for a baseline before it; `phase_began`: since when its tests have looked."""
    if not options.analysis or weights[options.target] == 0:
        return None
    sources = [(s.outputs.name, source, settings) for s, source, settings in _sources(services)]
    if not sources:
        return None
    live = weights[other_color(options.target)] > 0
    phase = now() if phase_began is None else phase_began
    return AnalysisGuard(sources, options.target, live, phase, began, now)


def downtime_guard(
    services: list[Service], deployment: Deployment, now: Callable[[], float]
) -> DowntimeGuard | None:
    """The downtime guard of a shift that moved traffic (from its first write on), when the
    stacks enable the analysis and the shift did not turn it off: the two read the same
    settings and metrics."""
    moved_at = next((e.t for e in deployment.events if e.type == EventType.STEP_INTENT), None)
    if moved_at is None or not deployment.options.analysis:
        return None
    sources = [
        (s.outputs.name, "the Gateway" if s.outputs.routing == "gateway" else "the load balancer",
         source, settings)
        for s, source, settings in _sources(services)
    ]  # fmt: skip
    return DowntimeGuard(sources, moved_at, now) if sources else None


def _sources(services: list[Service]) -> list[tuple[Service, Source, Settings]]:
    """Each service whose stack enables the analysis, with its metric source and settings."""
    from cutover.metrics import source_for  # only a shift judges: not the watchdog, a rollback

    return [
        (s, source, settings)
        for s in services
        for settings in [analysis_of(s.outputs)]
        if settings is not None and settings.enabled
        for source in [source_for(s.outputs)]
        if source is not None
    ]
