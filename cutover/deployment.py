"""A deployment (one shift, drill or rollback) as a typed record, journaled as JSON.

`to_json` and `from_json` are the one boundary with the journal: they read and write exactly
the JSON that earlier releases wrote (camelCase keys, events flattened as
`{"t", "type", **detail}`), so journals written before this type existed still load. The
state machine, reports and commands read attributes, never string keys.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from cutover_gates.config_keys import number, whole
from cutover_gates.contract import Color, Holder, Outcome, Status, other_color, parse_color

from cutover.timeline import Event, EventType, Failure, Sample, Timings
from cutover.weights import Weights, check_weights, format_weights

Mode = Literal["auto", "assisted", "manual"]
SPARSE_SAMPLE_SECONDS = 60.0
# Samples kept per deployment: past this, older samples that repeat the one before them are
# thinned out (downtime, every change and every analysis and downtime verdict are kept), so a
# shift of any length fits its journal item (DynamoDB's 400 KB).
MAX_SAMPLES = 1500
Kind = Literal["shift", "drill"]
MODES: tuple[Mode, ...] = ("auto", "assisted", "manual")


def scope_of(listeners: list[str]) -> str:
    """A stable key for a set of listeners or routes (a release train shares one scope)."""
    joined = ",".join(sorted(listeners))
    return hashlib.sha256(joined.encode()).hexdigest()[:20]


def new_deployment_id(now: float | None = None) -> str:
    """Sortable by time: `20261127T081500Z-1a2b3c`."""
    moment = time.gmtime(time.time() if now is None else now)
    return time.strftime("%Y%m%dT%H%M%SZ", moment) + "-" + secrets.token_hex(3)


class UnknownStatus(ValueError):
    """A deployment whose status this release does not know (written by a newer one)."""


# How the journal's numbers are read: any time or duration it holds, and any count.
SECONDS = number(0.0, 1e12)
COUNT = whole(0, 10**12)


@dataclass
class Options:
    """How a shift moves: its steps, timings and guards."""

    target: Color
    steps: list[int]
    bake: float = 60.0
    interval: float = 5.0
    mode: Mode = "auto"
    deadline: float | None = None
    probes: list[tuple[str, int]] = field(default_factory=list)
    max_inconclusive: int = 3
    verify_timeout: float = 30.0
    kind: Kind = "shift"
    analysis: bool = True  # `--analysis off` turns the metric analysis off for this shift
    verify_for: float = 0.0  # seconds baked at 100% before the shift counts as succeeded

    def to_json(self) -> dict[str, Any]:
        # `analysis` and `verifyFor` only when set, so journals read before them write back equal
        return {
            "target": self.target,
            "steps": list(self.steps),
            "bake": self.bake,
            "interval": self.interval,
            "mode": self.mode,
            "deadline": self.deadline,
            "probes": [list(p) for p in self.probes],
            "maxInconclusive": self.max_inconclusive,
            "verifyTimeout": self.verify_timeout,
            "kind": self.kind,
            **({} if self.analysis else {"analysis": False}),
            **({"verifyFor": self.verify_for} if self.verify_for else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Options:
        """ValueError naming the field that is not what this release wrote."""
        mode, kind, deadline = (
            data.get("mode", "auto"),
            data.get("kind", "shift"),
            data.get("deadline"),
        )
        if mode not in MODES:
            raise ValueError(f"options.mode {mode!r} is not one of {MODES}")
        if kind not in ("shift", "drill"):
            raise ValueError(f"options.kind {kind!r} is not shift or drill")
        return cls(
            target=parse_color(data["target"]),
            steps=[whole(0, 100)("options.steps", s) for s in data["steps"]],
            bake=SECONDS("options.bake", data["bake"]),
            interval=SECONDS("options.interval", data["interval"]),
            mode=mode,
            deadline=None if deadline is None else SECONDS("options.deadline", deadline),
            probes=[
                (str(u), whole(100, 599)("options.probes", s)) for u, s in data.get("probes", [])
            ],
            max_inconclusive=COUNT("options.maxInconclusive", data.get("maxInconclusive", 3)),
            verify_timeout=SECONDS("options.verifyTimeout", data.get("verifyTimeout", 30.0)),
            kind=kind,
            analysis=bool(data.get("analysis", True)),
            verify_for=SECONDS("options.verifyFor", data.get("verifyFor", 0.0)),
        )


@dataclass
class Deployment:
    """One deployment over one or more services moved in lockstep."""

    id: str
    scope: str
    listeners: list[str]
    services: list[str]
    options: Options
    snapshot: dict[str, dict[str, Any]]
    plan: list[Weights]
    status: Status = Status.IN_PROGRESS
    step: int = -1
    stacks: list[str] = field(default_factory=list)
    releases: dict[str, Any] = field(default_factory=dict)
    holder: Holder = field(default_factory=lambda: Holder(""))
    started_at: float = 0.0
    finished_at: float | None = None
    events: list[Event] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    failure: Failure | None = None
    endpoint: str | None = None  # an API endpoint other than the cloud's own (an emulator)
    # The fence: bumped by the journal at every takeover; every save is conditional on it.
    generation: int = 0
    # The epoch it took each listener or route at (cutover.journal.owner): nothing is written
    # on its behalf once a newer epoch took one of them.
    epochs: dict[str, int] = field(default_factory=dict)
    # Each service's stack outputs by listener or route, so whoever watches any of its
    # journals can give every service of a release train back.
    stack_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    thinned: int = 0  # samples thinned out to keep the item bounded
    # The status the journal holds as this process last read or wrote it (None: never
    # saved); a save replaces exactly that status, or is refused.
    journaled: Status | None = field(default=None, compare=False, repr=False)

    def state(self, lease_live: bool) -> Status:
        """The status as a person should read it: a deployment still in progress or paused
        whose lock nobody holds any more was interrupted (its process is gone)."""
        if self.status in (Status.IN_PROGRESS, Status.PAUSED) and not lease_live:
            return Status.INTERRUPTED
        return self.status

    def activity(self, now: float) -> str:
        """What the deployment is doing, in words: "baking step 2/3 (blue 50 / green 50), 41 s
        left", "paused before step 3/3", "writing step 1/3", "verifying blue 0 / green 100,
        500 s left"."""
        total = len(self.plan)
        if self.status == Status.PAUSED:
            return f"paused before step {self.pause_index + 1}/{total}"
        if not self.status.active:
            return str(self.status)
        last = next(
            (
                e
                for e in reversed(self.events)
                if e.type in (EventType.STEP, EventType.STEP_INTENT, EventType.VERIFYING)
            ),
            None,
        )
        if last is None:
            return f"starting (0/{total} steps served)"
        if last.type == EventType.VERIFYING:
            left = max(0.0, last.t + last.seconds - now)
            weights = self.plan[-1]
            return f"verifying {format_weights(weights)}, {left:.0f} s left"
        index = self.step if last.index is None else last.index
        if last.type == EventType.STEP_INTENT:
            return f"writing step {index + 1}/{total}"
        weights = last.weights or self.plan[index]
        left = max(0.0, last.t + self.options.bake - now)
        return (
            f"baking step {index + 1}/{total} (blue {weights['blue']} / green "
            f"{weights['green']}), {left:.0f} s left"
        )

    @property
    def pause_index(self) -> int:
        """The step the latest pause waits before."""
        for event in reversed(self.events):
            if event.type == EventType.PAUSED:
                return self.step + 1 if event.index is None else event.index
        return self.step + 1

    @property
    def order(self) -> tuple[int, str]:
        """How deployments of one scope are ordered: by the epochs the journal gave them (the
        same listeners, so comparable), then by id (journals written before epochs)."""
        return (max(self.epochs.values(), default=0), self.id)

    @property
    def on_loopback(self) -> bool:
        """Its timings were measured against an emulator on this machine, not a cloud."""
        host = urlsplit(self.endpoint or "").hostname or ""
        return host in ("localhost", "::1") or host.startswith("127.")

    @property
    def target(self) -> Color:
        return self.options.target

    @property
    def start_weights(self) -> list[Weights]:
        """The weights of every service when the deployment started (its `started` event)."""
        for event in self.events:
            if event.type == EventType.STARTED and event.found is not None:
                return event.found
        return []

    def add_sample(self, sample: Sample, sparse: bool) -> None:
        """Keep a guard poll. `sparse` (a pause, however long): only when a verdict changed or
        a minute passed, so the journal does not grow without bound."""
        last = self.samples[-1] if self.samples else None
        if (
            not sparse
            or last is None
            or last.guards != sample.guards
            or sample.judged
            or sample.t - last.t >= SPARSE_SAMPLE_SECONDS
        ):
            self.samples.append(sample)
        if len(self.samples) > MAX_SAMPLES:
            self._thin()

    def _thin(self) -> None:
        """Drop every other sample of the older half that repeats the one kept before it
        (same ok, same verdicts, no analysis): what a report adds up is unchanged."""
        half = len(self.samples) // 2
        kept: list[Sample] = []
        drop = False
        for sample in self.samples[:half]:
            repeats = (
                kept
                and not sample.judged
                and sample.ok == kept[-1].ok
                and sample.guards == kept[-1].guards
            )
            if repeats and drop:
                self.thinned += 1
            else:
                kept.append(sample)
            drop = bool(repeats) and not drop
        older = len(kept) + len(self.samples) - half - MAX_SAMPLES
        if older > 0:  # only changes and verdicts left, and still too many: the oldest go
            self.thinned += older
            kept = kept[older:]
        self.samples = kept + self.samples[half:]

    def phase_began(self, weights: Weights) -> float | None:
        """When the analysis phase of `weights` began: the first step served that sent the
        target some traffic while the other color still served (the live baseline), or the
        first that sent it everything; None before it."""
        other = other_color(self.target)
        live = weights.get(other, 0) > 0
        for event in self.events:
            served = event.weights if event.type == EventType.STEP else None
            if served and served.get(self.target, 0) > 0 and (served.get(other, 0) > 0) == live:
                return event.t
        return None

    @property
    def moved_traffic(self) -> bool:
        """Whether it ever wrote weights (a step's intent is journaled before its write)."""
        return any(e.type == EventType.STEP_INTENT for e in self.events)

    def outcomes(self) -> dict[str, Outcome]:
        """What a finished shift leaves in its journal per listener or route, for the pack:
        the release it moved traffic to and how that ended. Nothing for a drill, or for a
        deployment still running."""
        if self.options.kind != "shift" or not self.status.finished:
            return {}
        failure = self.failure
        by = self.holder.where
        found = {}
        for key, service in zip(self.listeners, self.services, strict=False):
            release = (self.releases.get(service) or {}).get(self.target) or {}
            found[key] = Outcome(
                deployment=self.id,
                status=str(self.status),
                color=self.target,
                version=str(release.get("version", "")),
                digest=str(release.get("digest", "")),
                at=self.finished_at or self.started_at,
                reason=failure.detail if failure else "",
                by=f"{failure.reason} by {by}" if failure else by,
                epoch=self.epochs.get(key, 0),
            )
        return found

    def event(self, kind: EventType, at: float, **detail: Any) -> Event:
        """Append an event and return it."""
        found = Event(at, kind, detail)
        self.events.append(found)
        return found

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "scope": self.scope,
            "listeners": self.listeners,
            "services": self.services,
            "stacks": self.stacks,
            "releases": self.releases,
            "options": self.options.to_json(),
            "snapshot": self.snapshot,
            "plan": self.plan,
            "step": self.step,
            "status": str(self.status),
            "holder": self.holder.to_json(),
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "events": [e.to_json() for e in self.events],
            "samples": [s.to_json() for s in self.samples],
            "timings": self.timings.to_json(),
        }
        if self.failure is not None:
            data["failure"] = {"reason": self.failure.reason, "detail": self.failure.detail}
        if self.endpoint is not None:
            data["endpoint"] = self.endpoint
        if self.generation:
            data["generation"] = self.generation
        if self.epochs:
            data["epochs"] = self.epochs
        if self.stack_outputs:
            data["stackOutputs"] = self.stack_outputs
        if self.thinned:
            data["samplesThinned"] = self.thinned
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deployment:
        """The deployment a journal holds; ValueError (or KeyError, TypeError) naming what
        does not parse, e.g. a status from a newer release."""
        failure = data.get("failure")
        if not isinstance(data.get("status"), str):
            raise ValueError("it has no status")
        if data["status"] not in {str(s) for s in Status}:
            raise UnknownStatus(
                f"status {data.get('status')!r} is not one this release knows (from a newer one?)"
            )
        epochs = data.get("epochs", {})
        if not isinstance(epochs, dict):
            raise ValueError("epochs is not an object")
        outputs = data.get("stackOutputs", {})
        if not isinstance(outputs, dict) or not all(isinstance(o, dict) for o in outputs.values()):
            raise ValueError("stackOutputs is not an object of objects")
        finished = data.get("finishedAt")
        found = cls(
            id=str(data["id"]),
            scope=str(data["scope"]),
            listeners=[str(k) for k in data.get("listeners", [])],
            services=list(data.get("services", [])),
            options=Options.from_json(data["options"]),
            snapshot={str(k): dict(v) for k, v in data.get("snapshot", {}).items()},
            plan=[check_weights(w) for w in data.get("plan", [])],
            status=Status(data["status"]),
            step=int(data.get("step", -1)),
            stacks=list(data.get("stacks", [])),
            releases=dict(data.get("releases", {})),
            holder=Holder.from_json(data.get("holder")),
            started_at=SECONDS("startedAt", data.get("startedAt", 0.0)),
            finished_at=None if finished is None else SECONDS("finishedAt", finished),
            events=[Event.from_json(e) for e in data.get("events", [])],
            samples=[Sample.from_json(s) for s in data.get("samples", [])],
            timings=Timings.from_json(data.get("timings", {})),
            failure=Failure(str(failure["reason"]), str(failure["detail"])) if failure else None,
            endpoint=data.get("endpoint"),
            generation=COUNT("generation", data.get("generation", 0)),
            thinned=COUNT("samplesThinned", data.get("samplesThinned", 0)),
            epochs={str(k): COUNT("epochs", v) for k, v in epochs.items()},
            stack_outputs={str(k): dict(v) for k, v in outputs.items()},
        )
        found.journaled = found.status
        return found
