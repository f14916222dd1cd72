"""Guards watched while a step bakes: alarms, ready instances (healthy targets on ECS, ready
replicas on Kubernetes), HTTP probes, and those judged per window from the metrics: the
analysis of target against baseline and the downtime guard (`cutover.engine.metric_guards`).

Each check returns a Verdict: ok, fail, or inconclusive (the API could not answer after
botocore's bounded retries, or too few requests to judge). The shift counts each guard's
consecutive inconclusive verdicts against a limit; a verdict repeated between two analysis
windows is not `fresh` and is not counted again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from cutover_gates.contract import COLORS, Color

from cutover.aws import describe_alarms
from cutover.deployment import Options
from cutover.fleet import keeps_ready
from cutover.service import Service
from cutover.timeline import Sample
from cutover.weights import Weights, format_weights

State = Literal["ok", "fail", "inconclusive"]
# Guards whose failure means users are not being served (counted as downtime).
SERVING_GUARDS = ("targets", "probe")
# The guards judged per window from the metrics (cutover.engine.metric_guards), whose figures
# a sample keeps.
ANALYSIS, DOWNTIME = "analysis", "downtime"


@dataclass(frozen=True)
class Verdict:
    guard: str
    state: State
    detail: str
    fresh: bool = True  # False: the analysis repeating its last verdict between windows
    figures: dict[str, Any] | None = field(default=None, compare=False)


class Guard(Protocol):
    kind: str

    def check(self) -> Verdict: ...


def _inconclusive(kind: str, error: Exception) -> Verdict:
    return Verdict(kind, "inconclusive", f"{type(error).__name__}: {error}")


class AlarmGuard:
    """Fails when any of the named CloudWatch alarms is in ALARM."""

    kind = "alarms"

    def __init__(self, names: list[str]) -> None:
        self.names = sorted(set(names))

    def check(self) -> Verdict:
        try:
            alarms = list(describe_alarms(self.names).values())
        except Exception as e:  # noqa: BLE001 - any API failure is inconclusive, not a crash
            return _inconclusive(self.kind, e)
        firing = sorted(a["AlarmName"] for a in alarms if a["StateValue"] == "ALARM")
        if firing:
            return Verdict(self.kind, "fail", f"in ALARM: {', '.join(firing)}")
        return Verdict(self.kind, "ok", f"{len(alarms)} alarm(s) OK")


class RoutingGuard:
    """Fails when a listener or route no longer serves the split the shift wrote: another
    writer moved it (a `pulumi up`, a console, a late write of an older deployment), and
    the shift gives back what it found rather than bake a split it did not make."""

    kind = "routing"

    def __init__(self, services: list[Service], expected: list[Weights]) -> None:
        self.expected = list(zip(services, expected, strict=True))

    def check(self) -> Verdict:
        try:
            served = [(s.outputs.name, s.router.served(), w) for s, w in self.expected]
        except Exception as e:  # noqa: BLE001 - unreadable is inconclusive, not a crash
            return _inconclusive(self.kind, e)
        moved = [f"{name} serves {format_weights(now)} where {format_weights(w)} was written"
                 for name, now, w in served if now != w]  # fmt: skip
        if moved:
            return Verdict(self.kind, "fail", "; ".join(moved) + ": another writer moved it")
        return Verdict(
            self.kind, "ok", "serving " + ", ".join(format_weights(w) for *_, w in served)
        )


class ReadyGuard:
    """Fails when a color serving traffic has fewer ready than its floor; each is read once.

    None ready on a color means users are not served: verdict `targets` (counted as
    downtime). Above none but below a floor above 1 (the target color on Kubernetes: more
    pods unready than its disruption budget allows) means the release is failing under
    traffic while still serving: verdict `capacity`.
    """

    kind = "targets"

    def __init__(self, counts: Mapping[str, tuple[Callable[[], int], int]]) -> None:
        self.counts = counts  # label (service/color) -> (how many are ready now, floor)

    def check(self) -> Verdict:
        try:
            counts = {label: (count(), floor) for label, (count, floor) in self.counts.items()}
        except Exception as e:  # noqa: BLE001 - an uncounted fleet is inconclusive, not a crash
            return _inconclusive(self.kind, e)

        def describe(labels: list[str]) -> str:
            return ", ".join(
                f"{label}: {counts[label][0]} ready"
                + (f" (needs {counts[label][1]})" if counts[label][1] > 1 else "")
                for label in sorted(labels)
            )

        if any(n == 0 for n, _ in counts.values()):
            return Verdict(self.kind, "fail", describe(list(counts)))
        short = [label for label, (n, floor) in counts.items() if n < floor]
        if short:
            return Verdict("capacity", "fail", describe(short))
        return Verdict(self.kind, "ok", describe(list(counts)))


class ProbeGuard:
    """Fails when an HTTP GET of `url` does not answer with `expected` status."""

    kind = "probe"

    def __init__(self, url: str, expected: int = 200, timeout: float = 2.0) -> None:
        self.url, self.expected, self.timeout = url, expected, timeout

    def check(self) -> Verdict:
        import urllib.error  # slow to import: only a shift with probes polls them
        import urllib.request  # slow to import: only a shift with probes polls them

        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as e:
            status = e.code
        except (urllib.error.URLError, OSError) as e:
            return Verdict(self.kind, "fail", f"{self.url}: {e}")
        state: State = "ok" if status == self.expected else "fail"
        return Verdict(self.kind, state, f"{self.url}: {status} (expected {self.expected})")


def guards_for(
    services: list[Service],
    options: Options,
    weights: Weights,
    analysis: Guard | None,
    served: list[Weights] | None = None,
    downtime: Guard | None = None,
) -> list[Guard]:
    """What watches a step serving `weights`: the target color's alarms, ready instances of
    every color serving traffic, the routing still serving what was written (`served`, per
    service; by default `weights` on each), the shift's probes, its metric `analysis` and its
    `downtime` guard (`cutover.engine.metric_guards`)."""
    found: list[Guard] = []
    alarms = [n for s in services for n in s.outputs.alarm_names[options.target]]
    if alarms:
        found.append(AlarmGuard(alarms))
    serving = {
        f"{s.outputs.name}/{c}": (functools.partial(s.fleet.ready, c), _floor(s, c, options))
        for s in services
        for c in COLORS
        if weights[c] > 0
    }
    found.append(ReadyGuard(serving))
    found.append(RoutingGuard(services, served or [weights] * len(services)))
    found += [ProbeGuard(url, status) for url, status in options.probes]
    return found + [g for g in (analysis, downtime) if g is not None]


def _floor(service: Service, color: Color, options: Options) -> int:
    """Ready instances `color` must keep: 1, or for the target color on a fleet with a
    disruption budget, what it keeps ready (`cutover.fleet.keeps_ready`)."""
    if service.fleet.disruptions_allowed is None or color != options.target:
        return 1
    return keeps_ready(service.outputs, service.fleet, color)


class Tally:
    """Each guard's fresh inconclusive verdicts in a row, against the shift's limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counts: dict[str, int] = {}

    def add(self, verdicts: list[Verdict]) -> str | None:
        """Count a poll's verdicts; what to say when a guard went past the limit."""
        for v in verdicts:
            if v.fresh:
                self.counts[v.guard] = (
                    self.counts.get(v.guard, 0) + 1 if v.state == "inconclusive" else 0
                )
        worst = max(self.counts.values(), default=0)
        if worst <= self.limit:
            return None
        details = "; ".join(f"{v.guard}: {v.detail}" for v in verdicts if v.state == "inconclusive")
        return f"{worst} verdicts in a row: {details}"


