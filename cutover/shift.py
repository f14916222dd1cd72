"""The shift state machine: step weights under guards, and give traffic back exactly.

A deployment is a journal document. It is saved with the snapshot of every listener's routing
before the first write, with each step's intent before it is written and its result after, so
`cutover rollback` can restore the snapshot after a crash at any point. On any guard failure,
abort or deadline, the snapshot is written back first (one call per listener, concurrently)
and only then journaled, so rollback time is one API round trip.
"""

from __future__ import annotations

import functools
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cutover.color import COLORS, Color
from cutover.errors import CutoverError, DeploymentFailed
from cutover.fleet import Fleet
from cutover.guard import SERVING_GUARDS, AlarmGuard, Guard, ProbeGuard, ReadyGuard, Verdict
from cutover.journal import LEASE_SECONDS, Journal, holder_identity, scope_of
from cutover.outputs import StackOutputs
from cutover.plan import plan_shift
from cutover.routers import TrafficRouter
from cutover.weights import Weights

Log = Callable[[str], None]


@dataclass
class Service:
    """One service of a release: its outputs, its router and its fleet."""

    outputs: StackOutputs
    router: TrafficRouter
    fleet: Fleet


@dataclass
class ShiftOptions:
    target: Color
    steps: list[int]
    bake: float = 60.0
    interval: float = 5.0
    mode: str = "auto"  # auto | assisted | manual
    deadline: float | None = None
    probes: list[tuple[str, int]] = field(default_factory=list)
    max_inconclusive: int = 3
    verify_timeout: float = 30.0
    kind: str = "shift"  # shift | drill

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "steps": self.steps,
            "bake": self.bake,
            "interval": self.interval,
            "mode": self.mode,
            "deadline": self.deadline,
            "probes": [list(p) for p in self.probes],
            "maxInconclusive": self.max_inconclusive,
            "verifyTimeout": self.verify_timeout,
            "kind": self.kind,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShiftOptions:
        return cls(
            target=data["target"],
            steps=list(data["steps"]),
            bake=data["bake"],
            interval=data["interval"],
            mode=data["mode"],
            deadline=data["deadline"],
            probes=[(u, int(s)) for u, s in data["probes"]],
            max_inconclusive=data["maxInconclusive"],
            verify_timeout=data["verifyTimeout"],
            kind=data.get("kind", "shift"),
        )


class Notifier:
    """Deployment events to the stack's SNS topic, and metrics in the `Cutover` namespace."""

    def __init__(self, services: list[Service], log: Log) -> None:
        self.services = [s for s in services if s.outputs.on_aws]  # Gateway stacks: journal only
        self.log = log

    def event(self, deployment: dict[str, Any], kind: str, detail: str) -> None:
        import json

        from cutover.aws import client

        message = {
            "event": kind,
            "deployment": deployment["id"],
            "target": deployment["options"]["target"],
            "status": deployment["status"],
            "detail": detail,
        }
        for service in self.services:
            try:
                client("sns").publish(
                    TopicArn=str(service.outputs.topic_arn),
                    Subject=f"cutover {kind}: {service.outputs.name}"[:100],
                    Message=json.dumps({**message, "service": service.outputs.name}),
                )
            except Exception as e:  # noqa: BLE001 - telling people must not stop a rollback
                self.log(f"  (could not publish {kind} to {service.outputs.topic_arn}: {e})")

    def metrics(self, deployment: dict[str, Any]) -> None:
        from cutover.aws import client
        from cutover.report import figures

        numbers = figures(deployment)
        succeeded = deployment["status"] == "succeeded"
        for service in self.services:
            dims = [{"Name": "Stack", "Value": service.outputs.stack}]
            data = [
                ("DeploymentSucceeded", 1.0 if succeeded else 0.0, "Count"),
                ("DeploymentFailed", 0.0 if succeeded else 1.0, "Count"),
                ("ShiftSeconds", numbers["shiftSeconds"], "Seconds"),
                ("DowntimeSeconds", numbers["downtimeSeconds"], "Seconds"),
            ]
            if numbers["rollbackSeconds"] is not None:
                data.append(("RollbackSeconds", numbers["rollbackSeconds"], "Seconds"))
            try:
                client("cloudwatch").put_metric_data(
                    Namespace="Cutover",
                    MetricData=[
                        {"MetricName": n, "Value": v, "Unit": u, "Dimensions": dims}
                        for n, v, u in data
                    ],
                )
            except Exception as e:  # noqa: BLE001
                self.log(f"  (could not publish metrics: {e})")


def new_deployment_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


