"""The shift state machine: step weights under guards, and give traffic back exactly.

A deployment is saved with the snapshot of every listener's routing before the first write,
with each step's intent before it is written and its result after, so `cutover rollback` (or
the watchdog) can restore the snapshot after a crash at any point. Guards run through every
bake and every pause. On a guard failure, an abort, the deadline or a signal, the snapshot is
written back first (one call per listener, concurrently) and only then journaled.

The lease, the notifier, the clock and the signal handling are handed in; this module is the
state machine only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from cutover_gates.contract import Status

from cutover.clock import Clock
from cutover.deployment import Deployment, Options, new_deployment_id, scope_of
from cutover.engine.bake import pause, verify, watch
from cutover.engine.guard import Progress
from cutover.engine.plan import plan_shift
from cutover.engine.restore import (
    busy_workers,
    journal_after_restore,
    outcome,
    restore_failed,
    restore_snapshot,
    snapshot_weights,
    wait_served,
    write_seconds,
)
from cutover.engine.takeover import may_still_write
from cutover.errors import DeploymentFailed
from cutover.interrupt import Interrupted, Interrupts, NoInterrupts
from cutover.journal import Journal
from cutover.journal.lease import (
    Lease,
    LeaseLost,
    LeaseUnconfirmed,
    check_lease_covers,
)
from cutover.notifier import Notifier
from cutover.service import Service
from cutover.timeline import EventType, Failure, Timings
from cutover.weights import Weights, format_weights

Log = Callable[[str], None]


class Shift:
    """One deployment over one or more services moved in lockstep."""

    def __init__(
        self,
        services: list[Service],
        journal: Journal,
        notifier: Notifier,
        log: Log,
        clock: Clock | None = None,
        interrupts: Interrupts | None = None,
        lease: Lease | None = None,
        show: Callable[[Progress], None] = lambda progress: None,
    ) -> None:
        self.services = services
        self.show = show  # a wait in progress, at every poll (a terminal redraws it in place)
        self.journal = journal
        self.notifier = notifier
        self.log = log
        self.clock = clock or Clock()
        self.interrupts = interrupts or NoInterrupts()
        self.keys = [s.key for s in services]
        self.scope = scope_of(self.keys)
        self.write_seconds = write_seconds(services)
        self.lease = lease or Lease(journal, self.keys, log, self.write_seconds, self.clock)
        self.pool = ThreadPoolExecutor(max_workers=busy_workers(services))
        self._deployment: Deployment | None = None
        self.full = False  # `cutover promote --full`: no more pauses or bakes

    @property
    def deployment(self) -> Deployment:
        assert self._deployment is not None, "no deployment started, resumed or loaded"
        return self._deployment

    def record(self, kind: EventType, **detail: object) -> None:
        self.deployment.event(kind, self.clock.now(), **detail)
        self.journal.save(self.deployment)

    # -- starting ------------------------------------------------------------------------

    def start(self, options: Options) -> Deployment:
        """Lock, snapshot and journal a new deployment (nothing written to a listener yet)."""
        check_lease_covers(self.write_seconds)
        deployment_id = new_deployment_id(self.clock.now())
        holder = self.lease.acquire(deployment_id)
        try:
            snapshots = list(self.pool.map(lambda s: s.router.snapshot(), self.services))
            start = [
                s.router.weights_of(snap) for s, snap in zip(self.services, snapshots, strict=True)
            ]
            lowest = min(start, key=lambda w: w[options.target] / (sum(w.values()) or 1))
            self._deployment = Deployment(
                id=deployment_id,
                scope=self.scope,
                listeners=self.keys,
                services=[s.outputs.name for s in self.services],
                stacks=sorted({s.outputs.stack for s in self.services}),
                releases={
                    s.outputs.name: {c: r.to_json() for c, r in s.outputs.releases.items()}
                    for s in self.services
                },
                options=options,
                snapshot=dict(zip(self.keys, snapshots, strict=True)),
                plan=plan_shift(lowest, options.target, options.steps),
                holder=holder,
                started_at=self.clock.now(),
                endpoint=os.environ.get("AWS_ENDPOINT_URL"),
                generation=1,
            )
            self.record(EventType.STARTED, weights=start)
        except BaseException:
            self.lease.release()
            raise
        return self.deployment

    def resume(self, deployment: Deployment) -> None:
        """Take over an interrupted deployment (its process is gone); before moving traffic,
        wait until no late write of the old holder can land."""
        check_lease_covers(self.write_seconds)
        found = [s for s in (self.journal.lease_state(k) for k in self.keys) if s is not None]
        self._deployment = deployment
        deployment.holder = self.lease.acquire(deployment.id)
        try:
            self.journal.claim(deployment)
            self.record(EventType.RESUMED)
            if may_still_write(found, self.clock.now()):
                self.log(
                    f"  (waiting {self.write_seconds:g}s: a write of the process it takes over "
                    "from may still land)"
                )
                self.clock.sleep(self.write_seconds)
        except BaseException:
            self.lease.release()
            raise

    # -- running ---------------------------------------------------------------------------

    def run(self, from_step: int = 0) -> Deployment:
        """Steps from `from_step` to the end; returns the finished deployment.

        Raises DeploymentFailed after a rollback. Always releases the lease.
        """
        options = self.deployment.options
        deadline = None if options.deadline is None else self.clock.monotonic() + options.deadline
        try:
            with self.interrupts:
                try:
                    return self._steps(from_step, deadline)
                except LeaseLost as e:
                    return self.after_takeover(e)
                except LeaseUnconfirmed as e:
                    return self.fail("lease", str(e), self.clock.now())
                except Interrupted as e:
                    return self.fail("signal", f"interrupted by {e.name}", self.clock.now())
                except DeploymentFailed:
                    raise  # already given back (or said why it could not be)
                except Exception as e:  # noqa: BLE001 - whatever failed, traffic goes back
                    return self.fail("error", f"{type(e).__name__}: {e}", self.clock.now())
        finally:
            self.lease.release()

    def _steps(self, from_step: int, deadline: float | None) -> Deployment:
        d, options = self.deployment, self.deployment.options
        if self.interrupts.pending:  # a signal held while the deployment was being started
            raise Interrupted(self.interrupts.pending)
        if from_step == 0:
            self.notifier.event(d, EventType.STARTED, f"towards {options.target}")
        for index in range(from_step, len(d.plan)):
            weights = d.plan[index]
            last = index == len(d.plan) - 1
            if not self.full and (
                options.mode == "manual" or (options.mode == "assisted" and last)
            ):
                failure = pause(self, index, deadline)
                if failure is not None:
                    return self.fail(*failure, self.clock.now())
            self.lease.before_write()  # never move traffic on a lease that may be another's
            self.record(EventType.STEP_INTENT, index=index, weights=weights)
            self.write_step(weights)
            expected = [weights] * len(self.services)
            if not wait_served(
                self.services, expected, options.verify_timeout, self.pool, self.clock, self.log
            ):
                return self.fail(
                    "not served",
                    f"the load balancer or Gateway did not serve {format_weights(weights)} within "
                    f"{options.verify_timeout:g}s",
                    self.clock.now(),
                )
            d.step = index
            self.record(EventType.STEP, index=index, weights=weights)
            self.notifier.event(d, EventType.STEP, format_weights(weights))
            bake = 0.0 if self.full else options.bake
            self.log(
                f"Step {index + 1}/{len(d.plan)}: serving {format_weights(weights)}; "
                + (f"baking {bake:g}s under guards." if bake else "guards checked once.")
            )
            failure = watch(self, weights, bake, deadline)
            if failure is not None:
                return self.fail(*failure, self.clock.now())
        failure = verify(self, deadline)
        if failure is not None:
            return self.fail(*failure, self.clock.now())
        with self.interrupts.shielded():
            if options.kind == "drill":
                # A drill gives the traffic back on purpose: that restore is what it measures.
                self.restore("drill", self.clock.now())
                d.status = Status.DRILLED
            else:
                d.status = Status.SUCCEEDED
            return self.finish()

    def write_step(self, weights: Weights) -> None:
        """Write one step to every router, each write fenced by the lease; then confirm it
        was accepted while the lease surely was this process's (LeaseLost otherwise: it may
        have landed after a takeover)."""
        fence = self.lease.before_write
        list(self.pool.map(lambda s: s.router.set(weights, fence), self.services))
        if not self.lease.landed_in_time(self.clock.now()):
            raise LeaseLost(
                f"this shift's write of {format_weights(weights)} was accepted after its lease "
                "ran out and another process took it over"
            )

    # -- giving traffic back -----------------------------------------------------------------

    def restore(self, reason: str, detected_at: float) -> None:
        """Write every snapshot back at once, verify it is served, then journal the timings."""
        d = self.deployment
        self._confirm_before_restore()
        restored = restore_snapshot(self.services, d, self.pool, self.clock, self.log)
        found = format_weights(snapshot_weights(self.services, d)[0])
        if restored.errors:
            d.event(EventType.RESTORE_FAILED, self.clock.now(), reason=reason,
                    errors=restored.errors)  # fmt: skip
            journal_after_restore(self.journal, d, self.services)
            raise restore_failed(d, restored.errors)
        d.timings = Timings(
            detected_at, restored.started, restored.accepted, restored.done, restored.verified
        )
        written = restored.accepted - detected_at
        if restored.verified:
            self.log(
                f"Restored the weights it found ({found}) in {written:.3f}s, verified served "
                f"in {restored.done - detected_at:.3f}s."
            )
        else:
            self.log(
                f"Restored weights written ({found}) in {written:.3f}s; not yet confirmed "
                f"served after {d.options.verify_timeout:g}s."
            )
        d.event(EventType.RESTORED, self.clock.now(), reason=reason, verified=restored.verified)
        journal_after_restore(self.journal, d, self.services)

    def _confirm_before_restore(self) -> None:
        """A lease another process took over is theirs to give back (LeaseLost); one that
        merely cannot be confirmed (the journal unreachable) must not keep traffic split."""
        try:
            self.lease.before_write()
        except LeaseUnconfirmed:
            self.log("  (the lease could not be confirmed; giving traffic back all the same)")

    def fail(self, reason: str, detail: str, detected_at: float) -> Deployment:
        """Give the traffic back, record why, and raise DeploymentFailed."""
        d = self.deployment
        self.log(f"Rolling back: {reason}: {detail}")
        with self.interrupts.shielded():
            self._drain()
            try:
                if d.moved_traffic:
                    self.restore(reason, detected_at)
                else:
                    self.log("Nothing had moved yet: no weights to give back.")
                d.status = Status.ROLLED_BACK
                d.failure = Failure(reason, detail)
                self.notifier.event(d, Status.ROLLED_BACK, f"{reason}: {detail}")
                self.finish()
            except LeaseLost as e:
                return self.after_takeover(e)
        where = outcome(self.services, d) if d.moved_traffic else "nothing had moved"
        raise DeploymentFailed(f"deployment {d.id} rolled back ({reason}: {detail}); {where}")

    def _drain(self) -> None:
        """Let calls still in flight finish before the restore (a step's write interrupted by
        a signal must not land after the snapshot is written back)."""
        busy, self.pool = self.pool, ThreadPoolExecutor(max_workers=busy_workers(self.services))
        busy.shutdown(wait=True)

    def finish(self) -> Deployment:
        d = self.deployment
        d.finished_at = self.clock.now()
        d.event(EventType.FINISHED, self.clock.now(), status=str(d.status))
        if d.status == Status.SUCCEEDED:
            self._save_succeeded()
        else:
            journal_after_restore(self.journal, d, self.services)
        self.notifier.event(d, EventType.FINISHED, str(d.status))
        self.notifier.metrics(d)
        return d

    def _save_succeeded(self) -> None:
        """Journal the success, trying again on a passing fault: a deployment left
        `in-progress` would be given back by the watchdog once its lease ran out."""
        d = self.deployment
        for attempt in range(3):
            try:
                self.journal.save(d)
                return
            except LeaseLost:
                raise
            except Exception as e:  # noqa: BLE001
                if attempt == 2:
                    raise DeploymentFailed(
                        f"deployment {d.id}: {d.target} serves all traffic, but the journal "
                        f"could not record the success ({type(e).__name__}: {e}); it still says "
                        f"{d.journaled}, so the watchdog gives the traffic back once the lease "
                        "runs out. See `cutover status`"
                    ) from None
                self.clock.sleep(1.0)

    def after_takeover(self, lost: LeaseLost) -> Deployment:
        """This process lost its lease or journal item to another while it was not running:
        give back what it may have written late (`takeover.give_back_after_takeover`).
        Always raises DeploymentFailed (exit 1)."""
        from cutover.engine.takeover import give_back_after_takeover

        with self.interrupts.shielded():
            self._drain()
            give_back_after_takeover(self, lost)
        raise AssertionError("give_back_after_takeover always raises")  # pragma: no cover
