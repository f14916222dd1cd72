"""The edges of the state machine, in memory, for deterministic tests of its interleavings.

The shift, the lease, the watchdog and the takeover are the real ones; only their edges are
scripted here: a `Cloud` holding each listener's weights (written with no precondition, as an
ALB listener is) and the journal's items (leases, deployments, outcomes, requests, with the
same conditions as the DynamoDB journal: `tests/helper/test_journal_conformance.py` runs one
suite over this journal and the real backends), a clock the test moves, and a `Baton` that
stops the driver's process at each write it makes until the test lets it go on. Each
"process" (the driver, the watchdog, an operator) gets its own views of the cloud, as real
processes get their own clients.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cutover_gates.contract import COLORS, Color, Holder, Outcome
from cutover_gates.stack_outputs import StackOutputs

from cutover.clock import Clock
from cutover.deployment import Deployment
from cutover.errors import LockHeld
from cutover.journal.items import Skipped, parse_item, parse_outcome
from cutover.journal.lease import (
    LEASE_SECONDS,
    LeaseState,
    finished_elsewhere,
    held_message,
    lease_live,
)
from cutover.journal.owner import Owner
from cutover.notifier import Notifier
from cutover.outputs import parse_outputs
from cutover.routers.fence import Fence, no_fence
from cutover.service import Service
from cutover.summary import Summary
from cutover.weights import Weights, check_weights

WRITE_SECONDS = 2.0  # the longest a memory write "can take", as a router reports it


class FakeClock(Clock):
    """Wall and monotonic time in one number, moved by sleeping or by the test; timers run
    when time passes them, unless their process is frozen (a frozen process's heartbeat
    thread is frozen too)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start
        self.lock = threading.RLock()
        self.timers: list[tuple[float, int, _Timer]] = []
        self.frozen: set[str] = set()
        self.parked: list[_Timer] = []  # due while their process was frozen
        self.counter = itertools.count()
        self.local = threading.local()
        super().__init__(now=self._now, monotonic=self._now, sleep=self.advance)

    def _now(self) -> float:
        with self.lock:
            return self.t

    def process(self) -> str:
        return getattr(self.local, "process", "test")

    def every(self, seconds: Callable[[], float], tick: Callable[[], bool]) -> Callable[[], None]:
        timer = _Timer(seconds, tick, self.process())
        with self.lock:
            heapq.heappush(self.timers, (self.t + seconds(), next(self.counter), timer))
        return timer.stop

    def advance(self, seconds: float) -> None:
        with self.lock:
            end = self.t + max(0.0, seconds)
            while self.timers and self.timers[0][0] <= end:
                due, _, timer = heapq.heappop(self.timers)
                self.t = max(self.t, due)
                if timer.stopped:
                    continue
                if timer.owner in self.frozen:  # it runs once its process is thawed
                    self.parked.append(timer)
                    continue
                if timer.tick():
                    heapq.heappush(
                        self.timers, (self.t + timer.seconds(), next(self.counter), timer)
                    )
            self.t = end

    def freeze(self, owner: str) -> None:
        with self.lock:
            self.frozen.add(owner)

    def thaw(self, owner: str) -> None:
        """`owner`'s timers that fell due while it was frozen run at the next advance."""
        with self.lock:
            self.frozen.discard(owner)
            for timer in [t for t in self.parked if t.owner == owner]:
                self.parked.remove(timer)
                heapq.heappush(self.timers, (self.t, next(self.counter), timer))


@dataclass
class _Timer:
    seconds: Callable[[], float]
    fn: Callable[[], bool]
    owner: str
    stopped: bool = False

    def tick(self) -> bool:
        return bool(self.fn())

    def stop(self) -> None:
        self.stopped = True


