"""The shift state machine: step weights under guards, and give traffic back exactly.

A shift takes its listeners (`cutover.journal.owner`: the next epoch of each, refused while
an interrupted deployment still owns one), saves the snapshot of every listener's routing
before the first write, each step's intent before it is written and its result after, so
`cutover rollback` (or the watchdog) can restore the snapshot after a crash at any point.
Before every step the gates are judged again (the same judgement as the pack), and a step that
raises the target's share is written only if the target has the ready instances that share
needs (otherwise traffic goes back); guards run through every bake and every pause. On a
failed gate or guard, a target short of ready instances, an abort, the deadline or a signal,
the snapshot is written back first (one call per listener, concurrently) and only then
journaled.

The session (journal, lease, notifier, clock, signal handling) is handed in; this module is
the state machine only, and its walk goes down: shift, then a bake, a restore or a takeover.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cutover_gates.contract import COLORS, Status, share

from cutover.deployment import Deployment, Options, new_deployment_id, scope_of
from cutover.engine.bake import Bake, Why
from cutover.engine.metric_guards import DowntimeGuard, downtime_guard
from cutover.engine.plan import plan_shift
from cutover.engine.restore import (
    journal_after_restore,
    outcome,
    restore_and_journal,
    snapshot_weights,
    wait_served,
)
from cutover.engine.session import Session
from cutover.engine.takeover import give_back_after_takeover, may_still_write
from cutover.errors import DeploymentFailed
from cutover.fleet import short_for_step
from cutover.interrupt import Interrupted
from cutover.journal.lease import LeaseLost, LeaseUnconfirmed, check_lease_covers
from cutover.journal.owner import check_newest, take_listeners
from cutover.service import Service
from cutover.timeline import EventType, Failure
from cutover.weights import Weights, format_weights

# What judges the gates of moving traffic onto the target now: each problem, or none.
Gates = Callable[[], list[str]]


def no_gates() -> list[str]:
    """Nothing to judge (a deterministic test of the state machine alone)."""
    return []


class Shift:
    """One deployment over one or more services moved in lockstep."""

    def __init__(self, session: Session, gates: Gates = no_gates) -> None:
        self.session = session
        self.gates = gates
        self.full = False  # `cutover promote --full`: no more pauses or bakes
        self.downtime: DowntimeGuard | None = None  # from the first write on, one per shift

    @property
    def deployment(self) -> Deployment:
        return self.session.deployment

    # -- starting ------------------------------------------------------------------------

    def start(self, options: Options) -> Deployment:
        """Lock, take the listeners, snapshot and journal a new deployment (nothing written
        to a listener yet)."""
        s = self.session
        check_lease_covers(s.write_seconds)
        deployment_id = new_deployment_id(s.clock.now())
        holder = s.lease.acquire(deployment_id)
        try:
            scope = scope_of(s.keys)
            epochs = take_listeners(s.journal, s.keys, deployment_id, scope)
            snapshots = list(s.pool.map(lambda x: x.router.snapshot(), s.services))
            start = [
                x.router.weights_of(snap) for x, snap in zip(s.services, snapshots, strict=True)
            ]
            lowest = min(start, key=lambda w: w[options.target] / (sum(w.values()) or 1))
            s.deployment = Deployment(
                id=deployment_id,
                scope=scope,
                listeners=s.keys,
                services=[x.outputs.name for x in s.services],
                stacks=sorted({x.outputs.stack for x in s.services}),
                releases={
                    x.outputs.name: {c: r.to_json() for c, r in x.outputs.releases.items()}
                    for x in s.services
                },
                options=options,
                snapshot=dict(zip(s.keys, snapshots, strict=True)),
                plan=plan_shift(lowest, options.target, options.steps),
                holder=holder,
                started_at=s.clock.now(),
                endpoint=os.environ.get("AWS_ENDPOINT_URL"),
                generation=1,
                epochs=epochs,
                stack_outputs={x.key: x.outputs.to_json() for x in s.services},
            )
            s.record(EventType.STARTED, weights=start)
        except BaseException:
            s.lease.release()
            raise
        return s.deployment

    def resume(self, deployment: Deployment) -> None:
        """Take over an interrupted deployment (its process is gone) that still owns its
        listeners; before moving traffic, wait until no late write of the old holder can
        land."""
        s = self.session
        check_lease_covers(s.write_seconds)
        found = [x for x in (s.journal.lease_state(k) for k in s.keys) if x is not None]
        s.deployment = deployment
        deployment.holder = s.lease.acquire(deployment.id)
        try:
            check_newest(s.journal, deployment)
            s.journal.claim(deployment)
            s.record(EventType.RESUMED)
            if may_still_write(found, s.clock.now()):
                s.log(f"  (waiting {s.write_seconds:g}s: a write of the process it takes over "
                      "from may still land)")  # fmt: skip
                s.clock.sleep(s.write_seconds)
        except BaseException:
            s.lease.release()
            raise

    # -- running ---------------------------------------------------------------------------

    def run(self, from_step: int = 0) -> Deployment:
        """Steps from `from_step` to the end; returns the finished deployment.

        Raises DeploymentFailed after a rollback. Always releases the lease.
        """
        s = self.session
        options = self.deployment.options
        deadline = None if options.deadline is None else s.clock.monotonic() + options.deadline
        try:
            with s.interrupts:
                try:
                    return self._steps(from_step, deadline)
                except LeaseLost as e:
                    return self.after_takeover(e)
                except LeaseUnconfirmed as e:
                    return self.fail("lease", str(e), s.clock.now())
                except Interrupted as e:
                    return self.fail("signal", f"interrupted by {e.name}", s.clock.now())
                except DeploymentFailed:
                    raise  # already given back (or said why it could not be)
                except Exception as e:  # noqa: BLE001 - whatever failed, traffic goes back
                    return self.fail("error", f"{type(e).__name__}: {e}", s.clock.now())
        finally:
            s.lease.release()

    def _steps(self, from_step: int, deadline: float | None) -> Deployment:
        s, d = self.session, self.deployment
        options = d.options
        if s.interrupts.pending:  # a signal held while the deployment was being started
            raise Interrupted(s.interrupts.pending)
        if from_step == 0:
            s.notifier.event(d, EventType.STARTED, f"towards {options.target}")
        for index in range(from_step, len(d.plan)):
            weights = d.plan[index]
            last = index == len(d.plan) - 1
            if not self.full and (
                options.mode == "manual" or (options.mode == "assisted" and last)
            ):
                failure = self._pause(index, deadline)
                if failure is not None:
                    return self.fail(*failure, s.clock.now())
            refused = self.gates()  # the gates hold right before every move, not only at start
            if refused:
                return self.fail("gates", "; ".join(refused), s.clock.now())
            short = self._not_ready_for(index)
            if short:
                return self.fail("capacity", "; ".join(short) + "; its weight was not raised",
                                 s.clock.now())  # fmt: skip
            s.lease.before_write()  # never move traffic on a lease that may be another's
            s.record(EventType.STEP_INTENT, index=index, weights=weights)
            self._write(weights)
            expected = [weights] * len(s.services)
            if not wait_served(
                s.services, expected, options.verify_timeout, s.pool, s.clock, s.log
            ):
                return self.fail(
                    "not served",
                    f"the load balancer or Gateway did not serve {format_weights(weights)} within "
                    f"{options.verify_timeout:g}s",
                    s.clock.now(),
                )
            d.step = index
            s.record(EventType.STEP, index=index, weights=weights)
            s.notifier.event(d, EventType.STEP, format_weights(weights))
            bake = 0.0 if self.full else options.bake
            s.log(
                f"Step {index + 1}/{len(d.plan)}: serving {format_weights(weights)}; "
                + (f"baking {bake:g}s under guards." if bake else "guards checked once.")
            )
            failure = self._bake(weights, bake, deadline)
            if failure is not None:
                return self.fail(*failure, s.clock.now())
        failure = self._verify(deadline)
        if failure is not None:
            return self.fail(*failure, s.clock.now())
        with s.interrupts.shielded():
            if options.kind == "drill":
                # A drill gives the traffic back on purpose: that restore is what it measures.
                self.restore("drill", s.clock.now())
                d.status = Status.DRILLED
            else:
                d.status = Status.SUCCEEDED
            return self.finish()

    def _bake(self, weights: Weights, seconds: float | None, deadline: float | None,
              pause_index: int | None = None) -> Why | None:  # fmt: skip
        s = self.session
        found = snapshot_weights(s.services, self.deployment)
        served = found if pause_index == 0 else None  # before any step: what each one found
        if self.downtime is None:
            self.downtime = downtime_guard(s.services, self.deployment, s.clock.now)
        bake = Bake(s, weights, seconds, deadline, pause_index, served, self.downtime)
        failure = bake.run()
        self.full = self.full or bake.promoted_full
        return failure

    def _pause(self, index: int, deadline: float | None) -> Why | None:
        """Wait for `cutover promote` before step `index`, with every guard still running."""
        s, d = self.session, self.deployment
        weights = d.plan[index]
        d.status = Status.PAUSED
        s.record(EventType.PAUSED, before=weights, index=index)
        s.notifier.event(d, EventType.PAUSED, f"before {format_weights(weights)}")
        s.log(
            f"Paused before {format_weights(weights)}; guards keep watching. Run `cutover "
            "promote` to continue or `cutover abort` to give traffic back."
        )
        failure = self._bake(self._serving_before(index), None, deadline, pause_index=index)
        if failure is not None:
            return failure
        d.status = Status.IN_PROGRESS
        s.record(EventType.PROMOTED, index=index, full=self.full)
        s.notifier.event(d, EventType.PROMOTED, f"to {format_weights(weights)}")
        return None

    def _not_ready_for(self, index: int) -> list[str]:
        """Each service whose target color has fewer ready instances than step `index`
        needs, when the step raises the target's share (`cutover.fleet.short_for_step`); a
        count that cannot be read is named too: a weight is never raised on a count nobody
        read."""
        s, d = self.session, self.deployment
        target, weights = d.target, d.plan[index]
        if share(weights, target) <= share(self._serving_before(index), target):
            return []

        def short(service: Service) -> str | None:
            try:
                return short_for_step(service.outputs, service.fleet, target, weights)
            except Exception as e:  # noqa: BLE001 - unread is not known to be ready
                return (f"{service.outputs.name}: {target}'s {service.fleet.unit} could not be "
                        f"read ({type(e).__name__}: {e})")  # fmt: skip

        return [problem for problem in s.pool.map(short, s.services) if problem]

    def _serving_before(self, index: int) -> Weights:
        """What is served before step `index`: the previous step, or what the shift found
        (every color that any service served)."""
        if index > 0:
            return self.deployment.plan[index - 1]
        found = snapshot_weights(self.session.services, self.deployment)
        return {c: max(w[c] for w in found) for c in COLORS}

    def _verify(self, deadline: float | None) -> Why | None:
        """Post-deployment verification: keep baking at the last step under every guard and
        the analysis (`--verify-for`) before the shift counts as succeeded."""
        s, d = self.session, self.deployment
        seconds = d.options.verify_for
        if d.options.kind != "shift" or not seconds or self.full:
            return None
        s.record(EventType.VERIFYING, seconds=seconds)
        s.log(f"Verifying {format_weights(d.plan[-1])} for {seconds:g}s under every guard.")
        failure = self._bake(d.plan[-1], seconds, deadline)
        if failure is None and self.full:  # `cutover promote --full`: said, never "verified"
            s.log("Verification cut short by `cutover promote --full`.")
        elif failure is None:
            s.record(EventType.VERIFIED, seconds=seconds)
        return failure

    def _write(self, weights: Weights) -> None:
        """Write one step to every router, each write fenced by the lease; then confirm it
        was accepted while the lease surely was this process's (LeaseLost otherwise: it may
        have landed after a takeover)."""
        s = self.session
        fence = s.lease.before_write
        list(s.pool.map(lambda x: x.router.set(weights, fence), s.services))
        if not s.lease.landed_in_time(s.clock.now()):
            raise LeaseLost(
                f"this shift's write of {format_weights(weights)} was accepted after its lease "
                "ran out and another process took it over"
            )

    # -- giving traffic back -----------------------------------------------------------------

    def restore(self, reason: str, detected_at: float) -> None:
        """Write every snapshot back at once, verify it is served, then journal the timings.
        A lease another process took over is theirs to give back (LeaseLost); one that
        merely cannot be confirmed (the journal unreachable) must not keep traffic split."""
        s, d = self.session, self.deployment
        try:
            s.lease.before_write()
        except LeaseUnconfirmed:
            s.log("  (the lease could not be confirmed; giving traffic back all the same)")
        restored = restore_and_journal(s, reason, detected_at)
        found = format_weights(snapshot_weights(s.services, d)[0])
        written = restored.accepted - detected_at
        if restored.verified:
            s.log(f"Restored the weights it found ({found}) in {written:.3f}s, verified served "
                  f"in {restored.done - detected_at:.3f}s.")  # fmt: skip
        else:
            s.log(f"Restored weights written ({found}) in {written:.3f}s; not yet confirmed "
                  f"served after {d.options.verify_timeout:g}s.")  # fmt: skip

    def fail(self, reason: str, detail: str, detected_at: float) -> Deployment:
        """Give the traffic back, record why, and raise DeploymentFailed."""
        s, d = self.session, self.deployment
        s.log(f"Rolling back: {reason}: {detail}")
        with s.interrupts.shielded():
            s.drain()
            try:
                if d.moved_traffic:
                    self.restore(reason, detected_at)
                else:
                    s.log("Nothing had moved yet: no weights to give back.")
                d.status = Status.ROLLED_BACK
                d.failure = Failure(reason, detail)
                s.notifier.event(d, Status.ROLLED_BACK, f"{reason}: {detail}")
                self.finish()
            except LeaseLost as e:
                return self.after_takeover(e)
        where = outcome(s.services, d) if d.moved_traffic else "nothing had moved"
        raise DeploymentFailed(f"deployment {d.id} rolled back ({reason}: {detail}); {where}")

    def finish(self) -> Deployment:
        s, d = self.session, self.deployment
        d.finished_at = s.clock.now()
        d.event(EventType.FINISHED, s.clock.now(), status=str(d.status))
        if d.status == Status.SUCCEEDED:
            self._save_succeeded()
        else:
            journal_after_restore(s.journal, d, s.services)
        s.notifier.event(d, EventType.FINISHED, str(d.status))
        s.notifier.metrics(d)
        return d

    def _save_succeeded(self) -> None:
        """Journal the success, trying again on a passing fault: a deployment left
        `in-progress` would be given back by the watchdog once its lease ran out."""
        s, d = self.session, self.deployment
        for attempt in range(3):
            try:
                s.journal.save(d)
                return
            except LeaseLost:
                raise
            except Exception as e:  # noqa: BLE001 - a passing fault: tried again, then said
                if attempt == 2:
                    raise DeploymentFailed(
                        f"deployment {d.id}: {d.target} serves all traffic, but the journal "
                        f"could not record the success ({type(e).__name__}: {e}); it still says "
                        f"{d.journaled}, so the watchdog gives the traffic back once the lease "
                        "runs out. See `cutover status`"
                    ) from None
                s.clock.sleep(1.0)

    def after_takeover(self, lost: LeaseLost) -> Deployment:
        """This process lost its lease or journal item to another while it was not running:
        give back what it may have written late (`takeover.give_back_after_takeover`).
        Always raises DeploymentFailed (exit 1)."""
        with self.session.interrupts.shielded():
            self.session.drain()
            give_back_after_takeover(self.session, lost)
        raise AssertionError("give_back_after_takeover always raises")  # pragma: no cover
