"""What `cutover status` reports: per service the weights served, each color's release, ready
instances and alarms, then the latest deployment and who holds the lock.

`StatusReport.gather` reads them (the routers, the fleets, the alarms in batches through
`aws.describe_alarms`); `to_json` and `render` are pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cutover_gates.contract import COLORS, Color, Holder, Status

from cutover.aws import describe_alarms
from cutover.deployment import Deployment
from cutover.service import Service
from cutover.weights import Weights, format_weights


@dataclass(frozen=True)
class ServiceStatus:
    """One service now: what its router serves and what each color runs."""

    name: str
    route: str
    weights: Weights
    ready: dict[Color, int]
    ready_unit: str
    releases: dict[Color, str]
    alarms: dict[str, str]  # alarm name -> its state (OK, ALARM, INSUFFICIENT_DATA)

    @classmethod
    def gather(cls, service: Service) -> ServiceStatus:
        o = service.outputs
        names = [n for c in COLORS for n in o.alarm_names[c]]
        alarms: dict[str, dict[str, Any]] = {}
        if names:
            alarms = describe_alarms(names)
        return cls(
            name=o.name,
            route=o.route_key,
            weights=service.router.served(),
            ready={c: service.fleet.ready(c) for c in COLORS},
            ready_unit=service.fleet.unit,
            releases={c: o.releases[c].version for c in COLORS},
            alarms={name: a["StateValue"] for name, a in alarms.items()},
        )

    def to_json(self) -> dict[str, Any]:
        return {"service": self.name, "route": self.route, "weights": self.weights,
                "ready": self.ready, "readyUnit": self.ready_unit, "releases": self.releases,
                "alarms": self.alarms}  # fmt: skip


@dataclass(frozen=True)
class StatusReport:
    """Every service's status, the latest deployment (with its state: interrupted when its
    lease is not live), the live lock holder, and how many journal items did not parse."""

    services: list[ServiceStatus]
    latest: Deployment | None
    holder: Holder | None
    skipped: int
    now: float

    @classmethod
    def gather(
        cls,
        services: list[Service],
        latest: Deployment | None,
        holder: Holder | None,
        skipped: int,
        now: float,
    ) -> StatusReport:
        return cls([ServiceStatus.gather(s) for s in services], latest, holder, skipped, now)

    @property
    def state(self) -> Status | None:
        if self.latest is None:
            return None
        return self.latest.state(lease_live=self.holder is not None)

    def deployment_json(self) -> dict[str, Any] | None:
        d, state = self.latest, self.state
        if d is None or state is None:
            return None
        doing = d.activity(self.now) if state.active and state != Status.INTERRUPTED else None
        return {"id": d.id, "status": str(state), "target": d.target, "step": d.step + 1,
                "steps": len(d.plan), "startedBy": d.holder.who or None,
                "doing": doing}  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "services": [s.to_json() for s in self.services],
            "deployment": self.deployment_json(),
            "lock": self.holder.to_json() if self.holder else None,
            "skippedJournalItems": self.skipped,  # named on stderr
        }

    def render(self) -> list[str]:
        out: list[str] = []
        for s in self.services:
            out.append(f"{s.name}: {format_weights(s.weights)}")
            out += [f"  {c}: release {s.releases[c]}, {s.ready[c]} {s.ready_unit}" for c in COLORS]
            out += [f"  alarm {name}: {value}" for name, value in sorted(s.alarms.items())]
        d = self.deployment_json()
        if d is None:
            out.append("no deployment in the journal")
        else:
            out.append(f"deployment {d['id']}: {d['status']} towards {d['target']} "
                       f"(step {d['step']}/{d['steps']})")  # fmt: skip
            if d["doing"]:
                out.append(f"  now: {d['doing']}")
            if self.state == Status.INTERRUPTED:
                out.append("  its process is gone: `cutover rollback` restores the weights it "
                           "found, `cutover resume` continues")  # fmt: skip
        if self.holder:
            h = self.holder
            out.append(f"lock held by deployment {h.deployment} ({h.where}, pid {h.pid})")
        return out