class Baton:
    """Passes control between the test and a driver thread: the driver stops at each of its
    writes (`gate`) until the test hands it the baton again (`step`)."""

    def __init__(self) -> None:
        self.cv = threading.Condition()
        self.turn = "test"
        self.at: str | None = None
        self.done = False
        self.error: BaseException | None = None
        self.result: Any = None

    def gate(self, point: str) -> None:
        with self.cv:
            self.at = point
            self.turn = "test"
            self.cv.notify_all()
            self.cv.wait_for(lambda: self.turn == "driver")

    def step(self, timeout: float = 10.0) -> str | None:
        """Let the driver run to its next write (or to its end); where it stopped."""
        with self.cv:
            if self.done:
                return None
            self.turn = "driver"
            self.cv.notify_all()
            if not self.cv.wait_for(lambda: self.turn == "test" or self.done, timeout):
                raise AssertionError(f"the driver did not reach a gate within {timeout}s")
            return None if self.done else self.at

    def run(
        self, clock: FakeClock, target: Callable[[], Any], name: str = "driver"
    ) -> threading.Thread:
        """Start `target` as the process `name` (frozen by that name); it waits for the
        first `step`."""

        def main() -> None:
            clock.local.process = name
            with self.cv:
                self.cv.wait_for(lambda: self.turn == "driver")
            try:
                self.result = target()
            except BaseException as e:  # noqa: BLE001 - handed to the test
                self.error = e
            finally:
                with self.cv:
                    self.done = True
                    self.turn = "test"
                    self.cv.notify_all()

        thread = threading.Thread(target=main, daemon=True)
        thread.start()
        return thread

    def finish(self, limit: int = 10_000) -> None:
        """Let the driver run to its end."""
        for _ in range(limit):
            if self.step() is None:
                return
        raise AssertionError("the driver did not finish")


@dataclass
class Cloud:
    """What every process sees: the listeners and the journal's items."""

    weights: dict[str, Weights] = field(default_factory=dict)
    leases: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {doc, status, gen}
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    owners: dict[str, Owner] = field(default_factory=dict)
    controls: dict[str, str] = field(default_factory=dict)
    writes: list[tuple[str, Weights]] = field(default_factory=list)
    statuses: list[tuple[str, str]] = field(default_factory=list)  # every status saved, in order
    lock: threading.RLock = field(default_factory=threading.RLock)
    # every snapshot a router took is numbered; each restore is kept with the number it
    # wrote back and the owner of its listener at that instant
    snapshots: Any = field(default_factory=lambda: itertools.count(1))
    restores: list[tuple[str, int, Owner | None]] = field(default_factory=list)
    ready: dict[str, int] = field(default_factory=dict)  # ready instances, where not full

    def snapshot_of(self, deployment_id: str, key: str) -> int | None:
        """The number of the snapshot of `key` the deployment journaled (None: not saved)."""
        item = self.items.get(deployment_id)
        if item is None:
            return None
        return json.loads(item["doc"])["snapshot"][key]["taken"]


class MemoryRouter:
    """A listener's weighted forward: written with no precondition, read back at once."""

    def __init__(self, cloud: Cloud, key: str, baton: Baton | None = None) -> None:
        self.cloud = cloud
        self.key = key
        self.name = f"listener {key}"
        self.baton = baton

    @property
    def longest_write(self) -> float:
        return WRITE_SECONDS

    def served(self) -> Weights:
        with self.cloud.lock:
            return dict(self.cloud.weights[self.key])

    def snapshot(self) -> dict[str, Any]:
        with self.cloud.lock:
            return {"weights": self.served(), "taken": next(self.cloud.snapshots)}

    def weights_of(self, snapshot: dict[str, Any]) -> Weights:
        return check_weights(snapshot["weights"])

    def _write(self, weights: Weights, fence: Fence) -> None:
        fence()
        if self.baton is not None:  # frozen here: checked, not yet landed
            self.baton.gate(f"write {weights['blue']}/{weights['green']}")
        with self.cloud.lock:
            self.cloud.weights[self.key] = dict(weights)
            self.cloud.writes.append((self.key, dict(weights)))

    def set(self, weights: Weights, fence: Fence = no_fence) -> None:
        self._write(check_weights(weights), fence)

    def restore(self, snapshot: dict[str, Any], fence: Fence = no_fence) -> None:
        fence()
        if self.baton is not None:
            weights = snapshot["weights"]
            self.baton.gate(f"write {weights['blue']}/{weights['green']}")
        with self.cloud.lock:
            owner = self.cloud.owners.get(self.key)
            self.cloud.restores.append((self.key, int(snapshot.get("taken", 0)), owner))
            self.cloud.weights[self.key] = self.weights_of(snapshot)
            self.cloud.writes.append((self.key, self.weights_of(snapshot)))


