"""A deployment's key figures, small enough to keep beside its document in the journal: what
`cutover kpis`, the report's success rate and the notifier's metrics add up. Pure.

A shift counts as a deployment once it moved traffic (it wrote weights): one given back
before that changed nothing users saw. It then ends in one of three ways (`Ending`): it
succeeded; it was rolled back before it succeeded (a failed change, with what gave the traffic
back: the guards that failed, or abort, deadline, watchdog...); or it succeeded and an operator
rolled it back later with `cutover rollback`, which is a success followed by a decision cutover
cannot see the reason for, so it is kept apart and never counted as a failed change.

Downtime is the time during which a color serving traffic had no healthy targets or a probe
failed (from the guard samples), counted from the first step the target served: a deployment
given back before any traffic reached the new color took nothing away from users. Beside it,
request by request: the requests the load balancer (or Gateway) took from the shift's first
write on and those that failed there, and the seconds with any failure, as the downtime
guard's latest judged window counted them (None where no downtime guard ran: the analysis
off, or a journal from before it). Rollback
time runs from the failure being observed to the restored weights read back as served; time
to restore from the first failing sample (or the failure, when no sample failed) to the same.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from cutover_gates.contract import Status

from cutover.deployment import Deployment
from cutover.timeline import EventType


def _rounded(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _number(value: Any) -> float | None:
    """A journaled count as a number; None when it is missing or not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _whole(value: Any) -> int | None:
    found = _number(value)
    return None if found is None else round(found)


class Ending(StrEnum):
    """How a deployment that moved traffic ended, as the KPIs count it."""

    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled back"  # before it succeeded: a failed change
    ROLLED_BACK_AFTER_SUCCESS = "rolled back after it succeeded"  # by an operator, later
    RUNNING = "running"  # not finished yet


# The reason a deployment's failure names when a guard failed; its detail lists them as
# `<guard>: <what it saw>; ...` (cutover.engine.bake).
GUARD_FAILED = "guard failed"
GUARD = re.compile(r"(?:^|; )([a-z][a-z-]*): ")


def cause_of(reason: str, detail: str) -> str:
    """What gave the traffic back, in a word or two: the guards that failed ("analysis",
    "alarms, targets"), or the failure's reason ("aborted", "deadline", "rollback", ...)."""
    guards = GUARD.findall(detail) if reason == GUARD_FAILED else []
    return ", ".join(dict.fromkeys(guards)) or reason


