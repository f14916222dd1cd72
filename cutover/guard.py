"""Guards watched while a step bakes: alarms, ready instances (healthy targets on ECS, ready
replicas on Kubernetes), HTTP probes.

Each check returns a Verdict: ok, fail, or inconclusive (the API could not answer after
botocore's bounded retries). The shift counts consecutive inconclusive polls against a limit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from cutover_gates.contract import COLORS, Color

from cutover.aws import client
from cutover.deployment import Options
from cutover.service import Service
from cutover.weights import Weights

State = Literal["ok", "fail", "inconclusive"]
# Guards whose failure means users are not being served (counted as downtime).
SERVING_GUARDS = ("targets", "probe")


@dataclass(frozen=True)
class Verdict:
    guard: str
    state: State
    detail: str


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
            alarms = [
                alarm
                for i in range(0, len(self.names), 100)  # the API takes 100 names a call
                for alarm in client("cloudwatch").describe_alarms(
                    AlarmNames=self.names[i : i + 100]
                )["MetricAlarms"]
            ]
        except Exception as e:  # noqa: BLE001 - any API failure is inconclusive, not a crash
            return _inconclusive(self.kind, e)
        firing = sorted(a["AlarmName"] for a in alarms if a["StateValue"] == "ALARM")
        if firing:
            return Verdict(self.kind, "fail", f"in ALARM: {', '.join(firing)}")
        return Verdict(self.kind, "ok", f"{len(alarms)} alarm(s) OK")


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
        except Exception as e:  # noqa: BLE001
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
        import urllib.error
        import urllib.request  # here, not at the top: a rollback process never probes

        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as e:
            status = e.code
        except (urllib.error.URLError, OSError) as e:
            return Verdict(self.kind, "fail", f"{self.url}: {e}")
        state: State = "ok" if status == self.expected else "fail"
        return Verdict(self.kind, state, f"{self.url}: {status} (expected {self.expected})")


def guards_for(services: list[Service], options: Options, weights: Weights) -> list[Guard]:
    """What watches a step serving `weights`: the target color's alarms, ready instances of
    every color serving traffic, and the shift's probes."""
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
    return found + [ProbeGuard(url, status) for url, status in options.probes]


def _floor(service: Service, color: Color, options: Options) -> int:
    """Ready instances `color` must keep: 1, or for the target color on a fleet with a
    disruption budget, its capacity less what the budget allows."""
    allowed = service.fleet.disruptions_allowed
    if allowed is None or color != options.target:
        return 1
    return max(1, int(service.outputs.services[color]["capacity"]) - allowed)


# A wait in progress is told at most this often (and at most every 10% of a bake).
PROGRESS_SECONDS = 10.0
PAUSE_PROGRESS_SECONDS = 60.0


def progress(elapsed: float, seconds: float | None, verdicts: list[Verdict]) -> str:
    """One line of a wait in progress: how far along, and each guard's last verdict."""
    states = ", ".join(f"{v.guard} {v.state}" for v in verdicts)
    if seconds is None:
        return f"  paused {elapsed:.0f}s; guards: {states}"
    left = seconds - elapsed
    return f"  baked {elapsed:.0f}s of {seconds:g}s ({left:.0f}s left); guards: {states}"