class Shift:
    """One deployment over one or more services moved in lockstep."""

    def __init__(
        self,
        services: list[Service],
        journal: Journal,
        log: Log,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.services = services
        self.journal = journal
        self.log = log
        self.sleep = sleep
        self.listeners = [s.outputs.route_key for s in services]
        self.scope = scope_of(self.listeners)
        self.notifier = Notifier(services, log)
        self.pool = ThreadPoolExecutor(max_workers=min(64, max(1, len(services))))
        self.doc: dict[str, Any] = {}
        self.holder: dict[str, Any] = {}
        self._beat = threading.Event()
        self._prepared: list[tuple[TrafficRouter, dict[str, Any]]] = []

    # -- journal -------------------------------------------------------------------------

    def record(self, kind: str, **detail: Any) -> None:
        self.doc["events"].append({"t": time.time(), "type": kind, **detail})
        self.journal.save(self.doc)

    def _lock(self, deployment_id: str) -> None:
        self.holder = holder_identity(deployment_id)
        self.journal.acquire(self.listeners, self.holder)
        self._beat.clear()
        threading.Thread(target=self._heartbeat, daemon=True).start()

    def _heartbeat(self) -> None:
        while not self._beat.wait(LEASE_SECONDS / 3):
            try:
                self.journal.heartbeat(self.listeners, self.holder)
            except Exception as e:  # noqa: BLE001
                self.log(f"  (lock heartbeat failed: {e})")

    def _unlock(self) -> None:
        self._beat.set()
        self.journal.release(self.listeners, self.holder)

    # -- routing -------------------------------------------------------------------------

    def _each(self, fn: Callable[[Service], Any]) -> list[Any]:
        return list(self.pool.map(fn, self.services))

    def _set_all(self, weights: Weights) -> None:
        self._each(lambda s: s.router.set(weights))

    def _verify(self, expected: list[Weights], timeout: float) -> bool:
        """Read every listener back until each serves its expected weights (bounded).

        A read that fails after its retries counts as "not yet", never as a crash.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                served = self._each(lambda s: s.router.served())
            except Exception as e:  # noqa: BLE001
                self.log(f"  (reading the weights back: {e})")
                served = None
            if served == expected:
                return True
            if time.monotonic() >= deadline:
                return False
            self.sleep(min(0.5, max(0.05, timeout / 20)))

    def _snapshot_weights(self) -> list[Weights]:
        return [
            s.router.weights_of(self.doc["snapshot"][s.outputs.route_key]) for s in self.services
        ]

    def _prepare_restore(self) -> None:
        """Pair each router with its snapshot now, so a restore is only the writes."""
        self._prepared = [
            (s.router, self.doc["snapshot"][s.outputs.route_key]) for s in self.services
        ]

    def restore(self, reason: str, detected_at: float) -> None:
        """Write every snapshot back at once, verify it is served, and record the timings."""
        started = time.time()
        errors = [e for e in self.pool.map(_restore_one, self._prepared) if e]
        accepted = time.time()
        if errors:
            self.record("restore-failed", reason=reason, errors=errors)
            raise DeploymentFailed(
                f"deployment {self.doc['id']}: restoring the weights it found failed on "
                f"{len(errors)} listener(s) or route(s) ({'; '.join(errors)}); run `cutover rollback` to retry"
            )
        verified = self._verify(self._snapshot_weights(), self.doc["options"]["verifyTimeout"])
        done = time.time()
        self.doc["timings"].update(
            detectedAt=detected_at,
            restoreStartedAt=started,
            restoreAcceptedAt=accepted,
            restoredAt=done,
            restoreVerified=verified,
        )
        self.record("restored", reason=reason, verified=verified)
        self.log(
            f"Restored the weights it found ({self._fmt(self._snapshot_weights()[0])}) "
            f"in {accepted - detected_at:.3f}s, verified served in {done - detected_at:.3f}s."
        )

    @staticmethod
    def _fmt(weights: Weights) -> str:
        return f"blue {weights['blue']} / green {weights['green']}"

    # -- guards --------------------------------------------------------------------------

    def guards(self, weights: Weights) -> list[Guard]:
        target = self.doc["options"]["target"]
        found: list[Guard] = []
        alarms = [n for s in self.services for n in s.outputs.alarm_names[target]]
        if alarms:
            found.append(AlarmGuard(alarms))
        serving = {
            f"{s.outputs.name}/{c}": (functools.partial(s.fleet.ready, c), self._floor(s, c))
            for s in self.services
            for c in COLORS
            if weights[c] > 0
        }
        found.append(ReadyGuard(serving))
        found += [ProbeGuard(url, status) for url, status in self.doc["options"]["probes"]]
        return found

    def _floor(self, service: Service, color: Color) -> int:
        """Ready instances `color` must keep: 1, or for the target color on a fleet with a
        disruption budget, its capacity less what the budget allows."""
        allowed = service.fleet.disruptions_allowed
        if allowed is None or color != self.doc["options"]["target"]:
            return 1
        return max(1, int(service.outputs.services[color]["capacity"]) - allowed)

    def bake(
        self, weights: Weights, seconds: float, deadline: float | None
    ) -> tuple[str, str] | None:
        """Poll guards for `seconds`; (reason, detail) of the first failure, or None."""
        interval = self.doc["options"]["interval"]
        guards = self.guards(weights)
        inconclusive = 0
        end = time.monotonic() + seconds
        while True:
            verdicts: list[Verdict] = list(self.pool.map(lambda g: g.check(), guards))
            now = time.time()
            serving_ok = all(v.state != "fail" for v in verdicts if v.guard in SERVING_GUARDS)
            self.doc["samples"].append(
                {
                    "t": now,
                    "weights": weights,
                    "ok": serving_ok,
                    "guards": {v.guard: v.state for v in verdicts},
                }
            )
            failed = [v for v in verdicts if v.state == "fail"]
            if failed:
                return "guard failed", "; ".join(f"{v.guard}: {v.detail}" for v in failed)
            if any(v.state == "inconclusive" for v in verdicts):
                inconclusive += 1
                if inconclusive > self.doc["options"]["maxInconclusive"]:
                    details = "; ".join(v.detail for v in verdicts if v.state == "inconclusive")
                    return "guards inconclusive", f"{inconclusive} polls in a row: {details}"
            else:
                inconclusive = 0
            command = self.journal.requested(self.scope, self.doc["id"])
            if command == "abort":
                return "aborted", "cutover abort was requested"
            if deadline is not None and time.monotonic() >= deadline:
                return "deadline", "the shift ran past its --deadline"
            if time.monotonic() >= end:
                return None
            self.sleep(min(interval, max(0.0, end - time.monotonic())))

    def wait_for_promote(self, deadline: float | None) -> str:
        """Paused: wait for `cutover promote` or `cutover abort` (or the deadline)."""
        interval = self.doc["options"]["interval"]
        while True:
            command = self.journal.requested(self.scope, self.doc["id"])
            if command in ("promote", "abort"):
                return command
            if deadline is not None and time.monotonic() >= deadline:
                return "deadline"
            self.sleep(interval)

    # -- the state machine ----------------------------------------------------------------

    def start(self, options: ShiftOptions) -> dict[str, Any]:
        """Lock, snapshot and journal a new deployment (nothing written to a listener yet)."""
        deployment_id = new_deployment_id()
        self._lock(deployment_id)
        try:
            snapshot = dict(
                zip(self.listeners, self._each(lambda s: s.router.snapshot()), strict=True)
            )
            start = [s.router.weights_of(snapshot[s.outputs.route_key]) for s in self.services]
            lowest = min(start, key=lambda w: w[options.target] / (sum(w.values()) or 1))
            plan = plan_shift(lowest, options.target, options.steps)
            self.doc = {
                "id": deployment_id,
                "scope": self.scope,
                "listeners": self.listeners,
                "services": [s.outputs.name for s in self.services],
                "stacks": sorted({s.outputs.stack for s in self.services}),
                "releases": {s.outputs.name: s.outputs.releases for s in self.services},
                "options": options.to_json(),
                "snapshot": snapshot,
                "plan": plan,
                "step": -1,
                "status": "in-progress",
                "holder": self.holder,
                "startedAt": time.time(),
                "finishedAt": None,
                "events": [],
                "samples": [],
                "timings": {},
            }
            self._prepare_restore()
            self.record("started", weights=start)
        except BaseException:
            self._unlock()
            raise
        return self.doc

    def resume(self, doc: dict[str, Any]) -> None:
        """Take over an interrupted deployment (its process is gone)."""
        self.doc = doc
        self._lock(doc["id"])
        self.doc["holder"] = self.holder
        self._prepare_restore()
        self.record("resumed")

    def run(self, from_step: int = 0) -> dict[str, Any]:
        """Steps from `from_step` to the end; returns the finished document.

        Raises DeploymentFailed after a rollback. Always releases the lock.
        """
        options = self.doc["options"]
        deadline = (
            time.monotonic() + options["deadline"] if options["deadline"] is not None else None
        )
        try:
            return self._steps(from_step, deadline)
        except CutoverError:
            raise
        except Exception as e:  # noqa: BLE001 - an AWS call failed after its retries
            return self.fail("error", f"{type(e).__name__}: {e}", time.time())
        finally:
            self._unlock()

    def _steps(self, from_step: int, deadline: float | None) -> dict[str, Any]:
        options = self.doc["options"]
        if from_step == 0:
            self.notifier.event(self.doc, "started", f"towards {options['target']}")
        plan: list[Weights] = self.doc["plan"]
        for index in range(from_step, len(plan)):
            weights = plan[index]
            last = index == len(plan) - 1
            if options["mode"] == "manual" or (options["mode"] == "assisted" and last):
                self.doc["status"] = "paused"
                self.record("paused", before=weights)
                self.notifier.event(self.doc, "paused", f"before {self._fmt(weights)}")
                self.log(
                    f"Paused before {self._fmt(weights)}. Run `cutover promote` to continue "
                    "or `cutover abort` to give traffic back."
                )
                decision = self.wait_for_promote(deadline)
                if decision != "promote":
                    return self.fail(decision, "stopped while paused", time.time())
                self.journal.request(self.scope, self.doc["id"], "")
                self.doc["status"] = "in-progress"
                self.record("promoted")
                self.notifier.event(self.doc, "promoted", f"to {self._fmt(weights)}")
            self.record("step-intent", index=index, weights=weights)
            self._set_all(weights)
            if not self._verify([weights] * len(self.services), options["verifyTimeout"]):
                return self.fail(
                    "not served",
                    f"the load balancer or Gateway did not serve {self._fmt(weights)} within "
                    f"{options['verifyTimeout']}s",
                    time.time(),
                )
            self.doc["step"] = index
            self.record("step", index=index, weights=weights)
            self.notifier.event(self.doc, "step", self._fmt(weights))
            self.log(
                f"Step {index + 1}/{len(plan)}: serving {self._fmt(weights)}; baking "
                f"{options['bake']:g}s under guards."
            )
            failure = self.bake(weights, options["bake"], deadline)
            if failure is not None:
                return self.fail(failure[0], failure[1], time.time())
        if options["kind"] == "drill":
            # A drill gives the traffic back on purpose: that restore is what it measures.
            self.restore("drill", time.time())
            self.doc["status"] = "drilled"
        else:
            self.doc["status"] = "succeeded"
        return self.finish()

    def fail(self, reason: str, detail: str, detected_at: float) -> dict[str, Any]:
        """Give the traffic back, record why, and raise DeploymentFailed."""
        self.log(f"Rolling back: {reason}: {detail}")
        self.restore(reason, detected_at)
        self.doc["status"] = "rolled-back"
        self.doc["failure"] = {"reason": reason, "detail": detail}
        self.notifier.event(self.doc, "rolled-back", f"{reason}: {detail}")
        self.finish()
        raise DeploymentFailed(
            f"deployment {self.doc['id']} rolled back ({reason}: {detail}); traffic is back "
            f"on {self._fmt(self._snapshot_weights()[0])}"
        )

    def finish(self) -> dict[str, Any]:
        self.doc["finishedAt"] = time.time()
        self.record("finished", status=self.doc["status"])
        self.notifier.event(self.doc, "finished", self.doc["status"])
        self.notifier.metrics(self.doc)
        return self.doc

    def rollback(
        self, doc: dict[str, Any], ensure_capacity: Callable[[Color], None]
    ) -> dict[str, Any]:
        """Restore a deployment's snapshot, e.g. after its process was killed."""
        self.doc = doc
        self._lock(doc["id"])
        try:
            detected = time.time()
            self._prepare_restore()
            restored = self._snapshot_weights()
            for color in COLORS:
                if any(w[color] > 0 for w in restored):
                    ensure_capacity(color)
            self.record("rollback-requested", previousStatus=doc["status"])
            self.restore("cutover rollback", detected)
            self.doc["status"] = "rolled-back"
            self.doc.setdefault("failure", {"reason": "rollback", "detail": "cutover rollback"})
            return self.finish()
        finally:
            self._unlock()


def _restore_one(pair: tuple[TrafficRouter, dict[str, Any]]) -> str | None:
    """Restore one listener; the error as text instead of raising, so every listener is tried."""
    router, snapshot = pair
    try:
        router.restore(snapshot)
    except Exception as e:  # noqa: BLE001
        return f"{router.name}: {type(e).__name__}: {e}"
    return None
