"""A deployment's key figures, small enough to keep beside its document in the journal: what
`cutover kpis`, the report's success rate and the notifier's metrics add up. Pure.

Downtime is the time during which a color serving traffic had no healthy targets or a probe
failed (from the guard samples), counted from the first step the target served: a deployment
given back before any traffic reached the new color took nothing away from users. Rollback
time runs from the failure being observed to the restored weights read back as served; time
to restore from the first failing sample (or the failure, when no sample failed) to the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cutover_gates.contract import Status

from cutover.deployment import Deployment
from cutover.timeline import EventType


def _rounded(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


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

    @property
    def finished_shift(self) -> bool:
        return self.kind == "shift" and Status(self.status).finished

    @property
    def succeeded(self) -> bool:
        return self.status == Status.SUCCEEDED

    @property
    def change_failed(self) -> bool:
        """A finished shift that failed once users had the new release (DORA's failed change)."""
        return self.finished_shift and not self.succeeded and self.served_target

    def to_json(self) -> dict[str, Any]:
        return {_camel(k): v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Summary:
        found: dict[str, Any] = {k: data.get(_camel(k)) for k in cls.__dataclass_fields__}
        return cls(**found)

    @classmethod
    def of(cls, deployment: Deployment) -> Summary:
        samples, timings = deployment.samples, deployment.timings
        served_from = next(
            (
                e.t
                for e in deployment.events
                if e.type == EventType.STEP and (e.weights or {}).get(deployment.target, 0) > 0
            ),
            None,
        )
        counted = [s for s in samples if served_from is not None and s.t >= served_from]
        downtime = 0.0
        for this, following in zip(counted, counted[1:], strict=False):
            if not this.ok:
                downtime += following.t - this.t
        if counted and not counted[-1].ok:
            end = timings.restored_at or counted[-1].t
            downtime += max(0.0, end - counted[-1].t)
        finished = deployment.finished_at or (samples[-1].t if samples else None)
        failing = next((s.t for s in counted if not s.ok), timings.detected_at)
        restore = (
            timings.restored_at - failing
            if timings.restored_at is not None and failing is not None
            else None
        )
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
        )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