def sample_of(verdicts: list[Verdict], weights: Weights, t: float) -> Sample:
    """A poll as the journal keeps it, with the analysis's and the downtime guard's figures
    when they judged a window."""

    def judged(kind: str) -> dict[str, Any] | None:
        return next(({"state": v.state, **v.figures} for v in verdicts
                     if v.guard == kind and v.fresh and v.figures), None)  # fmt: skip

    return Sample(
        t=t,
        weights=weights,
        ok=all(v.state != "fail" for v in verdicts if v.guard in SERVING_GUARDS),
        guards={v.guard: v.state for v in verdicts},
        analysis=judged(ANALYSIS),
        downtime=judged(DOWNTIME),
    )


# A wait in progress is told at most this often (and at most every 10% of a bake).
PROGRESS_SECONDS = 10.0
PAUSE_PROGRESS_SECONDS = 60.0


@dataclass
class Progress:
    """A wait in progress (a bake, a pause, the verification): how far along, and each
    guard's last verdict. Said as a line now and then; on a terminal, redrawn in place as
    time passes (its text is taken at each redraw)."""

    began: float  # on `clock`
    seconds: float | None  # None: a pause, until promoted
    clock: Callable[[], float]
    verdicts: list[Verdict] = field(default_factory=list)

    def __str__(self) -> str:
        elapsed = max(0.0, self.clock() - self.began)
        states = ", ".join(f"{v.guard} {v.state}" for v in self.verdicts)
        if self.seconds is None:
            return f"  paused {elapsed:.0f}s; guards: {states}"
        done = min(elapsed, self.seconds)
        left = self.seconds - done
        return f"  baked {done:.0f}s of {self.seconds:g}s ({left:.0f}s left); guards: {states}"