class MemoryFleet:
    """Each color's ready instances: its capacity, unless the cloud says fewer are ready."""

    unit = "ready instances"
    disruptions_allowed: int | None = None

    def __init__(self, cloud: Cloud | None = None, capacity: int = 2) -> None:
        self.cloud = cloud
        self.capacity = capacity

    def ready(self, color: Color) -> int:
        return self.capacity if self.cloud is None else self.cloud.ready.get(color, self.capacity)

    def scale_up(self, color: Color, capacity: int) -> int | None:
        return None


class MemoryJournal:
    """The journal over the cloud's items, with the DynamoDB journal's conditions."""

    def __init__(self, cloud: Cloud, baton: Baton | None = None) -> None:
        self.cloud = cloud
        self.baton = baton
        self.skipped: list[Skipped] = []
        self.leases_unreachable = False  # its leases cannot be read or renewed

    def _reach(self) -> None:
        if self.leases_unreachable:
            raise ConnectionError("the journal's leases cannot be reached")

    # -- the lease
    def acquire_one(self, key: str, holder: Holder, now: float) -> bool:
        self._reach()
        with self.cloud.lock:
            current = self.cloud.leases.get(key)
            if (
                current is None
                or current["until"] <= now
                or current["holder"].token == holder.token
                or not lease_live(current["until"], current["holder"], now)
            ):
                self.cloud.leases[key] = {"holder": holder, "until": now + LEASE_SECONDS,
                                          "renewed": now}  # fmt: skip
                return True
            raise LockHeld(held_message(f"listener {key}", current["holder"]))

    def heartbeat(self, keys: list[str], holder: Holder, now: float) -> bool:
        self._reach()
        with self.cloud.lock:
            for key in keys:
                current = self.cloud.leases.get(key)
                if current is None or current["holder"].token != holder.token:
                    return False
                current["until"], current["renewed"] = now + LEASE_SECONDS, now
            return True

    def release(self, keys: list[str], holder: Holder) -> None:
        with self.cloud.lock:
            for key in keys:
                current = self.cloud.leases.get(key)
                if current is not None and current["holder"].token == holder.token:
                    del self.cloud.leases[key]

    def lease_state(self, key: str) -> LeaseState | None:
        self._reach()
        with self.cloud.lock:
            current = self.cloud.leases.get(key)
            if current is None:
                return None
            return LeaseState(current["holder"], current["renewed"], current["until"])

    # -- deployments
    def save(self, deployment: Deployment) -> None:
        if self.baton is not None:
            self.baton.gate(f"save {deployment.status}")
        with self.cloud.lock:
            stored = self.cloud.items.get(deployment.id)
            seen = (
                None
                if deployment.journaled is None
                else (str(deployment.journaled), deployment.generation)
            )
            now = None if stored is None else (stored["status"], stored["generation"])
            if now != seen:
                raise finished_elsewhere(deployment.id, f"now {now}")
            self.cloud.items[deployment.id] = {
                "doc": json.dumps(deployment.to_json()),
                "status": str(deployment.status),
                "generation": deployment.generation,
            }
            self.cloud.statuses.append((deployment.id, str(deployment.status)))
            for key, outcome in deployment.outcomes().items():
                known = self.cloud.outcomes.setdefault(key, {}).get(outcome.color)
                if outcome.newer_than(None if known is None else Outcome.from_json(known)):
                    self.cloud.outcomes[key][outcome.color] = outcome.to_json()
        deployment.journaled = deployment.status

    def claim(self, deployment: Deployment) -> None:
        """Like DynamoDB's: only the item's generation attribute changes (loads read it)."""
        with self.cloud.lock:
            stored = self.cloud.items.get(deployment.id)
            was = str(deployment.journaled or deployment.status)
            if stored is None or (stored["status"], stored["generation"]) != (
                was,
                deployment.generation,
            ):
                raise finished_elsewhere(deployment.id, f"now {stored and stored['status']}")
            stored["generation"] = deployment.generation + 1
        deployment.generation += 1

    # -- owners
    def owner(self, key: str) -> Owner | None:
        with self.cloud.lock:
            return self.cloud.owners.get(key)

    def take(self, key: str, owner: Owner) -> bool:
        with self.cloud.lock:
            stored = self.cloud.owners.get(key)
            if (stored.epoch if stored else 0) != owner.epoch - 1:
                return False
            self.cloud.owners[key] = owner
            return True

    def _all(self) -> list[Deployment]:
        with self.cloud.lock:
            found = {k: (v["doc"], v["generation"]) for k, v in self.cloud.items.items()}
        parsed = []
        for key, (doc, generation) in sorted(found.items()):
            deployment = parse_item(f"deploy/{key}", doc, self.skipped)
            if deployment is not None:
                deployment.generation = generation  # the attribute a claim bumps
                parsed.append(deployment)
        return parsed

    def active(self) -> list[Deployment]:
        return [d for d in self._all() if d.status.active]

    def load(self, scope: str, deployment_id: str | None = None) -> Deployment | None:
        found = [d for d in self._all() if d.scope == scope]
        if deployment_id:
            return next((d for d in found if d.id == deployment_id), None)
        return found[-1] if found else None

    def summaries(self, scope: str, since: str = "") -> list[Summary]:
        return [Summary.of(d) for d in self._all() if d.scope == scope and d.id >= since]

    def outcomes(self, key: str) -> dict[Color, Outcome]:
        with self.cloud.lock:
            found = copy.deepcopy(self.cloud.outcomes.get(key, {}))
        parsed = (parse_outcome(f"outcome/{key}/{c}", o, self.skipped) for c, o in found.items())
        return {o.color: o for o in parsed if o is not None}  # type: ignore[misc]

    def request(self, scope: str, deployment_id: str, command: str) -> None:
        with self.cloud.lock:
            self.cloud.controls[f"{scope}/{deployment_id}"] = command

    def requested(self, scope: str, deployment_id: str) -> str | None:
        with self.cloud.lock:
            return self.cloud.controls.get(f"{scope}/{deployment_id}") or None


