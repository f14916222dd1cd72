"""A deployment's timeline as journaled: its events, its guard samples, its restore timings
and why it failed. `to_json`/`from_json` read and write exactly what earlier releases wrote."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cutover.weights import Weights


class EventType(StrEnum):
    """What an event in a deployment's timeline records."""

    STARTED = "started"
    RESUMED = "resumed"
    PAUSED = "paused"
    PROMOTED = "promoted"
    STEP_INTENT = "step-intent"
    STEP = "step"
    VERIFYING = "verifying"
    VERIFIED = "verified"
    ROLLBACK_REQUESTED = "rollback-requested"
    RESTORED = "restored"
    RESTORED_AGAIN = "restored-again"  # a takeover found a late write of the old holder
    LATE_WRITE_GIVEN_BACK = "late-write-given-back"  # the old holder found its own
    RESTORE_FAILED = "restore-failed"
    FINISHED = "finished"


@dataclass
class Event:
    """Something that happened, with its detail (weights, reason, ...), journaled as one
    flat object. The details read back are read by the properties below; a type a newer
    release wrote stays its text."""

    t: float
    type: EventType | str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"t": self.t, "type": str(self.type), **self.detail}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        detail = {k: v for k, v in data.items() if k not in ("t", "type")}
        text = str(data["type"])
        kind = EventType(text) if text in EventType.__members__.values() else text
        return cls(float(data["t"]), kind, detail)

    @property
    def weights(self) -> Weights | None:
        """A step's weights (`step`, `step-intent`), each color's percent."""
        found = self.detail.get("weights")
        return dict(found) if isinstance(found, dict) else None

    @property
    def found(self) -> list[Weights] | None:
        """The weights each service served when the deployment started (`started`)."""
        found = self.detail.get("weights")
        return [dict(w) for w in found] if isinstance(found, list) else None

    @property
    def index(self) -> int | None:
        """The step it is about (`step`, `step-intent`, `verifying`, `paused`)."""
        found = self.detail.get("index")
        return None if found is None else int(found)

    @property
    def seconds(self) -> float:
        """How long it lasts (`verifying`) or lasted (`verified`)."""
        return float(self.detail.get("seconds", 0))


@dataclass
class Sample:
    """One guard poll: the weights served, whether users were served, each guard's state, the
    analysis's figures for both colors when it judged a window at this poll, and the downtime
    guard's (the load balancer's requests and failures since the first write) when it did."""

    t: float
    weights: Weights
    ok: bool
    guards: dict[str, str]
    analysis: dict[str, Any] | None = None
    downtime: dict[str, Any] | None = None

    @property
    def judged(self) -> bool:
        """The analysis or the downtime guard judged a window at this poll."""
        return self.analysis is not None or self.downtime is not None

    def to_json(self) -> dict[str, Any]:
        found = {"t": self.t, "weights": self.weights, "ok": self.ok, "guards": self.guards}
        if self.analysis is not None:
            found["analysis"] = self.analysis
        if self.downtime is not None:
            found["downtime"] = self.downtime
        return found

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sample:
        return cls(
            float(data["t"]),
            dict(data["weights"]),
            bool(data["ok"]),
            dict(data["guards"]),
            data.get("analysis"),
            data.get("downtime"),
        )


_TIMINGS = {
    "detected_at": "detectedAt",
    "restore_started_at": "restoreStartedAt",
    "restore_accepted_at": "restoreAcceptedAt",
    "restored_at": "restoredAt",
    "restore_verified": "restoreVerified",
}


@dataclass
class Timings:
    """When a failure was detected and the restore started, was accepted and was served."""

    detected_at: float | None = None
    restore_started_at: float | None = None
    restore_accepted_at: float | None = None
    restored_at: float | None = None
    restore_verified: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            key: getattr(self, name)
            for name, key in _TIMINGS.items()
            if getattr(self, name) is not None
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Timings:
        return cls(**{name: data.get(key) for name, key in _TIMINGS.items()})

    @property
    def rollback_seconds(self) -> float | None:
        """Failure detected to restored weights read back as served."""
        if self.restored_at is None or self.detected_at is None:
            return None
        return self.restored_at - self.detected_at

    @property
    def restore_write_seconds(self) -> float | None:
        """Failure detected to the restoring write accepted."""
        if self.restore_accepted_at is None or self.detected_at is None:
            return None
        return self.restore_accepted_at - self.detected_at


@dataclass
class Failure:
    reason: str
    detail: str

    def __str__(self) -> str:
        """`reason: detail`, the reason said once where the detail already begins with it
        (journals hold watchdog restores as `watchdog`, `watchdog: holder ...`)."""
        prefix = f"{self.reason}: "
        return self.detail if self.detail.startswith(prefix) else prefix + self.detail