@dataclass(frozen=True)
class Summary:
    """One deployment's key figures (seconds, rounded to milliseconds)."""

    deployment: str
    kind: str  # shift or drill
    status: str
    target: str
    started_at: float
    finished_at: float | None
    served_target: bool  # some traffic reached the target color
    shift_seconds: float
    downtime_seconds: float
    rollback_seconds: float | None
    restore_write_seconds: float | None
    time_to_restore_seconds: float | None
    moved_traffic: bool  # it wrote weights (a step's intent is journaled before its write)
    cause: str | None  # what gave the traffic back (cause_of), None when nothing did
    rolled_back_after_success: bool  # by an operator, after it had succeeded
    # the load balancer's requests and failures from the first write, and the seconds with
    # any failure (None: not measured)
    total_requests: int | None = None
    failed_requests: int | None = None
    failed_request_seconds: float | None = None

    @property
    def finished_shift(self) -> bool:
        return self.kind == "shift" and Status(self.status).finished

    @property
    def counted(self) -> bool:
        """A deployment the KPIs count: a finished shift that moved traffic."""
        return self.finished_shift and self.moved_traffic

    @property
    def ending(self) -> Ending:
        if not Status(self.status).finished:
            return Ending.RUNNING
        if self.status == Status.SUCCEEDED:
            return Ending.SUCCEEDED
        return (
            Ending.ROLLED_BACK_AFTER_SUCCESS
            if self.rolled_back_after_success
            else Ending.ROLLED_BACK
        )

    @property
    def succeeded(self) -> bool:
        """It reached all the traffic and was verified there (whatever an operator did later)."""
        return self.ending in (Ending.SUCCEEDED, Ending.ROLLED_BACK_AFTER_SUCCESS)

    @property
    def change_failed(self) -> bool:
        """A deployment rolled back before it succeeded (DORA's failed change)."""
        return self.counted and self.ending == Ending.ROLLED_BACK

    def to_json(self) -> dict[str, Any]:
        return {_camel(k): v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Summary:
        """A summary as the journal keeps it. One kept by an earlier release has no
        `movedTraffic` (whether the target was served stands in), `cause`,
        `rolledBackAfterSuccess` or request counts (not measured)."""
        found: dict[str, Any] = {k: data.get(_camel(k)) for k in cls.__dataclass_fields__}
        if found["moved_traffic"] is None:
            found["moved_traffic"] = bool(found["served_target"])
        found["rolled_back_after_success"] = bool(found["rolled_back_after_success"])
        return cls(**found)

    @classmethod
    def of(cls, deployment: Deployment) -> Summary:
        judged = next((s.downtime for s in reversed(deployment.samples) if s.downtime), None)
        return cls._of(deployment, [(s.t, s.ok) for s in deployment.samples], judged)

    @classmethod
    def of_document(cls, data: dict[str, Any]) -> Summary:
        """The summary of a deployment as its journal keeps it (JSON), reading of its guard
        samples only when and whether users were served, and the downtime guard's latest
        counts: what a journal written before summaries were kept (hundreds of samples a
        deployment) costs to add up. ValueError, KeyError or TypeError as
        `Deployment.from_json` raises them."""
        samples = data.get("samples", [])
        polls = [(float(s["t"]), bool(s["ok"])) for s in samples]
        judged = next((s["downtime"] for s in reversed(samples) if s.get("downtime")), None)
        return cls._of(Deployment.from_json({**data, "samples": []}), polls, judged)

    @classmethod
    def _of(
        cls,
        deployment: Deployment,
        polls: list[tuple[float, bool]],
        judged: dict[str, Any] | None = None,
    ) -> Summary:
        """`polls`: each guard sample's time and whether users were served; `judged`: the
        downtime guard's latest figures (its `during` counts since the first write)."""
        during = (judged or {}).get("during") or {}
        timings = deployment.timings
        served_from = next(
            (
                e.t
                for e in deployment.events
                if e.type == EventType.STEP and (e.weights or {}).get(deployment.target, 0) > 0
            ),
            None,
        )
        counted = [(t, ok) for t, ok in polls if served_from is not None and t >= served_from]
        downtime = 0.0
        for (t, ok), (following, _) in zip(counted, counted[1:], strict=False):
            if not ok:
                downtime += following - t
        if counted and not counted[-1][1]:
            end = timings.restored_at or counted[-1][0]
            downtime += max(0.0, end - counted[-1][0])
        # when the shift itself finished: an operator's rollback after a success finishes it
        # again, later, and its duration is the shift's
        finished = next(
            (e.t for e in deployment.events if e.type == EventType.FINISHED),
            deployment.finished_at or (polls[-1][0] if polls else None),
        )
        failing = next((t for t, ok in counted if not ok), timings.detected_at)
        restore = (
            timings.restored_at - failing
            if timings.restored_at is not None and failing is not None
            else None
        )
        failure = deployment.failure
        return cls(
            deployment=deployment.id,
            kind=deployment.options.kind,
            status=str(deployment.status),
            target=deployment.target,
            started_at=deployment.started_at,
            finished_at=deployment.finished_at,
            served_target=served_from is not None,
            shift_seconds=round((finished or deployment.started_at) - deployment.started_at, 3),
            downtime_seconds=round(downtime, 3),
            rollback_seconds=_rounded(timings.rollback_seconds),
            restore_write_seconds=_rounded(timings.restore_write_seconds),
            time_to_restore_seconds=_rounded(restore),
            moved_traffic=deployment.moved_traffic or served_from is not None,
            cause=cause_of(failure.reason, failure.detail) if failure else None,
            rolled_back_after_success=any(
                e.type == EventType.ROLLBACK_REQUESTED
                and e.detail.get("previousStatus") == Status.SUCCEEDED
                for e in deployment.events
            ),
            total_requests=_whole(during.get("requests")),
            failed_requests=_whole(during.get("failed")),
            failed_request_seconds=_rounded(_number(during.get("failedSeconds"))),
        )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def outcome_json(deployment: Deployment) -> dict[str, Any]:
    """What a command that ran or gave back `deployment` prints with `--output json`: its key
    figures, the steps it planned, and why it failed."""
    failure = deployment.failure
    return {
        **Summary.of(deployment).to_json(),
        "plan": deployment.plan,
        "failure": {"reason": failure.reason, "detail": failure.detail} if failure else None,
    }