LISTENER = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/checkout/1/2"


def outputs(key: str = LISTENER) -> StackOutputs:
    """The outputs of a stack whose routing is the memory listener `key` (no alarms, no
    analysis: ready instances are its guards)."""
    releases = {c: {"version": v, "digest": f"sha256:{c[0] * 64}"} for c, v in
                (("blue", "1.41.0"), ("green", "1.42.0"))}  # fmt: skip
    services = {c: {"service": f"checkout-{c}", "namespace": "checkout",
                    "deployment": f"checkout-{c}", "capacity": 2} for c in COLORS}  # fmt: skip
    return parse_outputs(
        {"stack": "prod", "route": {"namespace": "checkout", "name": key[-12:].replace("/", "-")},
         "releases": releases, "services": services, "platform": "kubernetes"},
        "memory",
    )  # fmt: skip


def services(
    cloud: Cloud, baton: Baton | None = None, keys: tuple[str, ...] = (LISTENER,)
) -> list[Service]:
    """One process's view of the stack's services (the driver's stops at the baton)."""
    found = []
    for key in keys:
        service = Service(outputs(key), MemoryRouter(cloud, key, baton), MemoryFleet(cloud))  # type: ignore[arg-type]
        found.append(_Keyed(service, key))
    return found


class _Keyed(Service):
    """A service known to the journal by its memory listener's key."""

    def __init__(self, service: Service, key: str) -> None:
        super().__init__(service.outputs, service.router, service.fleet)
        self._key = key

    @property
    def key(self) -> str:
        return self._key


def quiet(log: Callable[[str], None] = lambda _: None) -> Notifier:
    """A notifier with nowhere to publish."""
    return Notifier([], log)
